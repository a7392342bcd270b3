/**
 * libpq's sslmode semantics on top of postgres.js' `ssl` option, plus a TLS pre-check: postgres.js
 * would start a TLS handshake even after the server said it has no TLS, which surfaces as a vague
 * socket error. We ask first and refuse with a clear message: never a plaintext fallback.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError, DatabaseError } from '../errors.js';
import type { SslMode } from '../config/schema.js';
import type { ConnectSettings } from './connect.js';

export type SslOption = false | 'prefer' | 'require' | ConnectionOptions;

export interface TlsPlan {
  mode: SslMode;
  /** TLS must be used: sslmode require or stricter, or DATABASE_SSL=true. */
  required: boolean;
  ssl: SslOption;
}

export function tlsPlan(env: ConnectSettings): TlsPlan {
  const url = env.DATABASE_URL;
  const mode: SslMode = url.sslmode ?? (env.DATABASE_SSL ? 'require' : 'prefer');
  const ca = readCa(env);
  switch (mode) {
    case 'disable':
      return { mode, required: false, ssl: false };
    case 'allow':
    case 'prefer':
      return { mode, required: false, ssl: 'prefer' };
    case 'require':
      // As libpq: with a root certificate given, require verifies the chain (like verify-ca).
      return { mode, required: true, ssl: ca ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } : 'require' };
    case 'verify-ca':
      return { mode, required: true, ssl: { ...(ca && { ca }), rejectUnauthorized: true, checkServerIdentity: () => undefined } };
    case 'verify-full':
      // host: so that the name check uses the URL's host (postgres.js sends no SNI for IP addresses).
      return { mode, required: true, ssl: { ...(ca && { ca }), rejectUnauthorized: true, host: url.host } };
  }
}

function readCa(env: ConnectSettings): string | undefined {
  if (env.DATABASE_SSL_CA) return env.DATABASE_SSL_CA;
  const file = env.DATABASE_SSL_CA_FILE ?? env.DATABASE_URL.sslrootcert;
  if (!file || file === 'system') return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const variable = env.DATABASE_SSL_CA_FILE ? 'DATABASE_SSL_CA_FILE' : 'sslrootcert in DATABASE_URL';
    throw new ConfigError(`${variable}: cannot read the CA file ${file} (${(error as NodeJS.ErrnoException).code})`, [], 'mount the CA certificate there or fix the path');
  }
}

/**
 * Sends PostgreSQL's SSLRequest and reads the one-byte answer: 'S' (TLS available) or 'N'.
 * Network errors are thrown as they are, so the caller can retry them like any connection error.
 */
export function serverOffersTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (fn: () => void) => {
      socket.destroy();
      fn();
    };
    socket.setTimeout(timeoutMs, () => done(() => reject(Object.assign(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`), { code: 'CONNECT_TIMEOUT' }))));
    socket.once('error', (error) => done(() => reject(error)));
    socket.once('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])));
    socket.once('data', (data) => done(() => resolve(data[0] === 0x53)));
    socket.once('end', () => done(() => reject(Object.assign(new Error('connection closed by the server'), { code: 'ECONNRESET' }))));
  });
}

export function tlsNotOffered(host: string, port: number): DatabaseError {
  return new DatabaseError(
    `PostgreSQL at ${host}:${port} does not offer TLS, but TLS is required (DATABASE_SSL=true or sslmode=require/verify-ca/verify-full in DATABASE_URL); refusing to connect in plaintext`,
    'enable ssl on the server, or (only on a trusted network) set DATABASE_SSL=false and sslmode=prefer or disable',
  );
}
