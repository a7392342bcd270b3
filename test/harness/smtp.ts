/**
 * Real SMTP servers for the tests (smtp-server), in the variants a verifier must tell apart:
 * STARTTLS, implicit TLS, plaintext without STARTTLS, plaintext on purpose, and no AUTH at all.
 * Only one username/password pair is accepted; messages are parsed with mailparser.
 */
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { selfSignedCert } from './net.js';

export interface CapturedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string | false;
  raw: string;
}

export interface SmtpServer {
  host: '127.0.0.1';
  port: number;
  username: string;
  password: string;
  caFile: string;
  mails: CapturedMail[];
  authAttempts: Array<{ username: string; ok: boolean }>;
  stop(): Promise<void>;
}

export type SmtpMode = 'starttls' | 'tls' | 'no-starttls' | 'plain' | 'no-auth';

export async function startSmtp(mode: SmtpMode): Promise<SmtpServer> {
  const cert = selfSignedCert();
  const username = `mailer-${randomBytes(3).toString('hex')}`;
  const password = `Smtp-${randomBytes(12).toString('base64url')}`;
  const mails: CapturedMail[] = [];
  const authAttempts: SmtpServer['authAttempts'] = [];

  const options: SMTPServerOptions = {
    key: cert.key,
    cert: cert.cert,
    secure: mode === 'tls',
    disabledCommands: mode === 'no-starttls' || mode === 'plain' ? ['STARTTLS'] : mode === 'no-auth' ? ['AUTH'] : [],
    authOptional: mode === 'no-auth',
    // AUTH in plaintext only where the variant has no TLS at all.
    allowInsecureAuth: mode === 'no-starttls' || mode === 'plain',
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    // Real servers resolve the client's name fast; here there is no DNS, and the wait would be ours.
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      const ok = auth.username === username && auth.password === password;
      authAttempts.push({ username: auth.username ?? '', ok });
      if (!ok) return callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
      callback(null, { user: auth.username });
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then(
          (mail) => {
            const to = [mail.to ?? []].flat().flatMap((a) => a.value.map((v) => v.address ?? ''));
            mails.push({
              from: mail.from?.value[0]?.address ?? '',
              to,
              subject: mail.subject ?? '',
              text: mail.text ?? '',
              html: mail.html ?? false,
              raw,
            });
            callback();
          },
          (error: Error) => callback(error),
        );
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => {}); // a client dropping mid-handshake is part of some tests
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;

  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    username,
    password,
    caFile: cert.caFile,
    mails,
    authAttempts,
    async stop() {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
