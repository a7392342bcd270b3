/**
 * SMTP through nodemailer. Verification connects, negotiates TLS as SMTP_SECURE says, and
 * authenticates with the given credentials: nodemailer's verify() alone succeeds without
 * credentials even when the server requires AUTH, so the credentials are always given.
 */
import { createTransport } from 'nodemailer';
import { EmailError } from '../errors.js';
import type { Env } from '../config/schema.js';
import type { EmailSettings } from '../settings.js';
import { fromHeader, type EmailProvider, type Mail } from './provider.js';

type SmtpSettings = Extract<EmailSettings, { provider: 'smtp' }>;

interface SmtpError {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  message?: string;
}

export function smtpProvider(env: Env, s: SmtpSettings): EmailProvider {
  const timeout = env.EMAIL_TIMEOUT * 1000;
  const transport = createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure === 'tls',
    requireTLS: s.secure === 'starttls', // refuse a server that does not offer STARTTLS
    ignoreTLS: s.secure === 'none',
    auth: { user: env.SMTP_USERNAME!, pass: env.SMTP_PASSWORD! },
    forceAuth: true, // authenticate even when the server does not advertise AUTH: verify() would skip it
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
    logger: false,
    debug: false,
  });
  const where = `SMTP ${s.host}:${s.port} (SMTP_SECURE=${s.secure})`;

  return {
    async verify() {
      try {
        await transport.verify();
      } catch (error) {
        throw smtpFailure(error, where, env);
      }
      return `${where}: connected${s.secure === 'none' ? ' without TLS' : ' with TLS'} and authenticated as ${env.SMTP_USERNAME}`;
    },
    async send(mail: Mail) {
      try {
        await transport.sendMail({ from: fromHeader(s.from, s.from_name), to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
      } catch (error) {
        throw smtpFailure(error, where, env);
      }
    },
    close() {
      transport.close();
    },
  };
}

function smtpFailure(error: unknown, where: string, env: Env): EmailError {
  const e = (error ?? {}) as SmtpError;
  const detail = (e.response ?? e.message ?? String(error)).trim();
  const fail = (message: string, fix: string) => new EmailError(`email: ${where}: ${message}`, fix, { cause: error });
  const tlsMessage = /certificate|self[- ]signed|unable to verify|wrong version number|handshake|ssl|tls/i;

  if (e.code === 'EAUTH') {
    if (e.responseCode && [500, 502, 503, 504].includes(e.responseCode) && !/authentication failed|credentials/i.test(detail)) {
      return fail(`the server offers no authentication (${detail})`, 'use the SMTP submission service that authenticates users (usually port 587 with STARTTLS or 465 with TLS)');
    }
    return fail(`authentication refused for ${env.SMTP_USERNAME} (${detail})`, 'check SMTP_USERNAME and SMTP_PASSWORD');
  }
  if (e.code === 'ETLS' || (e.code === 'ESOCKET' && /STARTTLS/i.test(detail))) {
    return fail('the server does not offer STARTTLS', 'if the server uses implicit TLS set SMTP_SECURE=tls (usually port 465); SMTP_SECURE=none only on a trusted network');
  }
  if (e.code === 'EDNS' || /ENOTFOUND|EAI_AGAIN/.test(detail)) {
    return fail(`the host name does not resolve (${detail})`, 'check SMTP_HOST');
  }
  if (/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/.test(detail) || /ECONNREFUSED/.test(e.message ?? '')) {
    return fail('the server is unreachable (connection refused)', 'check SMTP_HOST and SMTP_PORT, and that the network lets this container reach it');
  }
  if (e.code === 'ETIMEDOUT' || /time(d)? ?out/i.test(detail)) {
    return fail(`no answer within EMAIL_TIMEOUT=${env.EMAIL_TIMEOUT} s`, 'check SMTP_HOST, SMTP_PORT and SMTP_SECURE (implicit TLS on a STARTTLS port, or the reverse, looks like this too)');
  }
  if (tlsMessage.test(detail)) {
    return fail(`TLS failed: ${detail}`, 'check SMTP_SECURE against the port (tls for 465, starttls for 587), and that the server certificate is trusted (NODE_EXTRA_CA_CERTS for a private CA)');
  }
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') {
    return fail(`the server refused the message: ${detail}`, 'check EMAIL_FROM: the account may not send as this address');
  }
  return fail(`${detail}${e.code ? ` (${e.code})` : ''}`, 'check the SMTP_* variables');
}
