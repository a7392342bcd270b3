/**
 * Client-side bounds on every PostgreSQL answer, whatever the server (or a proxy in front of it)
 * does once the startup handshake is done. statement_timeout bounds a statement on an honest
 * server; nothing bounded a server that answers one byte a second, or sends rows without end
 * (postgres.js has no per-query timeout, and keeps every row, and every partial message, in
 * memory). So the driver gets its sockets from here (postgres.js' `socket` option), and each one
 * is watched at the level of the protocol's framing, which costs a 5-byte header per message:
 *
 * - deadline: a request (a Sync, a simple Query, a Flush) must be answered within
 *   statement_timeout + 5 s (the server's own bound, lock waits included, plus room for the
 *   network). A simple query holding several statements (a migration file) gets that for each
 *   statement, as statement_timeout does: the deadline starts again at each CommandComplete, at
 *   most as many times as the query holds semicolons. Nothing is timed while no answer is owed:
 *   the lock's session waits idle in its transaction for the whole run. The handshake is
 *   postgres.js' connect_timeout's.
 * - size: at most MAX_ANSWER_BYTES are read between two answers owed (two ReadyForQuery), the
 *   handshake included; the program's answers are a few small rows.
 *
 * Past either bound the socket is destroyed with a DatabaseError (exit 3) naming the bound, and
 * the driver rejects the statement with it. TLS is negotiated here too (SSLRequest, then a TLS
 * socket over it), so that what is watched is the protocol, not ciphertext; the driver's own `ssl`
 * is off. The options are what postgres.js would have given tls.connect.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DatabaseError } from '../errors.js';
import type { DatabaseVariables } from '../config/targets.js';
import { type TlsAttempt, tlsNotOffered, UNVERIFIED } from './tls.js';

/** What one statement's answer may hold: far above the program's (a few rows of names and hashes). */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
/** Added to statement_timeout for the client-side deadline: the network, and the server's own cancel. */
export const DEADLINE_SLACK_SEC = 5;

export interface GuardOptions {
  host: string;
  port: number;
  leg: TlsAttempt;
  /** Bound of the TCP connection and TLS handshake (postgres.js' connect_timeout starts after them). */
  connectTimeoutMs: number;
  statementTimeoutSec: number;
  /** The variables of the target, for the messages. */
  vars: DatabaseVariables;
  /** Called once a bound is crossed (the caller ends the whole client). */
  onFatal(): void;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/** postgres.js' `socket` option: a connected socket (TLS when the leg says so), watched. */
export function guardedSocket(opts: GuardOptions): () => Promise<net.Socket> {
  // postgres.js reconnects, without end and without telling, when the server closes the connection
  // before the handshake is done (a proxy with no server behind it): the second attempt is refused
  // here instead, as a lost connection, which connect() retries within the target's connect timeout.
  // (A cancel request's connection ends that way too; the program never cancels a query.)
  let handshakeLost = false;
  return async () => {
    if (handshakeLost) {
      throw Object.assign(
        new Error(
          `write CONNECTION_CLOSED ${opts.host}:${opts.port} (closed by the server during the startup handshake)`,
        ),
        { code: 'CONNECTION_CLOSED' },
      );
    }
    const started = Date.now();
    const socket = opts.leg.tls ? await tlsSocket(opts) : net.connect({ host: opts.host, port: opts.port });
    // postgres.js names host:port in its errors from these (CONNECTION_CLOSED ...).
    Object.assign(socket, { host: opts.host, port: opts.port });
    // postgres.js' connect_timeout starts only now: with TLS, the handshake above has used some of
    // the attempt's time, and the rest is all the startup gets (one bound for the whole attempt).
    const handshakeMs = opts.leg.tls ? Math.max(1, opts.connectTimeoutMs - (Date.now() - started)) : undefined;
    watch(socket, opts, handshakeMs, (lost) => (handshakeLost = lost));
    return socket;
  };
}

async function tlsSocket({ host, port, leg, connectTimeoutMs, vars }: GuardOptions): Promise<tls.TLSSocket> {
  const raw = net.connect({ host, port });
  raw.on('error', () => {}); // reported through the TLS socket, or the promise below
  return await new Promise<tls.TLSSocket>((resolve, reject) => {
    const fail = (error: unknown) => {
      clearTimeout(timer);
      raw.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(connectTimeout(host, port)), connectTimeoutMs);
    raw.once('error', fail);
    raw.once('close', () =>
      fail(Object.assign(new Error(`write CONNECTION_CLOSED ${host}:${port}`), { code: 'CONNECTION_CLOSED' })),
    );
    raw.once('connect', () => raw.write(SSL_REQUEST));
    raw.once('data', (data) => {
      if (data[0] !== 0x53) return fail(tlsNotOffered(host, port, vars));
      raw.removeAllListeners('close');
      const ssl = typeof leg.ssl === 'object' ? leg.ssl : UNVERIFIED;
      const secure = tls.connect({ socket: raw, servername: net.isIP(host) ? undefined : host, ...ssl });
      secure.once('error', fail);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        secure.removeListener('error', fail);
        resolve(secure);
      });
    });
  });
}

/** The error postgres.js gives when its connect_timeout fires (connect() retries it). */
function connectTimeout(host: string, port: number): Error {
  return Object.assign(new Error(`write CONNECT_TIMEOUT ${host}:${port}`), {
    code: 'CONNECT_TIMEOUT',
    errno: 'CONNECT_TIMEOUT',
    address: host,
    port,
  });
}

