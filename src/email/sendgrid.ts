/**
 * SendGrid v3 API. Verification never sends an email: GET /v3/scopes proves the key is valid and
 * lists its scopes, which must include mail.send. The base URL is set after the key, because
 * setApiKey() resets it; the timeout bounds every request (axios underneath).
 */
import sgClient from '@sendgrid/client';
import sgMail from '@sendgrid/mail';
import { EmailError } from '../errors.js';
import type { EmailTarget } from '../config/targets.js';
import type { EmailProvider, Mail } from './mail.js';
import { EmailDeadline, emailDeadlineMs, withDeadline } from './deadline.js';
import { isTlsFailure } from '../tls-failure.js';

type SendgridTarget = Extract<EmailTarget, { provider: 'sendgrid' }>;

interface HttpError {
  code?: string | number;
  message?: string;
  response?: { body?: unknown };
}

// The packages export singletons, plus their classes as properties that their types omit.
// Own instances keep the key and base URL of this run out of any other user of the singletons.
const { Client } = sgClient as unknown as { Client: new () => typeof sgClient };
const { MailService } = sgMail as unknown as { MailService: new () => typeof sgMail };

export function sendgridProvider(target: SendgridTarget): EmailProvider {
  const s = target.settings;
  const client = new Client();
  client.setApiKey(target.apiKey);
  client.setDefaultRequest('baseUrl', s.api_url);
  // Passed on to axios (not in the types). timeout is an idle timeout (the socket's): the signal set
  // for each operation bounds it in all. maxContentLength cuts an answer (decompressed) past it, a
  // redirect is an error rather than a request to somewhere else.
  client.setDefaultRequest({
    timeout: target.timeoutSec * 1000,
    maxContentLength: MAX_SENDGRID_RESPONSE_BYTES,
    maxRedirects: 0,
  } as never);
  const mailer = new MailService();
  mailer.setClient(client);
  const where = `SendGrid ${s.api_url}`;
  const deadlineMs = emailDeadlineMs(target.timeoutSec);
  /** Runs one request with a deadline for the whole of it; requests never overlap, so the default is per request. */
  const bounded = async <T>(signal: AbortSignal, request: () => Promise<T>): Promise<T> => {
    const deadline = withDeadline(signal, deadlineMs);
    client.setDefaultRequest('signal' as never, deadline as never);
    try {
      return await request();
    } catch (error) {
      throw sendgridFailure(deadline.aborted ? deadline.reason : error, where, target.timeoutSec);
    }
  };

  return {
    async verify(signal: AbortSignal) {
      const [, body] = await bounded(signal, () => client.request({ method: 'GET', url: '/v3/scopes' }));
      const list = (body as { scopes?: unknown } | null)?.scopes;
      if (!Array.isArray(list) || !list.every((scope) => typeof scope === 'string')) {
        throw new EmailError(
          `email: ${where}: GET /v3/scopes answered ` +
            `${typeof body === 'string' ? 'something that is not JSON' : 'JSON without a list of scopes'} ` +
            `(${said(typeof body === 'string' ? body : (JSON.stringify(body) ?? ''))})`,
          'check SENDGRID_API_URL: it is not the SendGrid v3 API (a proxy or captive portal answering in its place?)',
        );
      }
      const scopes = list as string[];
      if (!scopes.includes('mail.send')) {
        throw new EmailError(
          `email: ${where}: the API key is valid but lacks the mail.send scope (it has ${scopes.length} scope(s))`,
          'create a key with the "Mail Send" permission (Settings > API Keys) and set SENDGRID_API_KEY',
        );
      }
      return `${where}: API key valid with the mail.send scope (no email sent)`;
    },
    async send(mail: Mail, signal: AbortSignal) {
      await bounded(signal, () =>
        mailer.send({
          from: { email: s.from, ...(s.from_name && { name: s.from_name }) },
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
        }),
      );
    },
    close() {},
  };
}

/** The most kept of one answer (the scopes of a full-access key are ≈15 KB of JSON). */
export const MAX_SENDGRID_RESPONSE_BYTES = 1024 * 1024;

/** What the API said, cut and on one line. */
function said(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}... (${flat.length} characters)` : flat;
}

function sendgridFailure(error: unknown, where: string, timeoutSec: number): EmailError {
  const e = (error ?? {}) as HttpError;
  const fail = (message: string, fix: string) => new EmailError(`email: ${where}: ${message}`, fix, { cause: error });
  if (error instanceof EmailDeadline) {
    return fail(
      `did not complete within 2 × EMAIL_TIMEOUT = ${error.ms / 1000} s ` +
        `(the API answers too slowly, or never finishes its answer)`,
      'check SENDGRID_API_URL and the network to it (egress policy, ' +
        'proxy); raise EMAIL_TIMEOUT only for a link known to be that slow',
    );
  }
  if (/maxContentLength size of \d+ exceeded/.test(e.message ?? '')) {
    return fail(
      `the API's answer is longer than ${MAX_SENDGRID_RESPONSE_BYTES} ` +
        `bytes, more than any answer this program expects: cut there`,
      'check SENDGRID_API_URL: it is not the SendGrid v3 API, or not a well-behaved one',
    );
  }
  const errno = typeof e.code === 'string' ? e.code : '';
  switch (typeof e.code === 'number' ? e.code : undefined) {
    case 401:
      return fail(
        'the API key is invalid or revoked (401)',
        'check SENDGRID_API_KEY (and SENDGRID_API_URL: EU keys work only with https://api.eu.sendgrid.com)',
      );
    case 403:
      return fail(
        'the API key is not allowed to do this (403)',
        'give the key the "Mail Send" permission, and check that EMAIL_FROM is a verified sender',
      );
    case 429:
      return fail('rate limited by SendGrid (429)', 'retry later');
  }
  if (typeof e.code === 'number') {
    return fail(
      `SendGrid answered HTTP ${e.code}: ${said(JSON.stringify(e.response?.body ?? '') ?? '')}`,
      'check SENDGRID_API_URL and the SendGrid status page',
    );
  }
  if (errno === 'ECONNABORTED' || errno === 'ETIMEDOUT' || /timeout/i.test(e.message ?? '')) {
    return fail(
      `no answer within EMAIL_TIMEOUT=${timeoutSec} s`,
      'check SENDGRID_API_URL and that the network (egress policy, proxy) lets this container reach it',
    );
  }
  if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') {
    return fail(`the host name does not resolve (${errno})`, 'check SENDGRID_API_URL');
  }
  if (isTlsFailure(errno, e.message)) {
    return fail(
      `TLS failed: ${said(e.message ?? '')}`,
      'check SENDGRID_API_URL, and that its certificate is trusted (NODE_EXTRA_CA_CERTS for a TLS-inspecting proxy)',
    );
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'].includes(errno)) {
    return fail(`unreachable (${errno})`, 'check SENDGRID_API_URL and that the network lets this container reach it');
  }
  return fail(
    `${said(e.message ?? String(error))}${errno ? ` (${errno.slice(0, 40)})` : ''}`,
    'check SENDGRID_API_KEY and SENDGRID_API_URL',
  );
}
