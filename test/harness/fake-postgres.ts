/**
 * A fake PostgreSQL server (plain TCP, protocol 3, no TLS: sslmode=disable) for the bounded-wait
 * tests: it accepts any startup packet (AuthenticationOk straight away, no password asked), answers
 * the program's first query (connect()'s settings and version query) as PostgreSQL 16.0 would, any
 * other query with no rows, and misbehaves at one chosen phase of each connection:
 *
 * - startup: the answer to the startup packet;
 * - connect-query: the answer to the connection's first query (the settings and version query);
 * - next-query: the answer to its second query (the schema step's first).
 *
 * Behaviours, as in hostile-servers.ts: drip (a valid answer, one byte every DRIP_MS, without
 * end), flood (an answer without end: rows, or one message that never ends, as fast as the client
 * reads), garbage (an HTTP answer instead of the protocol, then silence: what a web server or a
 * proxy on the port would say), close (half an answer, then the connection closed). Loopback only.
 */
import net from 'node:net';
import { drip, DRIP_MS, flood, lie, type HostileServer } from './hostile-servers.js';

export { DRIP_MS };
export const PG_PHASES = ['startup', 'connect-query', 'next-query'] as const;
export type PgPhase = (typeof PG_PHASES)[number];
export const PG_BEHAVIOURS = ['drip', 'flood', 'garbage', 'close'] as const;
export type PgBehaviour = (typeof PG_BEHAVIOURS)[number];

// ---------------------------------------------------------------------------------------------
// Backend messages.