/** A request that is owed an answer: up to a ReadyForQuery (sync), or a description (flush). */
interface Owed {
  kind: 'sync' | 'flush';
  /** CommandCompletes that start the deadline again: the statements after the first of a simple query. */
  restarts: number;
}

/** `handshakeLost(true)`: the server closed during the startup without a word; `(false)`: a startup completed. */
function watch(
  socket: net.Socket,
  opts: GuardOptions,
  handshakeMs: number | undefined,
  handshakeLost: (lost: boolean) => void,
): void {
  const where = `PostgreSQL at ${opts.host}:${opts.port}`;
  const deadlineSec = opts.statementTimeoutSec + DEADLINE_SLACK_SEC;
  const owed: Owed[] = [];
  let ready = false; // the first ReadyForQuery ends the handshake
  // A refusal the server explains (an ErrorResponse: too many connections, starting up) or a close of
  // ours is not the silent close that makes the driver reconnect without end.
  let explained = false;
  let read = 0;
  let timer: NodeJS.Timeout | undefined;
  const handshake =
    handshakeMs === undefined
      ? undefined
      : setTimeout(() => {
          if (ready) return;
          explained = true;
          socket.destroy(connectTimeout(opts.host, opts.port));
        }, handshakeMs);

  const fail = (message: string, fix: string) => {
    clearTimeout(timer);
    if (socket.destroyed) return;
    explained = true;
    socket.destroy(new DatabaseError(message, fix));
    opts.onFatal();
  };
  const restart = () => {
    clearTimeout(timer);
    timer =
      owed.length === 0
        ? undefined
        : setTimeout(
            () =>
              fail(
                `${where} did not complete an answer within ${deadlineSec} s (${opts.vars.statementTimeout} + ` +
                  `${DEADLINE_SLACK_SEC} s): the connection was closed; nothing of an unfinished transaction is kept`,
                `check that the URL points at PostgreSQL itself (or a pooler in session mode) and that the network ` +
                  `to it is sound; raise ${opts.vars.statementTimeout} if a statement legitimately runs longer`,
              ),
            deadlineSec * 1000,
          );
  };

  const incoming = framing(5, (type) => {
    if (type === 0x5a /* Z */) {
      if (!ready) {
        ready = true;
        read = 0;
        clearTimeout(handshake);
        handshakeLost(false);
        return;
      }
      const sync = owed.findIndex((o) => o.kind === 'sync');
      if (sync < 0) return;
      owed.splice(0, sync + 1);
      read = 0;
      restart();
    } else if ((type === 0x43 /* C */ || type === 0x49) /* I */ && owed[0]?.kind === 'sync' && owed[0].restarts > 0) {
      owed[0].restarts--;
      restart();
    } else if (!ready && type === 0x45 /* E */) {
      explained = true;
    } else if ((type === 0x54 /* T */ || type === 0x6e /* n */ || type === 0x45) /* E */ && owed[0]?.kind === 'flush') {
      owed.shift();
      restart();
    }
  });
  socket.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > MAX_ANSWER_BYTES) {
      return fail(
        `${where} sent more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB without completing an answer (the most this ` +
          `program reads for one statement): the connection was closed`,
        'check that the URL points at PostgreSQL itself (or a pooler in session mode), not another service',
      );
    }
    incoming.feed(chunk);
  });

  // What the driver writes: the startup message (no type byte), then typed messages.
  let semicolons = 0;
  const outgoing = framing(
    4,
    (type) => {
      if (!ready) return;
      const wasIdle = owed.length === 0;
      if (type === 0x53 /* S */) owed.push({ kind: 'sync', restarts: 0 });
      else if (type === 0x51 /* Q */) owed.push({ kind: 'sync', restarts: semicolons });
      else if (type === 0x48 /* H */) owed.push({ kind: 'flush', restarts: 0 });
      semicolons = 0;
      if (wasIdle && owed.length > 0) restart();
    },
    (type, body) => {
      if (type === 0x51) for (const byte of body) if (byte === 0x3b) semicolons++;
    },
  );
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (Buffer.isBuffer(chunk)) outgoing.feed(chunk);
    return write(chunk, ...rest);
  }) as typeof socket.write;
  socket.on('close', () => {
    clearTimeout(timer);
    clearTimeout(handshake);
    if (!ready && !explained) handshakeLost(true);
  });
}

/**
 * A stream of PostgreSQL messages, read without keeping them: `onMessage(type)` once each one is
 * complete, `onBody` with its bytes. `first`: the length of the first message's header (4 for the
 * startup message, which has no type byte; 5 otherwise).
 */
function framing(first: 4 | 5, onMessage: (type: number) => void, onBody?: (type: number, body: Buffer) => void) {
  const header = Buffer.alloc(5);
  let headerSize: number = first;
  let filled = 0;
  let type = 0;
  let left = 0;
  let inBody = false;
  return {
    feed(chunk: Buffer) {
      let i = 0;
      while (i < chunk.length) {
        if (inBody) {
          const n = Math.min(left, chunk.length - i);
          onBody?.(type, chunk.subarray(i, i + n));
          i += n;
          left -= n;
          if (left > 0) continue;
          inBody = false;
          onMessage(type);
          continue;
        }
        header[filled++] = chunk.readUInt8(i++);
        if (filled < headerSize) continue;
        type = headerSize === 5 ? header.readUInt8(0) : 0;
        left = Math.max(0, header.readUInt32BE(headerSize - 4) - 4);
        filled = 0;
        headerSize = 5;
        if (left > 0) inBody = true;
        else onMessage(type);
      }
    },
  };
}
