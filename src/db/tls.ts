/**
 * libpq's TLS semantics (sslmode, sslrootcert, with libpq 16's sslrootcert=system) on top of
 * postgres.js' `ssl` option. The rules, as libpq's documentation states them:
 * - sslmode disable: no TLS. allow: plaintext first, TLS if the server refuses plaintext. prefer
 *   (the default): TLS first, plaintext if TLS fails (not offered, handshake or verification failed,
 *   or the server refuses the TLS session). require, verify-ca, verify-full: TLS only.
 * - a root certificate (sslrootcert, or our DATABASE_SSL_CA / DATABASE_SSL_CA_FILE): "if the file
 *   exists, the server's certificate will be verified to be signed by one of these authorities", in
 *   every mode that uses TLS (so require with a root is verify-ca); verify-full also checks the name.
 * - sslrootcert=system: the trust store of the TLS implementation (here Node's: its CA bundle plus
 *   NODE_EXTRA_CA_CERTS); the default sslmode becomes verify-full and any weaker sslmode is an error.
 * - verify-ca without a root certificate is refused (libpq: "root certificate file does not exist").
 *   verify-full without one uses the system store, as with sslrootcert=system (libpq would look for
 *   ~/.postgresql/root.crt, which a container does not have; verify-full against the system store is
 *   the combination libpq 16 itself allows).
 * - DATABASE_SSL=true: at least require (sslmode unset: require, or verify-full with system);
 *   disable, allow or prefer with it is a configuration error.
 * The TLS negotiation itself is guard.ts's (SSLRequest, then the handshake with these options): a
 * server that answers "no TLS" is TlsNotOffered, never a plaintext fallback where TLS is required.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError, DatabaseError } from '../errors.js';
import type { DatabaseUrl, SslMode } from '../config/schema.js';
import type { DatabaseTarget, DatabaseVariables, RootCertificates } from '../config/targets.js';
import { isTlsFailureCode } from '../tls-failure.js';

export type SslOption = false | 'prefer' | 'require' | ConnectionOptions;

/** Where the root certificates come from: none, the system (Node's) store, or a PEM file or text. */
export type RootKind = 'none' | 'system' | 'file';

export interface TlsAttempt {
  tls: boolean;
  ssl: SslOption;
}

export interface TlsPlan {
  mode: SslMode;
  /** TLS must be used: sslmode require or stricter, or DATABASE_SSL=true. */
  required: boolean;
  /** libpq's order of attempts: the next one is tried only when `fallsBack` says so of the previous one's error. */
  attempts: TlsAttempt[];
}

export function rootKind(roots: RootCertificates): RootKind {
  return roots.kind === 'pem' ? 'file' : roots.kind;
}

/** The sslmode that applies (see the rules above), for a configuration that passed tlsConfigProblems. */
export function effectiveSslMode(sslmode: SslMode | undefined, root: RootKind, requireTls: boolean): SslMode {
  return sslmode ?? (root === 'system' ? 'verify-full' : requireTls ? 'require' : 'prefer');
}

/**
 * The combinations libpq refuses, and ours (DATABASE_SSL=true with a weaker sslmode), each naming the
 * variable the target came from (DATABASE_URL or PROVISION_DATABASE_URL).
 */
export function tlsConfigProblems(target: DatabaseTarget): string[] {
  const { sslmode } = target.url;
  const urlVariable = target.vars.url;
  const root = rootKind(target.roots);
  const problems: string[] = [];
  if (target.requireTls && sslmode && ['disable', 'allow', 'prefer'].includes(sslmode)) {
    problems.push(
      `${urlVariable}: sslmode=${sslmode} contradicts ${target.vars.requireTls ?? 'TLS required'}=true; use ` +
        `sslmode=require, verify-ca or verify-full`,
    );
  }
  if (root === 'system' && sslmode && sslmode !== 'verify-full') {
    problems.push(
      `${urlVariable}: sslmode=${sslmode} may not be used with sslrootcert=system (as in libpq 16: any certificate a ` +
        `public CA signed would pass); use sslmode=verify-full, or give the CA file in sslrootcert`,
    );
  }
  if (sslmode === 'verify-ca' && root === 'none') {
    problems.push(
      `${urlVariable}: sslmode=verify-ca needs a root certificate to verify against (libpq refuses it without one); ` +
        `set sslrootcert=/path/ca.pem${target.vars.ca ? `, ${target.vars.ca}` : ''}, or use verify-full (with ` +
        `sslrootcert=system for a public CA)`,
    );
  }
  return problems;
}

