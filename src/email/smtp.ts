/**
 * SMTP through nodemailer. Verification connects, negotiates TLS as SMTP_SECURE says, and
 * authenticates with the given credentials: nodemailer's verify() alone succeeds without
 * credentials even when the server requires AUTH, so the credentials are always given.
 */
import { createTransport } from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { EmailError } from '../errors.js';
import type { EmailTarget } from '../config/targets.js';
import { EmailDeadline, emailDeadlineMs, withDeadline } from './deadline.js';
import { fromHeader, type EmailProvider, type Mail } from './mail.js';
import { isTlsFailure } from '../tls-failure.js';

type SmtpTarget = Extract<EmailTarget, { provider: 'smtp' }>;

interface SmtpError {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
}

/** The longest SMTP reply kept (an EHLO answer is well under 1 KiB); a longer one ends the connection. */
export const MAX_SMTP_REPLY_BYTES = 64 * 1024;

export function smtpProvider(target: SmtpTarget): EmailProvider {
  const s = target.settings;
  const timeout = target.timeoutSec * 1000;
  const deadlineMs = emailDeadlineMs(target.timeoutSec);
  // nodemailer bounds the setup (connect, greeting, STARTTLS) by connectionTimeout in all, but
  // each later answer only by socketTimeout, an idle timeout: a server sending one byte a second
  // never trips it. Each operation has a deadline of its own, which closes the connection.
  const options = {
    host: s.host,
    port: s.port,
    secure: s.secure === 'tls',
    requireTLS: s.secure === 'starttls', // refuse a server that does not offer STARTTLS
    ignoreTLS: s.secure === 'none',
    auth: { user: target.username, pass: target.password },
    forceAuth: true, // authenticate even when the server does not advertise AUTH: verify() would skip it
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
    maxResponseSize: MAX_SMTP_REPLY_BYTES,
    socketCloseTimeout: 0, // closing destroys the socket at once: nothing lingers after a deadline
    logger: false,
    debug: false,
  };
  const transport = createTransport(options);
  const where = `SMTP ${s.host}:${s.port} (SMTP_SECURE=${s.secure})`;

  return {
    async verify(signal: AbortSignal) {
      try {
        await verifySession(options, withDeadline(signal, deadlineMs));
      } catch (error) {
        throw smtpFailure(error, where, target);
      }
      return (
        `${where}: connected${s.secure === 'none' ? ' without TLS' : ' with TLS'} ` +
        `and authenticated as ${target.username}`
      );
    },
    async send(mail: Mail, signal: AbortSignal) {
      // nodemailer closes the connection when the signal aborts.
      const deadline = withDeadline(signal, deadlineMs);
      try {
        await transport.sendMail({
          from: fromHeader(s.from, s.from_name),
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          signal: deadline,
        } as never);
      } catch (error) {
        throw smtpFailure(deadline.aborted ? deadline.reason : error, where, target);
      }
    },
    close() {
      transport.close();
    },
  };
}

/**
 * What nodemailer's verify() does (connect, TLS as configured, AUTH even when not advertised,
 * QUIT), on a connection this program holds, so that the signal can close it.
 */
function verifySession(
  options: ConstructorParameters<typeof SMTPConnection>[0] & { auth: { user: string; pass: string } },
  signal: AbortSignal,
): Promise<void> {
  const connection = new SMTPConnection(options);
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (error) {
        connection.close();
        reject(error);
      } else {
        connection.quit();
        resolve();
      }
    };
    const onAbort = () => finish(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    connection.once('error', (error) => finish(error));
    // 'end' comes before the 'error' that explains it (a timeout, a reply too long): that one wins.
    connection.once('end', () =>
      setImmediate(() => finish(Object.assign(new Error('the server closed the connection'), { code: 'ECONNECTION' }))),
    );
    connection.connect(() => connection.login(options.auth, (error) => finish(error ?? undefined)));
  }).finally(() => {
    // Errors after the outcome (a late reset) must not be unhandled.
    connection.on('error', () => {});
  });
}

/** What a server said, cut and on one line: it chooses its replies, and their length. */
function said(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}... (${flat.length} characters)` : flat;
}

function smtpFailure(error: unknown, where: string, target: SmtpTarget): EmailError {
  const e = (error ?? {}) as SmtpError;
  if (e instanceof EmailDeadline) {
    return new EmailError(
      `email: ${where}: did not complete within 2 × EMAIL_TIMEOUT = ${e.ms / 1000} s (the server answers too slowly, ` +
        `or never finishes its answer)`,
      'check SMTP_HOST and SMTP_PORT, and the network to the server; ' +
        'raise EMAIL_TIMEOUT only for a server known to be that slow',
      { cause: error },
    );
  }
  if (/exceeds maximum allowed size/.test(e.message ?? '')) {
    return new EmailError(
      `email: ${where}: the server sent a reply longer than ${MAX_SMTP_REPLY_BYTES} ` +
        `bytes, more than any SMTP reply should be: connection closed`,
      'check SMTP_HOST and SMTP_PORT: this is not an SMTP server, or not a well-behaved one',
      { cause: error },
    );
  }
  const detail = said(e.response ?? e.message ?? String(error));
  const fail = (message: string, fix: string) => new EmailError(`email: ${where}: ${message}`, fix, { cause: error });

  if (e.code === 'EAUTH') {
    if (
      e.responseCode &&
      [500, 502, 503, 504].includes(e.responseCode) &&
      !/authentication failed|credentials/i.test(detail)
    ) {
      return fail(
        `the server offers no authentication (${detail})`,
        'use the SMTP submission service that authenticates users (usually port 587 with STARTTLS or 465 with TLS)',
      );
    }
    return fail(`authentication refused for ${target.username} (${detail})`, 'check SMTP_USERNAME and SMTP_PASSWORD');
  }
  if (e.code === 'ETLS' || (e.code === 'ESOCKET' && /STARTTLS/i.test(detail))) {
    return fail(
      'the server does not offer STARTTLS',
      'if the server uses implicit TLS set SMTP_SECURE=tls (usually ' +
        'port 465); SMTP_SECURE=none only on a trusted network',
    );
  }
  if (e.code === 'EDNS' || /ENOTFOUND|EAI_AGAIN/.test(detail)) {
    return fail(`the host name does not resolve (${detail})`, 'check SMTP_HOST');
  }
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/.test(detail) || /ECONNREFUSED/.test(e.message ?? '')) {
    return fail(
      'the server is unreachable (connection refused)',
      'check SMTP_HOST and SMTP_PORT, and that the network lets this container reach it',
    );
  }
  if (e.code === 'ETIMEDOUT' || /time(d)? ?out/i.test(detail)) {
    return fail(
      `no answer within EMAIL_TIMEOUT=${target.timeoutSec} s`,
      'check SMTP_HOST, SMTP_PORT and SMTP_SECURE (implicit TLS ' +
        'on a STARTTLS port, or the reverse, looks like this too)',
    );
  }
  if (isTlsFailure(e.code, detail)) {
    return fail(
      `TLS failed: ${detail}`,
      'check SMTP_SECURE against the port (tls for 465, starttls for 587), and that the server certificate is ' +
        'trusted (NODE_EXTRA_CA_CERTS for a private CA)',
    );
  }
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') {
    return fail(
      `the server refused the message: ${detail}`,
      'check EMAIL_FROM: the account may not send as this address',
    );
  }
  return fail(`${detail}${e.code ? ` (${e.code})` : ''}`, 'check the SMTP_* variables');
}
