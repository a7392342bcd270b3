/**
 * Hostile servers for the bounded-wait tests: an S3-like and a SendGrid-like HTTP(S) server and an
 * SMTP server (plain, or with STARTTLS) that behave until one chosen phase of the conversation,
 * then misbehave there in one chosen way:
 *
 * - drip: the answer one byte every DRIP_MS, never finished (an idle timeout never trips);
 * - flood: an answer without end, as fast as the client reads (a header or line without end too);
 * - lie: an answer that is not what it claims (a Content-Length longer or shorter than the body,
 *   garbage with a 200, the wrong JSON, an SMTP 250 where a 235 belongs followed by garbage).
 *
 * One function per behaviour writes to a raw socket, shared by every protocol. Loopback only.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import { selfSignedCert } from './net.js';

export const DRIP_MS = 200;

// ---------------------------------------------------------------------------------------------
// Behaviours: each writes to the socket until the peer goes away (the stop() of the server ends
// the rest).

/** Writes `head` at once, then `text` and an endless `tail`, one byte every DRIP_MS. */
export function drip(socket: net.Socket, head: string, text: string | Buffer, tail = 'x'): void {
  socket.write(head);
  const bytes = Buffer.from(text);
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    socket.write(i < bytes.length ? bytes.subarray(i, i + 1) : Buffer.from(tail));
    i++;
  }, DRIP_MS);
  socket.once('close', () => clearInterval(timer));
}

/** Writes `head`, then `chunk` again and again as fast as the peer reads, without end. */
export function flood(socket: net.Socket, head: string | Buffer, chunk: Buffer = Buffer.alloc(64 * 1024, 'a')): void {
  let open = true;
  socket.once('close', () => (open = false));
  socket.on('error', () => (open = false));
  const pump = () => {
    while (open && socket.write(chunk));
    if (open) socket.once('drain', pump);
  };
  socket.write(head);
  pump();
}

/** Writes `text` at once, then closes (or keeps the connection open, silent, when `keepOpen`). */
export function lie(socket: net.Socket, text: string | Buffer, keepOpen = false): void {
  if (keepOpen) socket.write(text);
  else socket.end(text);
}

/** A gzip bomb: a small body that inflates to `inflated` bytes of zeros. */
export function gzipBomb(inflated = 256 * 1024 * 1024): Buffer {
  return gzipSync(Buffer.alloc(inflated), { level: 9 });
}