export function tlsPlan(target: DatabaseTarget): TlsPlan {
  const url = target.url;
  const root = rootKind(target.roots);
  const problems = tlsConfigProblems(target);
  if (problems.length > 0)
    throw new ConfigError(
      'invalid TLS configuration',
      problems,
      'see docs/configuration.md, "PostgreSQL connection and TLS"',
    );
  const mode = effectiveSslMode(url.sslmode, root, target.requireTls);
  const plain: TlsAttempt = { tls: false, ssl: false };
  if (mode === 'disable') return { mode, required: false, attempts: [plain] };
  const tls: TlsAttempt = { tls: true, ssl: tlsOptions(url, mode, readCa(target.roots), root) };
  switch (mode) {
    case 'allow':
      return { mode, required: false, attempts: [plain, tls] };
    case 'prefer':
      return { mode, required: false, attempts: [tls, plain] };
    default:
      return { mode, required: true, attempts: [tls] };
  }
}

/**
 * TLS that verifies nothing (sslmode=require, prefer, allow without a root certificate). `ca: []`: no
 * root store either. Without it Node parses its ≈150 bundled root certificates on the first TLS
 * connection of the process (≈20 ms on the project's machine, unless NODE_EXTRA_CA_CERTS made it do so at
 * start), for a verification whose result is ignored.
 */
export const UNVERIFIED: ConnectionOptions = Object.freeze({ rejectUnauthorized: false, ca: [] });

function tlsOptions(url: DatabaseUrl, mode: SslMode, ca: string | undefined, root: RootKind): ConnectionOptions {
  if (mode === 'verify-full') {
    // The system store when no file is given (Node's default `ca`). host: so that the name check uses
    // the URL's host (postgres.js sends no SNI for IP addresses).
    return { ...(ca && { ca }), rejectUnauthorized: true, host: url.host };
  }
  // A root certificate verifies the chain in every mode that uses TLS; without one, nothing is verified.
  if (ca !== undefined || root === 'system')
    return { ...(ca && { ca }), rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return UNVERIFIED;
}

/** The PEM text of the roots given as text or as a file; undefined for none or the system store. */
function readCa(roots: RootCertificates): string | undefined {
  if (roots.kind === 'pem') return roots.pem;
  if (roots.kind !== 'file') return undefined;
  const { path: file, from: variable } = roots;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${variable}: cannot read the CA file ${file} (${(error as NodeJS.ErrnoException).code})`,
      [],
      'mount the CA certificate there or fix the path',
    );
  }
  // An empty file (an unfilled secret mount) would otherwise mean Node's public CAs: refused, as libpq does.
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(
      `${variable}: the CA file ${file} holds no PEM certificate${text.trim() === '' ? ' (it is empty)' : ''}`,
      [],
      'mount the PEM certificate(s) of the CA that signed the server certificate there',
    );
  }
  return text;
}

/**
 * Whether libpq would go on to its next attempt after this error: allow's plaintext attempt refused
 * by the server, or prefer's TLS attempt not offered, failed (handshake, verification) or refused.
 * An unreachable server is not a reason (the caller retries the whole sequence).
 */
export function fallsBack(error: unknown, attempt: TlsAttempt): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const refusedByServer = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(57P03|53300)$/.test(code);
  if (!attempt.tls) return refusedByServer;
  return error instanceof TlsNotOffered || refusedByServer || isTlsFailureCode(code);
}

export class TlsNotOffered extends DatabaseError {}

export function tlsNotOffered(host: string, port: number, vars: DatabaseVariables): DatabaseError {
  const required = vars.requireTls ? `${vars.requireTls}=true, ` : '';
  const relax = vars.requireTls
    ? `set ${vars.requireTls}=false and sslmode=prefer or disable`
    : 'set sslmode=prefer or disable';
  return new TlsNotOffered(
    `PostgreSQL at ${host}:${port} does not offer TLS, but TLS is required ` +
      `(${required}sslmode=require/verify-ca/verify-full or ` +
      `sslrootcert=system in ${vars.url}); refusing to connect in plaintext`,
    `enable ssl on the server, or (only on a trusted network) ${relax} in ${vars.url}`,
  );
}
