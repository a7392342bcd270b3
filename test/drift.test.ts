// Drift: check compares the schema an instance has with what its applied migrations produce
// (migrations/catalog.json), reports each difference on its `drift` line as a warning, and keeps its exit
// code (the bootstrap does not fail on drift). The reference file must be what the migrations produce, on
// every supported PostgreSQL major that the catalog is read the same way on.
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { CATALOG_FILE, catalogEntries, committedCatalog } from '../build/catalog.js';
import { assertExit, BUNDLE, runCli, type RunResult } from './harness/cli.js';
import { instanceEnv } from './harness/instance.js';
import { tempDir } from './harness/net.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';

let pg: PgServer;

before(async () => {
  pg = await startPostgres({ tls: false });
});
after(async () => {
  await pg?.stop();
});

interface Line {
  name: string;
  status: 'pass' | 'fail' | 'skip' | 'warn';
  message: string;
  fix: string | null;
  exit_code: number | null;
  drift?: Array<{ kind: string; object: string; name: string; differences?: string[] }>;
}

/** A tenant bootstrapped by the built CLI (storage and email off), then changed by `alter` as a superuser. */
async function instance(alter?: (sql: postgres.Sql, schema: string) => Promise<unknown>): Promise<Tenant> {
  const tenant = await createTenant(pg);
  assertExit(await runCli(instanceEnv(tenant)), 0);
  if (alter) {
    const sql = postgres(pg.url(pg.superuser, pg.superpassword), {
      max: 1,
      onnotice: () => {},
      connection: { search_path: tenant.schema },
    });
    try {
      await alter(sql, tenant.schema);
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
  return tenant;
}

async function checkDrift(tenant: Tenant): Promise<{ r: RunResult; line: Line; names: string[] }> {
  const r = await runCli(instanceEnv(tenant), { args: ['check', '--json'] });
  const report = JSON.parse(r.stdout) as { exit_code: number; checks: Line[] };
  const line = report.checks.find((c) => c.name === 'drift');
  assert.ok(line, `no drift line:\n${r.stdout}`);
  assert.equal(report.exit_code, r.code);
  return { r, line, names: report.checks.map((c) => c.name) };
}

const items = (line: Line) =>
  (line.drift ?? []).map((i) => `${i.kind} ${i.object} ${i.name}${i.differences ? `: ${i.differences}` : ''}`);

describe('check reports drift, exit code unchanged', () => {
  it('a clean instance matches its migrations; the line comes right after migrations', async () => {
    const { r, line, names } = await checkDrift(await instance());
    assertExit(r, 0);
    assert.equal(names[names.indexOf('migrations') + 1], 'drift');
    assert.equal(line.status, 'pass');
    assert.equal(line.message, 'schema matches migrations 0001_initial');
    assert.deepEqual(line.drift, []);
    // dist/ alone, away from the repository (the image ships only dist/): the reference is in the bundle.
    const alone = tempDir('sf-drift-dist-');
    cpSync(dirname(BUNDLE), alone, { recursive: true });
    const table = await runCli(instanceEnv(await instance()), {
      args: ['check'],
      bundle: join(alone, 'superfasttt-bootstrap.mjs'),
      cwd: alone,
    });
    assertExit(table, 0, /^ok\s+drift\s.*schema matches migrations 0001_initial$/m);
  });

  const cases: Array<[string, string, string[]]> = [
    [
      "a column's type changed",
      'alter table users alter column phone type varchar(20)',
      ['changed column users.phone: type text → character varying(20)'],
    ],
    ['a column added to users', 'alter table users add column nickname text', ['extra column users.nickname']],
    ['a column dropped', 'alter table users drop column phone', ['missing column users.phone']],
    [
      'an index dropped (with its unique constraint)',
      'alter table users drop constraint users_email_key',
      ['missing constraint users.users_email_key', 'missing index users.users_email_key'],
    ],
    [
      'an index added on our table',
      'create index users_phone_idx on users (phone)',
      ['extra index users.users_phone_idx'],
    ],
    [
      'a constraint dropped',
      'alter table users drop constraint users_role_check',
      ['missing constraint users.users_role_check'],
    ],
    [
      'a default changed',
      "alter table users alter column role set default 'admin'",
      ["changed column users.role: default 'user'::text → 'admin'::text"],
    ],
    [
      'the setup_state trigger dropped',
      'drop trigger setup_state_guard on setup_state',
      ['missing trigger setup_state.setup_state_guard'],
    ],
    [
      'a trigger disabled',
      'alter table setup_state disable trigger setup_state_no_truncate',
      ['changed trigger setup_state.setup_state_no_truncate: enabled O → D'],
    ],
  ];
  for (const [what, ddl, expected] of cases) {
    it(`${what}: warn, listed, with a fix; exit 0`, async () => {
      const { r, line } = await checkDrift(await instance((sql) => sql.unsafe(ddl)));
      assertExit(r, 0);
      assert.equal(line.status, 'warn');
      assert.equal(line.exit_code, null);
      assert.deepEqual(items(line), expected);
      assert.match(line.message, /^schema differs from migrations 0001_initial in \d+ place\(s\): /);
      assert.match(line.fix ?? '', /make it a new migration/);
    });
  }

  it('the table shows WARN and names the warning in the result, still exit 0', async () => {
    const tenant = await instance((sql) => sql`alter table users add column nickname text`);
    const r = await runCli(instanceEnv(tenant), { args: ['check'] });
    assertExit(
      r,
      0,
      /^WARN\s+drift\s.*extra column users\.nickname$/m,
      /fix: restore what differs/,
      /Result: all checks passed \(exit 0\); 1 warning\(s\): drift/,
    );
    // The bootstrap does not fail on drift either (check predicts it).
    assertExit(await runCli(instanceEnv(tenant)), 0);
  });

  it("a table, index or function the app adds of its own is not drift (nor another table's columns)", async () => {
    const tenant = await instance();
    const app = postgres(tenant.url, { max: 1, onnotice: () => {} });
    try {
      await app.unsafe(`set search_path to "${tenant.schema}"`);
      await app`create table app_notes (id int primary key, body text)`;
      await app`create index app_notes_body on app_notes (body)`;
      await app`create function app_helper() returns int language sql as 'select 1'`;
    } finally {
      await app.end({ timeout: 1 });
    }
    const { r, line } = await checkDrift(tenant);
    assertExit(r, 0);
    assert.equal(line.status, 'pass', line.message);
  });

  it("a trigger function's body replaced: the schema check refuses it first (exit 4), drift skipped", async () => {
    const tenant = await instance((sql) =>
      sql.unsafe(
        'create or replace function setup_state_guard() returns trigger language plpgsql ' +
          'as $$ begin return new; end $$',
      ),
    );
    const { r, line } = await checkDrift(tenant);
    assertExit(r, 4);
    assert.equal(line.status, 'skip');
    assert.match(line.message, /skipped: migrations did not pass/);
  });

  it('nothing applied yet: nothing to compare', async () => {
    const tenant = await createTenant(pg);
    const { r, line } = await checkDrift(tenant);
    assertExit(r, 0);
    assert.equal(line.status, 'pass');
    assert.match(line.message, /no migration applied yet/);
  });
});

describe('a clean instance matches on every major the catalog was checked on', () => {
  for (const version of [14, 15] as const) {
    it(`PostgreSQL ${version}`, async () => {
      const other = await startPostgres({ tls: false, version });
      try {
        const tenant = await createTenant(other);
        assertExit(await runCli(instanceEnv(tenant)), 0);
        const r = await runCli(instanceEnv(tenant), { args: ['check'] });
        assertExit(r, 0, /^ok\s+drift\s.*schema matches migrations 0001_initial$/m);
      } finally {
        await other.stop();
      }
    });
  }
});

describe('the reference catalog', () => {
  it(`${CATALOG_FILE} is what the migrations produce (PostgreSQL 14, 15 and 16 alike)`, async () => {
    const committed = committedCatalog();
    for (const version of [16, 15, 14] as const) {
      const produced = await catalogEntries(version);
      assert.deepEqual(
        committed,
        produced,
        `${CATALOG_FILE} is not what the migrations produce on PostgreSQL ${version}: run npm run catalog ` +
          '(after adding or changing a migration) and commit the file',
      );
    }
  });
});
