// The session defaults a DBA may set on a role or a database (ALTER ROLE / ALTER DATABASE ... SET)
// change nothing: bootstrap, check, a re-run and provision succeed under any combination, and a
// held lock fails both bootstrap and check with 4 (never 1, never a stack trace). fast-check draws
// the combinations; each is applied to a fresh tenant's role (bootstrap, check), and to the
// deployer's role or to the tenants' database (provision).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import postgres from 'postgres';
import { assertExit, runCli, type RunResult } from './harness/cli.js';
import { instanceEnv, setupState } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';
import { tempDir } from './harness/net.js';

let pg: PgServer;
let deployerUrl: string;
const DEPLOYER_PASSWORD = 'Deployer-Password-42';
let serverLocale = 'C';

before(async () => {
  pg = await startPostgres({ tls: false });
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  await pg.admin.unsafe('create database tenants owner deployer');
  deployerUrl = pg.url('deployer', DEPLOYER_PASSWORD, { database: 'tenants' });
  // lc_messages: only 'C' and the locale initdb installed exist on the server.
  const [row] = await pg.admin<{ setting: string }[]>`select setting from pg_settings where name = 'lc_messages'`;
  serverLocale = row?.setting || 'C';
  outRoot = tempDir('sf-sd-');
});
after(async () => {
  await pg?.stop();
});

/** Each setting a DBA may default on a role or database, with values that differ from the program's. */
const SETTINGS = {
  DateStyle: ['German', 'SQL, DMY', 'SQL, MDY', 'Postgres, DMY', 'Postgres, MDY', 'ISO, DMY', 'ISO, YMD'],
  IntervalStyle: ['postgres_verbose', 'sql_standard', 'iso_8601'],
  TimeZone: ['Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham', 'Etc/GMT+12', 'Asia/Kathmandu'],
  extra_float_digits: ['-15', '0', '3'],
  bytea_output: ['escape'],
  search_path: ['public', '"$user", public', 'pg_temp, public'],
  statement_timeout: ['1ms', '50ms'],
  lock_timeout: ['1ms'],
  idle_session_timeout: ['50ms', '200ms'],
  idle_in_transaction_session_timeout: ['50ms'],
  default_transaction_read_only: ['on'],
  default_transaction_isolation: ['serializable', 'repeatable read', 'read uncommitted'],
  default_transaction_deferrable: ['on'],
  client_min_messages: ['debug5', 'log', 'error'],
  lc_messages: ['C', '<server>'],
  standard_conforming_strings: ['off'],
  escape_string_warning: ['off'],
  xmloption: ['document'],
  exit_on_error: ['on'],
  quote_all_identifiers: ['on'],
  transform_null_equals: ['on'],
  check_function_bodies: ['off'],
} as const satisfies Record<string, readonly string[]>;

type Combination = Record<string, string>;

const combination: fc.Arbitrary<Combination> = fc
  .record(Object.fromEntries(Object.entries(SETTINGS).map(([name, values]) => [name, fc.constantFrom(...values)])), {
    requiredKeys: [],
  })
  .filter((c) => Object.keys(c).length >= 3) as fc.Arbitrary<Combination>;

/** `SET name = 'value'` clauses; the value as a literal (DateStyle's comma, search_path's list). */
function setClauses(c: Combination): string[] {
  return Object.entries(c).map(([name, value]) => {
    const v = value === '<server>' ? serverLocale : value;
    // search_path is a list: one literal per element, as ALTER ROLE takes it.
    const literal =
      name === 'search_path'
        ? v
            .split(/,\s*/)
            .map((e) => `'${e.replace(/'/g, "''")}'`)
            .join(', ')
        : `'${v.replace(/'/g, "''")}'`;
    return `set ${name} = ${literal}`;
  });
}

async function applyTo(sql: postgres.Sql, target: string, c: Combination): Promise<void> {
  for (const clause of setClauses(c)) await sql.unsafe(`alter ${target} ${clause}`);
}

const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;
const describeRun = (what: string, c: Combination, r: RunResult) =>
  `${what} under ${JSON.stringify(c)}: exit ${r.code}`;

/**
 * Holds the bootstrap lock as the tenant itself (its own sessions show their state and since when),
 * in a session that sets aside the role's defaults drawn for the run.
 */
