// libpq's TLS rules as a pure plan: every sslmode × root certificate × DATABASE_SSL, against the
// rules written out again here (test/tls-matrix.test.ts runs the same combinations against servers).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { after, describe, it } from 'node:test';
import type { SslMode } from '../config/schema.js';
import {
  type DatabaseTarget,
  DEPLOYER_DATABASE_VARIABLES,
  INSTANCE_DATABASE_VARIABLES,
  urlDatabaseTarget,
  urlRoots,
} from '../config/targets.js';
import { ConfigError, DatabaseError } from '../errors.js';
import {
  effectiveSslMode,
  fallsBack,
  type RootKind,
  rootKind,
  type TlsAttempt,
  TlsNotOffered,
  type TlsPlan,
  tlsConfigProblems,
  tlsNotOffered,
  tlsPlan,
} from './tls.js';

const PEM_TEXT = '-----BEGIN CERTIFICATE-----\nMIIBtext\n-----END CERTIFICATE-----\n';
const PEM_FILE_CONTENT = '-----BEGIN CERTIFICATE-----\nMIIBfile\n-----END CERTIFICATE-----\n';
const PEM_URL_CONTENT = '-----BEGIN CERTIFICATE-----\nMIIBurl\n-----END CERTIFICATE-----\n';

const dir = mkdtempSync(join(tmpdir(), 'sf-tls-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const caFile = join(dir, 'ca-file.pem');
const urlCaFile = join(dir, 'url-ca.pem');
writeFileSync(caFile, PEM_FILE_CONTENT);
writeFileSync(urlCaFile, PEM_URL_CONTENT);

interface Target {
  sslmode?: SslMode;
  sslrootcert?: string;
  host?: string;
  /** DATABASE_SSL. */
  ssl?: boolean;
  /** DATABASE_SSL_CA (PEM text). */
  ca?: string;
  /** DATABASE_SSL_CA_FILE. */
  caFile?: string;
  /** The deployment machine's PROVISION_DATABASE_URL (the URL is all there is). */
  deployer?: boolean;
}

// The only place that knows the input of the functions under test: a database target built as the
// configuration builds it (instance or deployment machine), and the calls that take it.
function target(t: Target = {}): DatabaseTarget {
  const url = {
    host: t.host ?? 'db.example.internal',
    port: 5432,
    user: 'tenant',
    password: 'Secret-Password-1',
    database: 'app',
    sslmode: t.sslmode,
    sslrootcert: t.sslrootcert,
  };
  const limits = { connectTimeoutSec: 30, lockTimeoutSec: 10, statementTimeoutSec: 60 };
  if (t.deployer) return urlDatabaseTarget(url, limits, DEPLOYER_DATABASE_VARIABLES);
  return {
    url,
    requireTls: t.ssl ?? false,
    roots: t.ca
      ? { kind: 'pem', pem: t.ca, from: 'DATABASE_SSL_CA' }
      : t.caFile
        ? { kind: 'file', path: t.caFile, from: 'DATABASE_SSL_CA_FILE' }
        : urlRoots(url, 'DATABASE_URL'),
    ...limits,
    vars: INSTANCE_DATABASE_VARIABLES,
  };
}
const plan = (t: Target): TlsPlan => tlsPlan(target(t));
const problemsOf = (t: Target): string[] => tlsConfigProblems(target(t));
const kindOf = (t: Target): RootKind => rootKind(target(t).roots);
const notOffered = (host: string, port: number, deployer = false) =>
  tlsNotOffered(host, port, deployer ? DEPLOYER_DATABASE_VARIABLES : INSTANCE_DATABASE_VARIABLES);

/** The TLS options of a plan's TLS attempt. */
function tlsOptionsOf(p: TlsPlan): ConnectionOptions {
  const attempt = p.attempts.find((a) => a.tls);
  assert.ok(attempt && typeof attempt.ssl === 'object' && attempt.ssl !== null, 'no TLS attempt with options');
  return attempt.ssl as ConnectionOptions;
}

const MODES: Array<SslMode | undefined> = [
  undefined,
  'disable',
  'allow',
  'prefer',
  'require',
  'verify-ca',
  'verify-full',
];

/** Every way of giving (or not) a root certificate, with the kind and the PEM text expected. */
const ROOTS: Array<{ label: string; target: Target; kind: 'none' | 'system' | 'file'; pem?: string }> = [
  { label: 'no root', target: {}, kind: 'none' },
  { label: 'sslrootcert=system', target: { sslrootcert: 'system' }, kind: 'system' },
  { label: 'sslrootcert=FILE', target: { sslrootcert: urlCaFile }, kind: 'file', pem: PEM_URL_CONTENT },
  { label: 'DATABASE_SSL_CA', target: { ca: PEM_TEXT }, kind: 'file', pem: PEM_TEXT },
  { label: 'DATABASE_SSL_CA_FILE', target: { caFile }, kind: 'file', pem: PEM_FILE_CONTENT },
];

/** libpq 16's rules, plus DATABASE_SSL=true meaning "at least require". */
function expected(mode: SslMode | undefined, kind: 'none' | 'system' | 'file', ssl: boolean) {
  const refused =
    (ssl && (mode === 'disable' || mode === 'allow' || mode === 'prefer')) ||
    (kind === 'system' && mode !== undefined && mode !== 'verify-full') ||
    (mode === 'verify-ca' && kind === 'none');
  const effective: SslMode = mode ?? (kind === 'system' ? 'verify-full' : ssl ? 'require' : 'prefer');
  const order: Record<SslMode, boolean[]> = {
    disable: [false],
    allow: [false, true],
    prefer: [true, false],
    require: [true],
    'verify-ca': [true],
    'verify-full': [true],
  };
  return {
    refused,
    effective,
    order: order[effective],
    required: ['require', 'verify-ca', 'verify-full'].includes(effective),
  };
}

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${error}`);
    return error;
  }
  assert.fail('not refused');
}

/** Checks one combination's plan (or refusal) against the rules. */
function checkCombination(t: Target, root: (typeof ROOTS)[number], variable: string) {
  const want = expected(t.sslmode, root.kind, t.ssl ?? false);
  assert.equal(kindOf(t), root.kind);
  const problems = problemsOf(t);
  if (want.refused) {
    assert.ok(problems.length > 0, 'accepted');
    for (const problem of problems) assert.ok(problem.startsWith(`${variable}: sslmode=`), problem);
    const error = refusal(() => plan(t));
    assert.deepEqual(error.problems, problems);
    assert.equal(error.exitCode, 2);
    assert.equal(error.fix, 'see docs/configuration.md, "PostgreSQL connection and TLS"');
    return;
  }
  assert.deepEqual(problems, []);
  assert.equal(effectiveSslMode(t.sslmode, root.kind, t.ssl ?? false), want.effective);
  const p = plan(t);
  assert.equal(p.mode, want.effective);
  assert.equal(p.required, want.required);
  assert.deepEqual(
    p.attempts.map((a) => a.tls),
    want.order,
  );
  for (const attempt of p.attempts) if (!attempt.tls) assert.equal(attempt.ssl, false);
  if (!want.order.includes(true)) return;
  const options = tlsOptionsOf(p);
  // The CA of the configuration, read whole; none (the system store) to verify against the system;
  // an empty list, no store at all, when nothing is verified.
  const expectedCa = root.pem ?? (options.rejectUnauthorized === false ? [] : undefined);
  assert.deepEqual(options.ca, expectedCa, 'the CA of the configuration, read whole');
  if (want.effective === 'verify-full') {
    // Chain and name: the name checked is the URL's host, with Node's default identity check.
    assert.equal(options.rejectUnauthorized, true);
    assert.equal(options.host, 'db.example.internal');
    assert.equal(options.checkServerIdentity, undefined);
  } else if (root.pem !== undefined) {
    // A root certificate verifies the chain (require with a root is verify-ca), not the name.
    assert.equal(options.rejectUnauthorized, true);
    assert.equal(options.host, undefined);
    assert.equal(options.checkServerIdentity?.('other.example', {} as never), undefined);
    assert.equal(typeof options.checkServerIdentity, 'function');
  } else {
    // Encryption only, as libpq's require/prefer/allow without a root.
    assert.deepEqual(options, { rejectUnauthorized: false, ca: [] });
  }
}

describe('TLS plan: every sslmode × root certificate × DATABASE_SSL', () => {
  for (const ssl of [false, true])
    for (const root of ROOTS)
      for (const sslmode of MODES)
        it(`sslmode=${sslmode ?? '(unset)'}, ${root.label}, DATABASE_SSL=${ssl}`, () =>
          checkCombination({ ...root.target, sslmode, ssl }, root, 'DATABASE_URL'));
});

describe('TLS plan of the deployment machine: every sslmode × root in PROVISION_DATABASE_URL', () => {
  for (const root of ROOTS.filter((r) => r.target.ca === undefined && r.target.caFile === undefined))
    for (const sslmode of MODES)
      it(`sslmode=${sslmode ?? '(unset)'}, ${root.label}`, () =>
        checkCombination({ ...root.target, sslmode, deployer: true }, root, 'PROVISION_DATABASE_URL'));
});

describe('TLS plan: details', () => {
  it('the attempt order is libpq’s: allow plaintext first, prefer TLS first, require and stricter TLS only', () => {
    const order = (t: Target) => plan(t).attempts.map((a) => (a.tls ? 'tls' : 'plain'));
    assert.deepEqual(order({ sslmode: 'disable' }), ['plain']);
    assert.deepEqual(order({ sslmode: 'allow' }), ['plain', 'tls']);
    assert.deepEqual(order({ sslmode: 'prefer' }), ['tls', 'plain']);
    assert.deepEqual(order({ sslmode: 'require' }), ['tls']);
    assert.deepEqual(order({ sslmode: 'verify-full' }), ['tls']);
    // The default is prefer; require with DATABASE_SSL=true; verify-full with sslrootcert=system.
    assert.deepEqual(order({}), ['tls', 'plain']);
    assert.deepEqual(order({ ssl: true }), ['tls']);
    assert.equal(plan({ sslrootcert: 'system' }).mode, 'verify-full');
  });

  it('verify-full checks the name against the URL host, IPv6 and IP addresses included', () => {
    for (const host of ['10.1.2.3', '::1', 'pg.tenant.svc.cluster.local'])
      assert.equal(tlsOptionsOf(plan({ host, sslmode: 'verify-full' })).host, host);
  });

  it('sslmode=disable never reads the CA file', () => {
    const p = plan({ sslmode: 'disable', caFile: join(dir, 'missing.pem') });
    assert.deepEqual(p.attempts, [{ tls: false, ssl: false }]);
  });

  it('an unreadable, empty or non-PEM CA file is a configuration error naming where it was given', () => {
    const missing = join(dir, 'missing.pem');
    const empty = join(dir, 'empty.pem');
    const notPem = join(dir, 'not.pem');
    writeFileSync(empty, '\n');
    writeFileSync(notPem, 'just some text');
    let error = refusal(() => plan({ sslmode: 'require', caFile: missing }));
    assert.match(error.message, /^DATABASE_SSL_CA_FILE: cannot read the CA file .*missing\.pem \(ENOENT\)/);
    error = refusal(() => plan({ sslmode: 'require', sslrootcert: missing }));
    assert.match(error.message, /^sslrootcert in DATABASE_URL: cannot read/);
    error = refusal(() => plan({ sslmode: 'require', sslrootcert: missing, deployer: true }));
    assert.match(error.message, /^sslrootcert in PROVISION_DATABASE_URL: cannot read/);
    error = refusal(() => plan({ caFile: empty }));
    assert.match(error.message, /holds no PEM certificate \(it is empty\)/);
    error = refusal(() => plan({ sslrootcert: notPem }));
    assert.match(error.message, /holds no PEM certificate$/);
  });

  it('the refusals name the variable and what to use instead', () => {
    const first = (t: Target) => problemsOf(t)[0] ?? '';
    assert.match(first({ sslmode: 'prefer', ssl: true }), /sslmode=prefer contradicts DATABASE_SSL=true/);
    assert.match(first({ sslmode: 'require', sslrootcert: 'system' }), /may not be used with sslrootcert=system/);
    assert.match(first({ sslmode: 'verify-ca' }), /DATABASE_SSL_CA_FILE or DATABASE_SSL_CA/);
    // The deployer's URL has no such variables: the fix does not offer them.
    const deployer = first({ sslmode: 'verify-ca', deployer: true });
    assert.match(deployer, /^PROVISION_DATABASE_URL: sslmode=verify-ca needs a root certificate/);
    assert.doesNotMatch(deployer, /DATABASE_SSL_CA/);
    // Two contradictions at once are both reported.
    assert.equal(problemsOf({ sslmode: 'allow', ssl: true, sslrootcert: 'system' }).length, 2);
  });
});

describe('fallsBack: when libpq goes on to the next attempt', () => {
  const plain: TlsAttempt = { tls: false, ssl: false };
  const tls: TlsAttempt = { tls: true, ssl: { rejectUnauthorized: false } };
  const coded = (code: string) => Object.assign(new Error(code), { code });

  it('after plaintext: only when the server refuses it (a SQLSTATE), not when it is busy or starting', () => {
    assert.equal(fallsBack(coded('28000'), plain), true); // no pg_hba.conf entry ... no encryption
    assert.equal(fallsBack(coded('28P01'), plain), true);
    assert.equal(fallsBack(coded('57P03'), plain), false); // starting up: retried, not a reason
    assert.equal(fallsBack(coded('53300'), plain), false); // too many connections
    assert.equal(fallsBack(coded('ECONNREFUSED'), plain), false);
    assert.equal(fallsBack(coded('CERT_HAS_EXPIRED'), plain), false);
    assert.equal(fallsBack(new Error('no code'), plain), false);
    assert.equal(fallsBack(null, plain), false);
    assert.equal(fallsBack(undefined, plain), false);
  });

  it('after TLS: not offered, handshake or verification failed, or refused by the server', () => {
    assert.equal(fallsBack(notOffered('db', 5432), tls), true);
    for (const code of [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'EPROTO',
      '28000',
    ])
      assert.equal(fallsBack(coded(code), tls), true, code);
    for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'ECONNRESET', '57P03', '53300'])
      assert.equal(fallsBack(coded(code), tls), false, code);
    assert.equal(fallsBack(null, tls), false);
  });

  it('TLS not offered is a database error (exit 3) that names the server and refuses plaintext', () => {
    const error = notOffered('db.example', 6432);
    assert.ok(error instanceof TlsNotOffered && error instanceof DatabaseError);
    assert.equal(error.exitCode, 3);
    assert.match(error.message, /db\.example:6432 does not offer TLS/);
    assert.match(error.message, /refusing to connect in plaintext/);
    assert.match(`${error.message} ${error.fix}`, /DATABASE_SSL/);
    // The deployment machine has no DATABASE_SSL: its message names only its URL.
    const deployer = notOffered('db.example', 6432, true);
    assert.doesNotMatch(`${deployer.message} ${deployer.fix}`, /DATABASE_SSL/);
    assert.match(`${deployer.message} ${deployer.fix}`, /PROVISION_DATABASE_URL/);
  });
});
