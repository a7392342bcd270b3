/**
 * SendGrid v3 API. Verification never sends an email: GET /v3/scopes proves the key is valid and
 * lists its scopes, which must include mail.send. The base URL is set after the key, because
 * setApiKey() resets it; the timeout bounds every request (axios underneath).
 */
import sgClient from '@sendgrid/client';
import sgMail from '@sendgrid/mail';
import { EmailError } from '../errors.js';
import type { Env } from '../config/schema.js';
import type { EmailSettings } from '../settings.js';
import type { EmailProvider, Mail } from './provider.js';

type SendgridSettings = Extract<EmailSettings, { provider: 'sendgrid' }>;

interface HttpError {
  code?: string | number;
  message?: string;
  response?: { body?: unknown };
}

// The packages export singletons, plus their classes as properties that their types omit.
// Own instances keep the key and base URL of this run out of any other user of the singletons.
const { Client } = sgClient as unknown as { Client: new () => typeof sgClient };
const { MailService } = sgMail as unknown as { MailService: new () => typeof sgMail };

export function sendgridProvider(env: Env, s: SendgridSettings): EmailProvider {
  const client = new Client();
  client.setApiKey(env.SENDGRID_API_KEY!);
  client.setDefaultRequest('baseUrl', s.api_url);
  client.setDefaultRequest({ timeout: env.EMAIL_TIMEOUT * 1000 } as never); // passed on to axios; not in the types
  const mailer = new MailService();
  mailer.setClient(client);
  const where = `SendGrid ${s.api_url}`;

  return {
    async verify() {
      let scopes: string[];
      try {
        const [, body] = await client.request({ method: 'GET', url: '/v3/scopes' });
        scopes = Array.isArray((body as { scopes?: unknown })?.scopes) ? (body as { scopes: string[] }).scopes : [];
      } catch (error) {
        throw sendgridFailure(error, where, env);
      }
      if (!scopes.includes('mail.send')) {
        throw new EmailError(
          `email: ${where}: the API key is valid but lacks the mail.send scope (it has ${scopes.length} scope(s))`,
          'create a key with the "Mail Send" permission (Settings > API Keys) and set SENDGRID_API_KEY',
        );
      }
      return `${where}: API key valid with the mail.send scope (no email sent)`;
    },
    async send(mail: Mail) {
      try {
        await mailer.send({ from: { email: s.from, ...(s.from_name && { name: s.from_name }) }, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
      } catch (error) {
        throw sendgridFailure(error, where, env);
      }
    },
    close() {},
  };
}

function sendgridFailure(error: unknown, where: string, env: Env): EmailError {
  const e = (error ?? {}) as HttpError;
  const fail = (message: string, fix: string) => new EmailError(`email: ${where}: ${message}`, fix, { cause: error });
  const errno = typeof e.code === 'string' ? e.code : '';
  switch (typeof e.code === 'number' ? e.code : undefined) {
    case 401:
      return fail('the API key is invalid or revoked (401)', 'check SENDGRID_API_KEY (and SENDGRID_API_URL: EU keys work only with https://api.eu.sendgrid.com)');
    case 403:
      return fail('the API key is not allowed to do this (403)', 'give the key the "Mail Send" permission, and check that EMAIL_FROM is a verified sender');
    case 429:
      return fail('rate limited by SendGrid (429)', 'retry later');
  }
  if (typeof e.code === 'number') {
    return fail(`SendGrid answered HTTP ${e.code}: ${JSON.stringify(e.response?.body ?? '').slice(0, 300)}`, 'check SENDGRID_API_URL and the SendGrid status page');
  }
  if (errno === 'ECONNABORTED' || errno === 'ETIMEDOUT' || /timeout/i.test(e.message ?? '')) {
    return fail(`no answer within EMAIL_TIMEOUT=${env.EMAIL_TIMEOUT} s`, 'check SENDGRID_API_URL and that the network (egress policy, proxy) lets this container reach it');
  }
  if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') {
    return fail(`the host name does not resolve (${errno})`, 'check SENDGRID_API_URL');
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(errno) || /certificate/i.test(e.message ?? '')) {
    return fail(`TLS failed: ${e.message}`, 'check SENDGRID_API_URL, and that its certificate is trusted (NODE_EXTRA_CA_CERTS for a TLS-inspecting proxy)');
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'].includes(errno)) {
    return fail(`unreachable (${errno})`, 'check SENDGRID_API_URL and that the network lets this container reach it');
  }
  return fail(`${e.message ?? String(error)}${errno ? ` (${errno})` : ''}`, 'check SENDGRID_API_KEY and SENDGRID_API_URL');
}