export function garbage(n: number): Buffer {
  return randomBytes(n);
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 server: requests parsed by hand (request line, headers, Content-Length body), so
// that an answer can be anything at all, byte by byte.

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export type Respond = (req: RawRequest, socket: net.Socket) => void;

export interface HostileServer {
  port: number;
  /** Connections seen (a run that retries opens more). */
  connections: number;
  stop(): Promise<void>;
}

async function listen(
  server: net.Server,
  sockets: Set<net.Socket>,
  state: { connections: number },
): Promise<HostileServer> {
  server.on('connection', (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function startRawHttp(opts: { tls: boolean; respond: Respond }): Promise<HostileServer> {
  const sockets = new Set<net.Socket>();
  const onSocket = (socket: net.Socket) => {
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let busy = false;
    const next = () => {
      if (busy) return;
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line = '', ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (buffered.length < end + 4 + length) return;
      const body = buffered.subarray(end + 4, end + 4 + length);
      buffered = buffered.subarray(end + 4 + length);
      const [method = '', path = '/'] = line.split(' ');
      busy = true;
      // The next request on this connection waits for this answer (keep-alive, one at a time).
      socket.once('answered', () => {
        busy = false;
        next();
      });
      opts.respond({ method, path, headers, body: Buffer.from(body) }, socket);
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      next();
    });
  };
  const cert = selfSignedCert();
  const server = opts.tls ? tls.createServer({ key: cert.key, cert: cert.cert }, onSocket) : net.createServer(onSocket);
  return listen(server, sockets, { connections: 0 });
}

/** A complete, well-formed answer (and the connection is ready for the next request). */
export function answer(
  socket: net.Socket,
  status: number,
  headers: Record<string, string>,
  body: Buffer | string = '',
): void {
  const b = Buffer.from(body);
  const head = [
    `HTTP/1.1 ${status} ${status < 300 ? 'OK' : 'Error'}`,
    `date: ${new Date().toUTCString()}`,
    `content-length: ${b.length}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  socket.write(b);
  socket.emit('answered');
}

// ---------------------------------------------------------------------------------------------
// How each behaviour misbehaves over HTTP: the same list for S3 and SendGrid.

export const HTTP_BEHAVIOURS = [
  'drip-headers',
  'drip-body',
  'flood-body',
  'flood-headers',
  'flood-gzip',
  'lie-length-long',
  'lie-length-short',
  'lie-garbage',
] as const;
export type HttpBehaviour = (typeof HTTP_BEHAVIOURS)[number];

/** Misbehaves in answer to a request whose good answer would be `good` (status and body). */
export function misbehaveHttp(
  socket: net.Socket,
  behaviour: HttpBehaviour,
  good: { status: number; type: string; body: Buffer },
): void {
  const status = `HTTP/1.1 ${good.status} OK\r\ncontent-type: ${good.type}\r\n`;
  switch (behaviour) {
    case 'drip-headers':
      return drip(socket, '', status, 'x');
    case 'drip-body':
      return drip(socket, `${status}content-length: ${good.body.length + 100000}\r\n\r\n`, good.body);
    case 'flood-body':
      return flood(
        socket,
        `${status}transfer-encoding: chunked\r\n\r\n`,
        Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`),
      );
    case 'flood-headers':
      return flood(socket, status, Buffer.from(`x-flood-${randomBytes(4).toString('hex')}: ${'h'.repeat(1000)}\r\n`));
    case 'flood-gzip': {
      const bomb = gzipBomb();
      return lie(
        socket,
        Buffer.concat([Buffer.from(`${status}content-encoding: gzip\r\ncontent-length: ${bomb.length}\r\n\r\n`), bomb]),
        true,
      );
    }
    case 'lie-length-long':
      // Claims more than it sends, then stays silent: the client waits for bytes that never come.
      return lie(
        socket,
        Buffer.concat([Buffer.from(`${status}content-length: ${good.body.length + 1000}\r\n\r\n`), good.body]),
        true,
      );
    case 'lie-length-short':
      // Claims less than it sends: the rest is garbage in front of the next answer.
      return lie(
        socket,
        Buffer.concat([
          Buffer.from(`${status}content-length: ${Math.max(good.body.length >> 1, 1)}\r\n\r\n`),
          good.body,
          garbage(512),
        ]),
        true,
      );
    case 'lie-garbage':
      return lie(socket, Buffer.concat([Buffer.from(`${status}content-length: 4096\r\n\r\n`), garbage(4096)]), true);
  }
}

// ---------------------------------------------------------------------------------------------
// S3: HeadBucket, PutObject, GetObject, DeleteObject, HeadObject answered well (objects kept in
// memory, no signature checks), except the chosen phase.

export const S3_PHASES = ['HeadBucket', 'PutObject', 'GetObject'] as const;
export type S3Phase = (typeof S3_PHASES)[number];

function s3PhaseOf(req: RawRequest): string {
  const [, , key] = req.path.split('?')[0]!.split('/');
  if (!key) return req.method === 'HEAD' ? 'HeadBucket' : `${req.method}Bucket`;
  return { PUT: 'PutObject', GET: 'GetObject', DELETE: 'DeleteObject', HEAD: 'HeadObject' }[req.method] ?? req.method;
}

export async function startHostileS3(opts: {
  tls: boolean;
  phase: S3Phase;
  behaviour: HttpBehaviour;
}): Promise<HostileServer> {
  const objects = new Map<string, Buffer>();
  return startRawHttp({
    tls: opts.tls,
    respond(req, socket) {
      const phase = s3PhaseOf(req);
      const key = req.path.split('?')[0]!;
      if (phase === opts.phase) {
        const stored = objects.get(key) ?? Buffer.alloc(256, 1);
        return misbehaveHttp(socket, opts.behaviour, {
          status: 200,
          type: phase === 'GetObject' ? 'application/octet-stream' : 'application/xml',
          body: phase === 'GetObject' ? stored : Buffer.alloc(0),
        });
      }
      switch (phase) {
        case 'PutObject':
          objects.set(key, req.body);
          return answer(socket, 200, { etag: '"e"' });
        case 'GetObject':
        case 'HeadObject': {
          const body = objects.get(key);
          if (!body)
            return answer(
              socket,
              404,
              { 'content-type': 'application/xml' },
              req.method === 'HEAD' ? '' : '<Error><Code>NoSuchKey</Code></Error>',
            );
          return answer(
            socket,
            200,
            { 'content-type': 'application/octet-stream', etag: '"e"' },
            req.method === 'HEAD' ? '' : body,
          );
        }
        case 'DeleteObject':
          objects.delete(key);
          return answer(socket, 204, {});
        default:
          return answer(socket, 200, {});
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// SendGrid: GET /v3/scopes and POST /v3/mail/send answered well, except the chosen phase, where
// the lies also include JSON of the wrong shape.

export const SENDGRID_PHASES = ['scopes', 'send'] as const;
export type SendgridPhase = (typeof SENDGRID_PHASES)[number];
export const SENDGRID_BEHAVIOURS = [...HTTP_BEHAVIOURS, 'lie-shape', 'lie-huge-json'] as const;
export type SendgridBehaviour = (typeof SENDGRID_BEHAVIOURS)[number];

export async function startHostileSendgrid(opts: {
  phase: SendgridPhase;
  behaviour: SendgridBehaviour;
}): Promise<HostileServer> {
  return startRawHttp({
    tls: true,
    respond(req, socket) {
      const phase = req.path.startsWith('/v3/scopes') ? 'scopes' : 'send';
      const good =
        phase === 'scopes'
          ? { status: 200, type: 'application/json', body: Buffer.from(JSON.stringify({ scopes: ['mail.send'] })) }
          : { status: 202, type: 'application/json', body: Buffer.alloc(0) };
      if (phase !== opts.phase) return answer(socket, good.status, { 'content-type': good.type }, good.body);
      if (opts.behaviour === 'lie-shape')
        return answer(
          socket,
          200,
          { 'content-type': 'application/json' },
          JSON.stringify({ scopes: 'mail.send', result: [{ scope: 'mail.send' }] }),
        );
      if (opts.behaviour === 'lie-huge-json') {
        // A JSON document without end: a list of scopes that never closes.
        return flood(
          socket,
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n' +
            '11\r\n{"scopes":["x",  \r\n',
          Buffer.from(`10000\r\n${'"mail.send",'.repeat(0x10000 / 12)}${'"'.repeat(0x10000 % 12)}\r\n`),
        );
      }
      return misbehaveHttp(socket, opts.behaviour, good);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// SMTP: greeting, EHLO, STARTTLS, AUTH (PLAIN, LOGIN), MAIL, RCPT, DATA, QUIT answered well,
// except the chosen phase.

export const SMTP_PHASES = ['greeting', 'ehlo', 'auth', 'mail', 'data'] as const;
export type SmtpPhase = (typeof SMTP_PHASES)[number];
export const SMTP_BEHAVIOURS = ['drip', 'flood-line', 'flood-lines', 'lie-garbage', 'lie-250-then-garbage'] as const;
export type SmtpBehaviour = (typeof SMTP_BEHAVIOURS)[number];

function misbehaveSmtp(socket: net.Socket, behaviour: SmtpBehaviour, code: number): void {
  switch (behaviour) {
    case 'drip':
      // A multi-line reply that never ends, one byte at a time.
      return drip(socket, '', `${code}-`, 'x');
    case 'flood-line':
      return flood(socket, `${code} `, Buffer.alloc(64 * 1024, 'z'));
    case 'flood-lines':
      return flood(socket, '', Buffer.from(`${code}-continued\r\n`.repeat(4096)));
    case 'lie-garbage':
      return lie(socket, Buffer.concat([garbage(2048), Buffer.from('\r\n')]), true);
    case 'lie-250-then-garbage':
      return lie(socket, Buffer.concat([Buffer.from('250 OK\r\n'), garbage(2048), Buffer.from('\r\n')]), true);
  }
}

export async function startHostileSmtp(opts: {
  starttls: boolean;
  phase: SmtpPhase;
  behaviour: SmtpBehaviour;
}): Promise<HostileServer> {
  const cert = selfSignedCert();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    raw.on('error', () => {});
    let socket: net.Socket = raw;
    let buffered = '';
    let inData = false;
    let authLogin = 0;
    let stopped = false;
    const hostile = (phase: SmtpPhase, code: number) => {
      if (phase !== opts.phase) return false;
      stopped = true;
      misbehaveSmtp(socket, opts.behaviour, code);
      return true;
    };
    const reply = (text: string) => socket.write(`${text}\r\n`);
    const onLine = (line: string) => {
      if (stopped) return;
      if (inData) {
        if (line !== '.') return;
        inData = false;
        if (!hostile('data', 250)) reply('250 2.0.0 queued');
        return;
      }
      if (authLogin > 0) {
        authLogin = authLogin === 1 ? 2 : 0;
        if (authLogin === 2) return reply('334 UGFzc3dvcmQ6');
        if (!hostile('auth', 235)) reply('235 2.7.0 accepted');
        return;
      }
      const verb = line.split(' ')[0]!.toUpperCase();
      switch (verb) {
        case 'EHLO':
        case 'HELO':
          if (hostile('ehlo', 250)) return;
          return reply(
            [
              '250-hostile.test',
              '250-AUTH PLAIN LOGIN',
              ...(opts.starttls && socket === raw ? ['250-STARTTLS'] : []),
              '250 8BITMIME',
            ].join('\r\n'),
          );
        case 'STARTTLS': {
          reply('220 2.0.0 go ahead');
          raw.removeListener('data', onData);
          buffered = '';
          const secure = new tls.TLSSocket(raw, { isServer: true, key: cert.key, cert: cert.cert });
          secure.on('error', () => {});
          socket = secure;
          secure.on('data', onData);
          return;
        }
        case 'AUTH':
          if (/^AUTH LOGIN$/i.test(line)) {
            authLogin = 1;
            return reply('334 VXNlcm5hbWU6');
          }
          if (!hostile('auth', 235)) reply('235 2.7.0 accepted');
          return;
        case 'MAIL':
          if (!hostile('mail', 250)) reply('250 2.1.0 ok');
          return;
        case 'RCPT':
          return reply('250 2.1.5 ok');
        case 'DATA':
          inData = true;
          return reply('354 go ahead');
        case 'QUIT':
          reply('221 bye');
          return socket.end();
        default:
          return reply('502 5.5.2 what?');
      }
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let i: number;
      while ((i = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        onLine(line);
      }
    };
    raw.on('data', onData);
    if (!hostile('greeting', 220)) reply('220 hostile.test ESMTP');
  });
  return listen(server, sockets, { connections: 0 });
}