function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`);
const int16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

const authOk = message('R', int32(0));
const parameter = (k: string, v: string) => message('S', cstr(k), cstr(v));
const ready = message('Z', Buffer.from('I'));
const parseComplete = message('1');
const bindComplete = message('2');
const noData = message('n');
const parameters = (n: number) => message('t', int16(n), ...Array.from({ length: n }, () => int32(25)));
/** RowDescription of text-format columns: [name, type oid]. */
const rowDescription = (columns: Array<[string, number]>) =>
  message(
    'T',
    int16(columns.length),
    ...columns.flatMap(([name, oid]) => [
      cstr(name),
      int32(0),
      int16(0),
      int32(oid),
      int16(-1 & 0xffff),
      int32(-1),
      int16(0),
    ]),
  );
const dataRow = (values: string[]) =>
  message('D', int16(values.length), ...values.flatMap((v) => [int32(Buffer.byteLength(v)), Buffer.from(v)]));
const complete = (tag: string) => message('C', cstr(tag));

const STARTUP_ANSWER = Buffer.concat([
  authOk,
  parameter('server_version', '16.0'),
  parameter('server_encoding', 'UTF8'),
  parameter('client_encoding', 'UTF8'),
  parameter('DateStyle', 'ISO, MDY'),
  parameter('integer_datetimes', 'on'),
  parameter('standard_conforming_strings', 'on'),
  message('K', int32(4242), int32(0x5eed)),
  ready,
]);

/** connect()'s query: applied (int8), version (text), num (int4), tls (bool). */
const SETTINGS_COLUMNS: Array<[string, number]> = [
  ['applied', 20],
  ['version', 25],
  ['num', 23],
  ['tls', 16],
];
const SETTINGS_ROW = dataRow(['19', '16.0', '160000', 'f']);

/** A valid answer without end: a description of one text column, then rows. */
const ROWS_HEAD = Buffer.concat([parseComplete, parameters(0), rowDescription([['x', 25]]), bindComplete]);
const ROW = dataRow(['a']);
const ROWS = Buffer.concat(Array.from({ length: (64 * 1024) / ROW.length }, () => ROW));
const HTTP_ANSWER = Buffer.from(
  'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n' +
    'content-length: 11\r\nconnection: keep-alive\r\n\r\nbad request',
);

function misbehave(socket: net.Socket, behaviour: PgBehaviour, phase: PgPhase): void {
  const startup = phase === 'startup';
  switch (behaviour) {
    case 'drip':
      return startup ? drip(socket, '', STARTUP_ANSWER) : drip(socket, '', Buffer.concat([ROWS_HEAD, ROWS]));
    case 'flood':
      // At startup: one ParameterStatus that never ends (the driver keeps a message until it is whole).
      return startup
        ? flood(socket, Buffer.concat([authOk, Buffer.from('S\x7f\xff\xff\xf0')]))
        : flood(socket, ROWS_HEAD, ROWS);
    case 'garbage':
      return lie(socket, HTTP_ANSWER, true);
    case 'close':
      return lie(socket, startup ? STARTUP_ANSWER.subarray(0, 40) : Buffer.concat([ROWS_HEAD, ROW.subarray(0, 6)]));
  }
}

export interface FakePostgres extends HostileServer {
  /** Queries answered or misbehaved at, over every connection. */
  readonly queries: number;
}

export async function startFakePostgres(opts: { phase: PgPhase; behaviour: PgBehaviour }): Promise<FakePostgres> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, queries: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let started = false;
    let queries = 0;
    let gone = false; // misbehaving: nothing more is answered on this connection
    let out: Buffer[] = [];
    let described = false; // the pending statement's columns were described (Describe before a Flush)
    socket.on('data', (chunk: Buffer) => {
      if (gone) return;
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!started) {
          if (buffered.length < 8) return;
          const length = buffered.readUInt32BE(0);
          if (buffered.length < length) return;
          const code = buffered.readUInt32BE(4);
          buffered = buffered.subarray(length);
          if (code === 80877103) {
            socket.write('N'); // SSLRequest: no TLS here
            continue;
          }
          started = true;
          if (opts.phase === 'startup') {
            gone = true;
            return misbehave(socket, opts.behaviour, opts.phase);
          }
          socket.write(STARTUP_ANSWER);
          continue;
        }
        if (buffered.length < 5) return;
        const type = String.fromCharCode(buffered[0]!);
        const length = buffered.readUInt32BE(1);
        if (buffered.length < length + 1) return;
        const body = buffered.subarray(5, length + 1);
        buffered = buffered.subarray(length + 1);
        const first = queries === 0;
        switch (type) {
          case 'P': {
            // name\0 query\0 int16 count of parameter types
            const afterName = body.indexOf(0) + 1;
            const afterQuery = body.indexOf(0, afterName) + 1;
            out.push(parseComplete);
            (socket as net.Socket & { params?: number }).params = body.readUInt16BE(afterQuery);
            break;
          }
          case 'D':
            if (!described) {
              out.push(
                parameters((socket as net.Socket & { params?: number }).params ?? 0),
                first ? rowDescription(SETTINGS_COLUMNS) : noData,
              );
              described = true;
            }
            break;
          case 'B':
            out.push(bindComplete);
            break;
          case 'E':
            out.push(...(first ? [SETTINGS_ROW, complete('SELECT 1')] : [complete('SELECT 0')]));
            break;
          case 'Q':
          case 'S': {
            if (type === 'Q') out.push(complete('SET'));
            queries++;
            state.queries++;
            described = false;
            const misbehaveNow =
              (opts.phase === 'connect-query' && queries === 1) || (opts.phase === 'next-query' && queries === 2);
            if (misbehaveNow) {
              gone = true;
              out = [];
              return misbehave(socket, opts.behaviour, opts.phase);
            }
            socket.write(Buffer.concat([...out, ready]));
            out = [];
            break;
          }
          case 'H': {
            const misbehaveNow =
              (opts.phase === 'connect-query' && queries === 0) || (opts.phase === 'next-query' && queries === 1);
            if (misbehaveNow) {
              gone = true;
              out = [];
              return misbehave(socket, opts.behaviour, opts.phase);
            }
            socket.write(Buffer.concat(out));
            out = [];
            break;
          }
          case 'X':
            socket.end();
            return;
          default: // C (Close), ...: nothing to say until the Sync
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get queries() {
      return state.queries;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
