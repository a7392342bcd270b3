// TLS means what libpq means: every sslmode × sslrootcert × DATABASE_SSL × server, generated,
// against real PostgreSQL servers (one per kind), through the built executable (`check --json`).
// The expected outcome of each cell comes from `libpq()` below, written from libpq's documentation
// ("SSL Support", sslmode and sslrootcert), not from the program's code. Then PG* variables: the
// program reads none, warns, and no value of them (hostile ones included) crashes it or weakens TLS.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { instanceEnv } from './harness/instance.js';
import { issueCert, tempDir, testCa, type TestCa } from './harness/net.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';

const MODES = [undefined, 'disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
type Mode = (typeof MODES)[number];
/**
 * sslrootcert: absent, the CA of the good servers, another CA, system (Node's store),
 * system with NODE_EXTRA_CA_CERTS = the right CA.
 */
const ROOTS = ['absent', 'right', 'other', 'system', 'system+extra'] as const;
type Root = (typeof ROOTS)[number];
const SSL = [false, true] as const;
/**
 * plain: no TLS. untrusted: TLS-only, certificate of the other CA.
 * wronghost: the right CA, but only for DNS:other.example. good: the right CA, for 127.0.0.1.
 */
const SERVERS = ['plain', 'untrusted', 'wronghost', 'good'] as const;
type ServerKind = (typeof SERVERS)[number];
type Outcome = 'config' | 'tls' | 'plain' | 'refused';

interface Cell {
  mode: Mode;
  root: Root;
  ssl: boolean;
  server: ServerKind;
}

/**
 * libpq's answer, from its documentation:
 * - sslrootcert=system: "the default sslmode is changed to verify-full, and any weaker setting will
 *   result in an error"; the roots are the TLS implementation's (for Node: its bundle, extended by
 *   NODE_EXTRA_CA_CERTS, as OpenSSL's by SSL_CERT_FILE).
 * - DATABASE_SSL=true (ours): at least require; with disable/allow/prefer, a configuration error.
 * - verify-ca without a root file: refused ("root certificate file does not exist"): a configuration
 *   error here. verify-full without one: our documented choice, the system store (libpq would
 *   refuse for want of ~/.postgresql/root.crt; no cell connects either way, since the system store
 *   does not trust the test CAs).
 * - sslrootcert file: "if the file exists, the server's certificate will be verified to be signed by
 *   one of these authorities", in any mode using TLS; verify-full also checks the host name.
 * - disable: plaintext only. allow: plaintext, then TLS if that fails. prefer (default): TLS, then
 *   plaintext if that fails. require, verify-ca, verify-full: TLS only.
 * The TLS servers accept only TLS (hostssl); the plain server has no TLS at all.
 */
function libpq(c: Cell): Outcome {
  const system = c.root === 'system' || c.root === 'system+extra';
  if (c.ssl && (c.mode === 'disable' || c.mode === 'allow' || c.mode === 'prefer')) return 'config';
  if (system && c.mode !== undefined && c.mode !== 'verify-full') return 'config';
  const mode = c.mode ?? (system ? 'verify-full' : c.ssl ? 'require' : 'prefer');
  if (mode === 'verify-ca' && c.root === 'absent') return 'config';

  // Which CA the client trusts when it verifies: a file's, or the system store's.
  const trusts: 'A' | 'B' | 'none' =
    c.root === 'right' ? 'A' : c.root === 'other' ? 'B' : c.root === 'system+extra' ? 'A' : 'none';
  const verifiesChain = c.root !== 'absent' || mode === 'verify-full';
  const serverCa = c.server === 'untrusted' ? 'B' : 'A';
  const tlsWorks =
    c.server !== 'plain' &&
    (!verifiesChain || trusts === serverCa) &&
    (mode !== 'verify-full' || c.server !== 'wronghost');
  const plainWorks = c.server === 'plain';
  switch (mode) {
    case 'disable':
      return plainWorks ? 'plain' : 'refused';
    case 'allow':
      return plainWorks ? 'plain' : tlsWorks ? 'tls' : 'refused';
    case 'prefer':
      return tlsWorks ? 'tls' : plainWorks ? 'plain' : 'refused';
    default:
      return tlsWorks ? 'tls' : 'refused';
  }
}

function* cells(): Generator<Cell> {
  for (const mode of MODES)
    for (const root of ROOTS) for (const ssl of SSL) for (const server of SERVERS) yield { mode, root, ssl, server };
}

const name = (c: Cell) =>
  `sslmode=${c.mode ?? '(unset)'} sslrootcert=${c.root} DATABASE_SSL=${c.ssl ? 'true' : '(unset)'} server=${c.server}`;

interface Target {
  pg: PgServer;
  tenant: Tenant;
}

let caA: TestCa;
let caB: TestCa;
const targets = {} as Record<ServerKind, Target>;
const secrets: string[] = [];

function cellEnv(c: Cell, target: Target): Env {
  const url = new URL(target.tenant.url);
  url.search = '';
  if (c.mode) url.searchParams.set('sslmode', c.mode);
  const rootParam = {
    absent: undefined,
    right: caA.certFile,
    other: caB.certFile,
    system: 'system',
    'system+extra': 'system',
  }[c.root];
  if (rootParam) url.searchParams.set('sslrootcert', rootParam);
  return instanceEnv(target.tenant, {
    DATABASE_URL: url.toString(),
    ...(c.ssl && { DATABASE_SSL: 'true' }),
    ...(c.root === 'system+extra' && { NODE_EXTRA_CA_CERTS: caA.certFile }),
  });
}

interface Observed {
  outcome: Outcome | `exit ${number | null}`;
  result: RunResult;
}

async function observe(env: Env, args: string[] = ['check', '--json']): Promise<Observed> {
  const result = await runCli(env, { args, timeoutMs: 60_000 });
  if (result.code === 2) return { outcome: 'config', result };
  if (result.code === 3) return { outcome: 'refused', result };
  if (result.code === 0) {
    const database = (JSON.parse(result.stdout) as { checks: Array<{ name: string; message: string }> }).checks.find(
      (check) => check.name === 'database',
    );
    if (/TLS on/.test(database?.message ?? '')) return { outcome: 'tls', result };
    if (/TLS off/.test(database?.message ?? '')) return { outcome: 'plain', result };
  }
  return { outcome: `exit ${result.code}`, result };
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}

const CONCURRENCY = 4;

before(async () => {
  caA = testCa('superfasttt-test-ca-a');
  caB = testCa('superfasttt-test-ca-b');
  const certs = {
    untrusted: issueCert(caB, 'DNS:localhost,IP:127.0.0.1'),
    wronghost: issueCert(caA, 'DNS:other.example'),
    good: issueCert(caA, 'DNS:localhost,IP:127.0.0.1'),
  };
  const servers = await Promise.all(
    SERVERS.map((kind) =>
      kind === 'plain' ? startPostgres({ tls: false }) : startPostgres({ tls: true, cert: certs[kind] }),
    ),
  );
  await Promise.all(
    SERVERS.map(async (kind, i) => {
      const pg = servers[i]!;
      const tenant = await createTenant(pg);
      secrets.push(tenant.password);
      targets[kind] = { pg, tenant };
      // Bootstrapped once, so that `check` passes whenever the connection is made.
      const url = new URL(tenant.url);
      url.search = kind === 'plain' ? '?sslmode=disable' : '?sslmode=require';
      assertExit(await runCli(instanceEnv(tenant, { DATABASE_URL: url.toString() })), 0);
    }),
  );
});

after(async () => {
  await Promise.all(Object.values(targets).map((t) => t.pg.stop()));
});

describe('sslmode × sslrootcert × DATABASE_SSL × server: what libpq would do', () => {
  it('every cell: the same outcome as libpq (configuration error, TLS, plaintext, or refused)', async () => {
    const all = [...cells()];
    const started = performance.now();
    const observed = await pool(all, CONCURRENCY, async (c) => ({
      c,
      ...(await observe(cellEnv(c, targets[c.server]))),
    }));
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const wrong = observed.filter((o) => o.outcome !== libpq(o.c));
    const counts = Object.fromEntries(
      ['config', 'tls', 'plain', 'refused'].map((k) => [k, observed.filter((o) => o.outcome === k).length]),
    );
    process.stdout.write(`# ${all.length} cells in ${seconds} s: ${JSON.stringify(counts)}\n`);
    assert.deepEqual(
      wrong.map((o) => `${name(o.c)}: expected ${libpq(o.c)}, got ${o.outcome}`),
      [],
      wrong
        .slice(0, 3)
        .map((o) => `${name(o.c)}\n${o.result.output}`)
        .join('\n---\n'),
    );
    for (const o of observed) {
      assertNoSecrets(o.result, secrets);
      // No stack trace, and a configuration error names the variable.
      if (o.outcome === 'config') assertExit(o.result, 2, /DATABASE_URL/);
      if (o.outcome === 'refused') assertExit(o.result, 3);
    }
    // Every outcome occurs: a matrix where, say, nothing connects would prove little.
    for (const outcome of ['config', 'tls', 'plain', 'refused']) assert.ok(counts[outcome]! > 0, `no cell ${outcome}`);
  });

  it('PROVISION_DATABASE_URL follows the same rules (configuration errors name it)', async () => {
    const target = targets.good;
    const base = new URL(target.tenant.url);
    for (const query of [
      '?sslrootcert=system&sslmode=require',
      '?sslrootcert=system&sslmode=verify-ca',
      '?sslmode=verify-ca',
    ]) {
      const url = new URL(base);
      url.search = query;
      const r = await runCli(
        { PROVISION_DATABASE_URL: url.toString() },
        { args: ['provision', '--tenant', 'tlsmatrix'] },
      );
      assertExit(r, 2, /PROVISION_DATABASE_URL: sslmode=/);
    }
  });
});

describe('libpq environment variables (PG*)', () => {
  const PG_NAMES = [
    'PGHOST',
    'PGHOSTADDR',
    'PGPORT',
    'PGUSER',
    'PGPASSWORD',
    'PGDATABASE',
    'PGSSLMODE',
    'PGSSLROOTCERT',
    'PGSSLCERT',
    'PGSSLKEY',
    'PGTARGETSESSIONATTRS',
    'PGOPTIONS',
    'PGAPPNAME',
    'PGCONNECT_TIMEOUT',
    'PGSERVICE',
    'PGPASSFILE',
    'PGSSLNEGOTIATION',
    'PGGSSENCMODE',
    'PGCHANNELBINDING',
    'PGREQUIREAUTH',
    'PGSSL',
    'PGDEBUG',
    'PGMAX',
    'PGPREPARE',
    'PGBACKOFF',
    'PGKEEP_ALIVE',
    'PGMAX_PIPELINE',
    'PGIDLE_TIMEOUT',
    'PGMAX_LIFETIME',
    'PGFETCH_TYPES',
    'PGUSERNAME',
    'PGCLIENTENCODING',
    'PGTZ',
    'PGDATESTYLE',
  ] as const;
  // Loopback only: a value that were used would still send nothing off this machine.
  const hostile = fc.oneof(
    fc.constantFrom(
      'disable',
      'allow',
      'prefer',
      'require',
      'verify-ca',
      'verify-full',
      'direct',
      'true',
      'false',
      '0',
      '1',
      '-1',
      '',
      ' ',
      '127.0.0.2',
      '127.0.0.1',
      'localhost',
      '::1',
      '/tmp',
      'system',
      '/nonexistent/ca.pem',
      'read-only',
      'standby',
      'nonsense-attrs',
      '99999999999999999999',
      'NaN',
      '-c statement_timeout=1',
      'postgres',
      '%',
      '\u0000',
      'x'.repeat(5000),
    ),
    fc.string({ maxLength: 40 }),
    fc.integer({ min: -1, max: 70000 }).map(String),
  );
  const pgEnv = fc.dictionary(fc.constantFrom(...PG_NAMES), hostile, { minKeys: 1, maxKeys: 8 });

  it('never crash, never weaken TLS: verify-full still verifies, PGHOST and friends go nowhere', async () => {
    const target = targets.good;
    const url = (root: string) => {
      const u = new URL(target.tenant.url);
      u.search = '';
      u.searchParams.set('sslmode', 'verify-full');
      u.searchParams.set('sslrootcert', root);
      return u.toString();
    };
    await fc.assert(
      fc.asyncProperty(pgEnv, async (pg) => {
        const values = Object.fromEntries(Object.entries(pg).map(([k, v]) => [k, v.replace(/\0/g, '')]));
        const [good, bad] = await Promise.all([
          observe(instanceEnv(target.tenant, { ...values, DATABASE_URL: url(caA.certFile) })),
          observe(instanceEnv(target.tenant, { ...values, DATABASE_URL: url(caB.certFile) })),
        ]);
        assert.equal(good.outcome, 'tls', `with ${JSON.stringify(values).slice(0, 300)}:\n${good.result.output}`);
        assert.equal(bad.outcome, 'refused', `with ${JSON.stringify(values).slice(0, 300)}:\n${bad.result.output}`);
        for (const name of Object.keys(values))
          assert.match(good.result.stderr, new RegExp(`${name}\\b.*set but ignored|set but ignored`));
        assertNoSecrets(good.result, [target.tenant.password]);
      }),
      { numRuns: 12 },
    );
  });

  it('a URL asking for plaintext stays plaintext, and PGSSLMODE=require does not matter either way', async () => {
    const plain = targets.plain;
    const u = new URL(plain.tenant.url);
    u.search = '?sslmode=disable';
    const r = await observe(
      instanceEnv(plain.tenant, {
        DATABASE_URL: u.toString(),
        PGSSLMODE: 'require',
        PGSSLROOTCERT: caA.certFile,
        PGHOST: '127.0.0.2',
      }),
    );
    assert.equal(r.outcome, 'plain', r.result.output);
    assert.match(r.result.stderr, /PGHOST, PGSSLMODE, PGSSLROOTCERT are set but ignored \(libpq variables\)/);
  });

  it("an empty CA file (an unfilled secret mount) is a configuration error, never Node's public CAs", async () => {
    const target = targets.good;
    const empty = join(tempDir('sf-tls-'), 'empty-ca.pem');
    writeFileSync(empty, '');
    const u = new URL(target.tenant.url);
    u.search = '?sslmode=verify-ca';
    const r = await runCli(instanceEnv(target.tenant, { DATABASE_URL: u.toString(), DATABASE_SSL_CA_FILE: empty }), {
      args: ['check'],
    });
    assertExit(r, 2, /DATABASE_SSL_CA_FILE: the CA file .*empty-ca\.pem holds no PEM certificate \(it is empty\)/);
  });

  it('check --env-file: PG* variables in the file are removed too, with the warning', async () => {
    const target = targets.good;
    const u = new URL(target.tenant.url);
    u.password = '';
    const file = join(tempDir('sf-tls-'), 'instance.env');
    const env = instanceEnv(target.tenant, { DATABASE_URL: u.toString() });
    writeFileSync(
      file,
      [...Object.entries(env).map(([k, v]) => `${k}=${v}`), `PGPASSWORD=${target.tenant.password}`].join('\n') + '\n',
    );
    const r = await runCli({}, { args: ['check', '--env-file', file] });
    assertExit(r, 3, /PGPASSWORD .*(is|are) set but ignored/, /refused the password of user/);
  });

  it('a URL without a password does not borrow PGPASSWORD (postgres.js would), nor PGUSER for its user', async () => {
    const target = targets.good;
    const u = new URL(target.tenant.url);
    u.password = '';
    const r = await observe(
      instanceEnv(target.tenant, {
        DATABASE_URL: u.toString(),
        PGPASSWORD: target.tenant.password,
        PGUSER: target.pg.superuser,
        PGDATABASE: 'postgres',
      }),
    );
    assert.equal(r.outcome, 'refused', r.result.output);
    assert.match(r.result.output, /refused the password of user/);
  });
});