async function holdLock(tenant: Tenant): Promise<() => Promise<void>> {
  const session = postgres(tenant.url, {
    max: 1,
    onnotice: () => {},
    connection: {
      application_name: 'stuck-bootstrap',
      statement_timeout: '0',
      lock_timeout: '0',
      idle_session_timeout: '0',
      idle_in_transaction_session_timeout: '0',
      default_transaction_read_only: 'off',
      exit_on_error: 'off',
      search_path: 'pg_catalog',
    } as Record<string, string> as never,
    // (strings: postgres.js leaves a 0 or false out of the startup packet)
  });
  await session.unsafe(`begin; lock table ${quote(tenant.schema)}.superfasttt_lock in exclusive mode`);
  return async () => {
    await session.unsafe('rollback').catch(() => {});
    await session.end({ timeout: 1 });
  };
}

/** One directory for every run's .env files (provision makes a directory per run in it). */
let outRoot: string;

let runs = 0;
let provisioned = 0;

it(
  'bootstrap, check, re-run and provision never exit 1 ' + 'under any session defaults of the role or database',
  async () => {
    // The counterexample and the failed assertion (its output), both in the test's error.
    await fc
      .assert(
        fc.asyncProperty(
          combination,
          fc.boolean(),
          fc.constantFrom('role', 'database'),
          async (c, withLock, provisionTarget) => {
            runs++;
            const tenant = await createTenant(pg);
            await applyTo(pg.admin, `role ${quote(tenant.role)}`, c);
            const env = instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '1' });

            // Provision at the same time, as the deployer, under the same defaults
            // (its role, or the tenants' database).
            const name = `sd${runs}`;
            const target = provisionTarget === 'role' ? 'role deployer' : 'database tenants';
            await applyTo(pg.admin, target, c);
            const provisioning = runCli(
              { PROVISION_DATABASE_URL: deployerUrl },
              { args: ['provision', '--tenant', name, '--out-dir', join(outRoot, name)] },
            );

            try {
              const first = await runCli(env);
              assertExit(first, 0);
              assert.equal((await setupState(pg, tenant.schema))?.completed, true, describeRun('bootstrap', c, first));
              // check on a complete instance reads completed_at (a timestamp) and the history.
              const checked = await runCli(env, { args: ['check', '--json'] });
              assertExit(checked, 0);
              assert.equal((JSON.parse(checked.stdout) as { ok: boolean }).ok, true, describeRun('check', c, checked));
              assertExit(await runCli(env), 0, /nothing changed/);
              if (withLock) {
                // A held lock: a complete instance is confirmed without waiting; with something to do (another
                // super admin), both give up after DATABASE_LOCK_TIMEOUT naming the holder (its "since" is a
                // timestamp).
                const release = await holdLock(tenant);
                try {
                  assertExit(await runCli(env), 0, /confirmed without the lock/);
                  assertExit(
                    await runCli(env, { args: ['check'] }),
                    0,
                    /a bootstrap would confirm it without the lock/,
                  );
                  const work = { ...env, AUTO_SUPERADMIN_EMAIL: 'second-admin@client.example' };
                  assertExit(
                    await runCli(work),
                    4,
                    new RegExp(
                      'gave up: table superfasttt_lock: ExclusiveLock held by PostgreSQL backend pid \\d+ \\(role ' +
                        '\\w+, stuck-bootstrap, idle in transaction since \\d{4}-\\d\\d-\\d\\dT',
                    ),
                  );
                  assertExit(
                    await runCli(work, { args: ['check'] }),
                    4,
                    new RegExp(
                      'gave up: table superfasttt_lock: ExclusiveLock held by PostgreSQL backend pid \\d+ \\(role ' +
                        '\\w+, stuck-bootstrap, idle in transaction since \\d{4}-\\d\\d-\\d\\dT',
                    ),
                  );
                } finally {
                  await release();
                }
              }
              const p = await provisioning;
              assertExit(p, 0, new RegExp(`${name}: created`));
              provisioned++;
            } finally {
              await provisioning.catch(() => undefined);
              await pg.admin.unsafe(`alter ${target} reset all`);
            }
          },
        ),
        { numRuns: 14, endOnFailure: true },
      )
      .catch((error: Error) => {
        throw new Error(`${error.message}\n${(error.cause as Error | undefined)?.message ?? ''}`);
      });
    assert.equal(provisioned, runs);
  },
);
