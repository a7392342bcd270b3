/**
 * A local HTTPS server answering like the SendGrid v3 API for what the program uses:
 * GET /v3/scopes (200 with the key's scopes, 401 for an unknown key) and POST /v3/mail/send
 * (202; 403 without the mail.send scope; 400 for a malformed body). Faults can be injected on
 * every request, or only on sends (verification passes, the welcome email fails).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { selfSignedCert } from './net.js';

export interface SendgridServer {
  url: string;
  caFile: string;
  addKey(key: string, scopes: string[]): void;
  requests: Array<{ method: string; path: string; authorized: boolean }>;
  mails: Array<{ body: unknown }>;
  /** The next `count` requests answer `status`, or are never answered ('hang'). */
  failNext(count: number, status: number | 'hang'): void;
  /** The next `count` POST /v3/mail/send answer `status`. */
  failSendNext(count: number, status: number): void;
  stop(): Promise<void>;
}

const UNAUTHORIZED = { errors: [{ field: null, message: 'authorization required' }] };
const FORBIDDEN = { errors: [{ field: null, message: 'access forbidden' }] };

function json(res: ServerResponse, status: number, body?: unknown) {
  res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

/** The minimum the real API checks before accepting a message. */
function validMail(body: unknown): boolean {
  const b = body as {
    personalizations?: Array<{ to?: Array<{ email?: string }> }>;
    from?: { email?: string };
    subject?: string;
    content?: unknown[];
    template_id?: string;
  };
  return Boolean(
    b?.personalizations?.[0]?.to?.[0]?.email && b.from?.email && (b.template_id || (b.subject && b.content?.length)),
  );
}

export async function startSendgrid(): Promise<SendgridServer> {
  const cert = selfSignedCert();
  const keys = new Map<string, string[]>();
  const requests: SendgridServer['requests'] = [];
  const mails: SendgridServer['mails'] = [];
  let faults: { count: number; status: number | 'hang' } = { count: 0, status: 500 };
  let sendFaults = { count: 0, status: 500 };
  const hanging = new Set<ServerResponse>();

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = new URL(req.url ?? '/', 'https://127.0.0.1').pathname;
    const key = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const scopes = key === undefined ? undefined : keys.get(key);
    requests.push({ method: req.method ?? '', path, authorized: scopes !== undefined });

    if (faults.count > 0) {
      faults.count--;
      if (faults.status === 'hang') return void hanging.add(res);
      return json(res, faults.status, { errors: [{ message: 'injected fault' }] });
    }
    if (!scopes) return json(res, 401, UNAUTHORIZED);
    if (req.method === 'GET' && path === '/v3/scopes') return json(res, 200, { scopes });
    if (req.method === 'POST' && path === '/v3/mail/send') {
      if (!scopes.includes('mail.send')) return json(res, 403, FORBIDDEN);
      if (sendFaults.count > 0) {
        sendFaults.count--;
        return json(res, sendFaults.status, { errors: [{ message: 'injected send fault' }] });
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return json(res, 400, { errors: [{ field: null, message: 'Bad Request' }] });
      }
      if (!validMail(body))
        return json(res, 400, { errors: [{ field: 'personalizations', message: 'invalid message' }] });
      mails.push({ body });
      return json(res, 202);
    }
    return json(res, 404, { errors: [{ field: null, message: 'not found' }] });
  };

  const server = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    handler(req, res).catch(() => json(res, 500, { errors: [{ message: 'server error' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  let stopped = false;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: cert.caFile,
    addKey: (key, list) => void keys.set(key, list),
    requests,
    mails,
    failNext(count, status) {
      faults = { count, status };
    },
    failSendNext(count, status) {
      sendFaults = { count, status };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
