// src/db/database.ts against a real PostgreSQL: its runtime column list (TABLES, from which the
// Kysely types derive) equals the catalog of a migrated schema, both ways; and every function of
// src/db/queries.ts round-trips through Kysely bound to the postgres.js session or transaction.
// One schema is migrated by the built executable (the history table as the migrations step
// creates it), another by the migration files run directly (its history table copied from the first).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as esbuild from 'esbuild';
import postgres from 'postgres';
import { type ColumnSpec, TABLES } from '../src/db/database.js';
import { type Db, kyselyOver, kyselyOverLoaded, loadKysely } from '../src/db/kysely.js';
import {
  findUserByEmail,
  insertHistory,
  insertSuperAdmin,
  markSetupCompleted,
  markWelcomePending,
  markWelcomeSent,
  promoteToSuperAdmin,
  putSetting,
  readHistory,
  readSetupState,
  readWelcomeEmail,
  recordSettingIfChanged,
  setPasswordHash,
  tablesExist,
} from '../src/db/queries.js';
import { BOOTSTRAP_LOCK_TABLE, HISTORY_TABLE, WELCOME_KEY } from '../src/db/tables.js';
import { assertExit, runCli } from './harness/cli.js';
import { history, instanceEnv } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);
const MIGRATIONS = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((file) => ({ name: file.slice(0, -4), sql: readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8') }));

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

type Catalog = Map<string, Map<string, ColumnSpec & { generated: boolean }>>;

/** Every relation of the schema with its columns (none for a table without columns). */
async function catalog(sql: postgres.Sql | postgres.TransactionSql, schema: string): Promise<Catalog> {
  const rows = await sql<
    {
      table: string;
      column: string | null;
      type: string;
      nullable: boolean;
      has_default: boolean;
      generated: boolean;
    }[]
  >`
    select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
           not a.attnotnull as nullable, a.atthasdef or a.attidentity <> '' as has_default,
           coalesce(a.attgenerated <> '', false) as generated
    from pg_class c
    left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relnamespace = ${schema}::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by c.relname, a.attnum`;
  const tables: Catalog = new Map();
  for (const row of rows) {
    const columns = tables.get(row.table) ?? new Map();
    tables.set(row.table, columns);
    if (row.column === null) continue;
    columns.set(row.column, {
      type: row.type as ColumnSpec['type'],
      nullable: row.nullable,
      hasDefault: row.has_default,
      generated: row.generated,
    });
  }
  return tables;
}

/** Differences between database.ts and the catalog, both ways; empty when they agree. */
function drift(found: Catalog): string[] {
  const declared = TABLES as Record<string, Record<string, ColumnSpec>>;
  const problems: string[] = [];
  const show = (c: ColumnSpec) => `${c.type}${c.nullable ? ' null' : ' not null'}${c.hasDefault ? ' default' : ''}`;
  for (const [table, columns] of Object.entries(declared)) {
    const actual = found.get(table);
    if (!actual) {
      problems.push(`table ${table}: in database.ts, not in the database`);
      continue;
    }
    for (const [column, spec] of Object.entries(columns)) {
      const got = actual.get(column);
      if (!got) problems.push(`${table}.${column}: in database.ts, not in the database`);
      else if (show(got) !== show(spec))
        problems.push(`${table}.${column}: database.ts says ${show(spec)}, the database ${show(got)}`);
    }
  }
  for (const [table, columns] of found) {
    if (table === BOOTSTRAP_LOCK_TABLE) continue; // locked, never read: checked to have no columns
    if (!(table in declared)) {
      problems.push(`table ${table}: in the database, not in database.ts`);
      continue;
    }
    for (const [column, got] of columns) {
      if (!(column in declared[table]!))
        problems.push(`${table}.${column}: in the database (${show(got)}), not in database.ts`);
      if (got.generated) problems.push(`${table}.${column}: a generated column, which database.ts cannot describe yet`);
    }
  }
  return problems;
}

/** A client as the program opens it: one session of the tenant's role, search_path = its schema. */
async function session(tenant: Tenant, max = 1): Promise<postgres.Sql> {
  const sql = postgres(tenant.url, {
    max,
    fetch_types: false,
    onnotice: () => {},
    // max > 1: every connection of the pool gets the search_path (from the startup packet).
    connection: { search_path: tenant.schema },
  });
  await sql`select set_config('search_path', quote_ident(${tenant.schema}), false)`;
  return sql;
}

class Rollback extends Error {}

let pg: PgServer;
/** Migrated by the built executable. */
let built: Tenant;
/** Migrated by running migrations/*.sql as its role; history table copied from `built`'s. */
let direct: Tenant;
const clients: postgres.Sql[] = [];

before(async () => {
  pg = await startPostgres({ tls: false });
  [built, direct] = [await createTenant(pg), await createTenant(pg)];
  assertExit(await runCli(instanceEnv(built)), 0);
  await pg.admin.begin(async (tx) => {
    await tx.unsafe(`set local role ${quote(direct.role)}; set local search_path = ${quote(direct.schema)}`).simple();
    for (const migration of MIGRATIONS) await tx.unsafe(migration.sql).simple();
  });
  const hist = (schema: string) => `${quote(schema)}.${quote(HISTORY_TABLE)}`;
  await pg.admin.unsafe(`create table ${hist(direct.schema)} (like ${hist(built.schema)} including all)`);
  await pg.admin.unsafe(`alter table ${hist(direct.schema)} owner to ${quote(direct.role)}`);
});
after(async () => {
  for (const client of clients) await client.end({ timeout: 1 });
  await pg?.stop();
});

describe('database.ts is the catalog of a migrated schema', () => {
  it('as the bootstrap migrates it: every table and column, type, nullability and default, both ways', async () => {
    const found = await catalog(pg.admin, built.schema);
    assert.deepEqual(drift(found), []);
    assert.deepEqual([...found.keys()].sort(), [...Object.keys(TABLES), BOOTSTRAP_LOCK_TABLE].sort());
    assert.equal(found.get(BOOTSTRAP_LOCK_TABLE)?.size, 0, 'the lock table has no columns');
  });

  it('as migrations/*.sql alone make it', async () => {
    assert.deepEqual(drift(await catalog(pg.admin, direct.schema)), []);
  });

  it('a migration that adds, drops or changes a column or a table is found', async () => {
    const changes: Array<[string, RegExp]> = [
      [
        'alter table users add column nickname text',
        /^users\.nickname: in the database \(text null\), not in database\.ts$/,
      ],
      ['alter table users drop column phone', /^users\.phone: in database\.ts, not in the database$/],
      ['alter table users alter column role type varchar(20)', /^users\.role: .* the database character varying\(20\)/],
      ['alter table instance_settings alter column value drop not null', /^instance_settings\.value: .*jsonb null$/],
      [
        'alter table users alter column role drop default',
        /^users\.role: database\.ts says text not null default, the database text not null$/,
      ],
      [
        'alter table setup_state rename column completed_by to finished_by',
        /setup_state\.completed_by: in database\.ts/,
      ],
      ['create table audit_log (id bigint generated always as identity)', /^table audit_log: in the database/],
      ['drop table instance_settings', /^table instance_settings: in database\.ts, not in the database$/],
      [
        'alter table users add column email_lower text generated always as (lower(email)) stored',
        /users\.email_lower: a generated column/,
      ],
    ];
    for (const [change, expected] of changes) {
      const problems = await pg.admin
        .begin(async (tx) => {
          await tx.unsafe(`set local search_path = ${quote(direct.schema)}`);
          await tx.unsafe(change);
          throw Object.assign(new Rollback(), { problems: drift(await catalog(tx, direct.schema)) });
        })
        .catch((error: Rollback & { problems?: string[] }) => {
          if (!error.problems) throw error;
          return error.problems;
        });
      assert.ok(
        problems.some((p) => expected.test(p)),
        `${change}: expected ${expected} among ${JSON.stringify(problems)}`,
      );
    }
  });
});

describe('queries.ts through Kysely on the postgres.js session', () => {
  let sql: postgres.Sql;
  let db: Db;
  before(async () => {
    sql = await session(direct);
    clients.push(sql);
    db = await kyselyOver(sql);
  });

  it('tablesExist: by the session search_path', async () => {
    assert.equal(await tablesExist(db, ['users', 'setup_state']), true);
    assert.equal(await tablesExist(db, ['instance_settings', HISTORY_TABLE]), true);
    const empty = await createTenant(pg);
    const other = await session(empty);
    clients.push(other);
    assert.equal(await tablesExist(await kyselyOver(other), ['users', 'setup_state']), false);
    assert.equal(await tablesExist(await kyselyOver(other), [HISTORY_TABLE]), false);
  });

  it('the super admin: insert, find by email, promote, password hash', async () => {
    assert.equal(await findUserByEmail(db, 'admin@client.example'), undefined);
    await insertSuperAdmin(db, {
      email: 'admin@client.example',
      first_name: 'Alice',
      last_name: 'Martin',
      password_hash: '$argon2id$first',
    });
    const admin = await findUserByEmail(db, 'admin@client.example');
    assert.ok(admin);
    assert.match(admin.id, /^[0-9a-f]{8}-[0-9a-f]{4}-/);
    assert.deepEqual({ ...admin, id: '' }, { id: '', role: 'super_admin', password_hash: '$argon2id$first' });
    const [row] = await sql<{ phone: string | null; first_name: string; last_name: string }[]>`
      select phone, first_name, last_name from users where id = ${admin.id}`;
    assert.deepEqual({ ...row }, { phone: null, first_name: 'Alice', last_name: 'Martin' });

    // A duplicate is postgres.js' own error, SQLSTATE and all (the steps classify errors by code).
    await assert.rejects(
      insertSuperAdmin(db, { email: 'admin@client.example', first_name: 'A', last_name: 'B', password_hash: 'x' }),
      (error: Error & { code?: string }) => error instanceof postgres.PostgresError && error.code === '23505',
    );

    const [user] = await sql<{ id: string }[]>`
      insert into users (email, first_name, last_name, phone, password_hash, updated_at)
      values ('bob@client.example', 'Bob', 'B', '+33600000000', 'h0', now() - interval '1 day') returning id`;
    await promoteToSuperAdmin(db, user!.id);
    const promoted = await findUserByEmail(db, 'bob@client.example');
    assert.equal(promoted?.role, 'super_admin');
    await sql`update users set updated_at = now() - interval '1 day' where id = ${user!.id}`;
    await setPasswordHash(db, user!.id, '$argon2id$reset');
    const [updated] = await sql<{ password_hash: string; role: string; fresh: boolean }[]>`
      select password_hash, role, updated_at > now() - interval '1 minute' as fresh from users where id = ${user!.id}`;
    assert.deepEqual({ ...updated }, { password_hash: '$argon2id$reset', role: 'super_admin', fresh: true });
  });

  it('settings: recorded only when different (the changed flag), stored as jsonb objects', async () => {
    const storage = { provider: 's3', bucket: 'b', prefix: null, force_path_style: true, nested: { n: [1, 'two'] } };
    assert.equal(await recordSettingIfChanged(db, 'storage', storage), true, 'new key');
    assert.equal(await recordSettingIfChanged(db, 'storage', { ...storage }), false, 'same value');
    // jsonb equality: key order does not matter, as with the SQL it replaces.
    const reordered = Object.fromEntries(Object.entries(storage).reverse());
    assert.equal(await recordSettingIfChanged(db, 'storage', reordered), false, 'same value, other key order');
    await sql`update instance_settings set updated_at = now() - interval '1 day' where key = 'storage'`;
    assert.equal(await recordSettingIfChanged(db, 'storage', storage), false);
    const [untouched] = await sql<{ old: boolean }[]>`
      select updated_at < now() - interval '1 hour' as old from instance_settings where key = 'storage'`;
    assert.equal(untouched?.old, true, 'an unchanged setting keeps its updated_at');

    assert.equal(await recordSettingIfChanged(db, 'storage', { ...storage, bucket: 'c' }), true, 'changed value');
    const [stored] = await sql<{ type: string; value: unknown; fresh: boolean; is_object_text: boolean }[]>`
      select jsonb_typeof(value) as type, value, updated_at > now() - interval '1 minute' as fresh,
             value = ${sql.json({ ...storage, bucket: 'c' })}::jsonb as is_object_text
      from instance_settings where key = 'storage'`;
    assert.deepEqual(
      { ...stored },
      { type: 'object', value: { ...storage, bucket: 'c' }, fresh: true, is_object_text: true },
    );

    // What postgres.js' sql.json wrote (the steps' way until now) is the same value for Kysely.
    const apis = { all: false, modules: ['crm', 'billing'] };
    await sql`insert into instance_settings (key, value) values ('apis', ${sql.json(apis)})`;
    assert.equal(await recordSettingIfChanged(db, 'apis', apis), false);
    assert.equal(await recordSettingIfChanged(db, 'apis', { all: true, modules: null }), true);

    // Arrays too, whatever their first element (postgres.js types a bare array parameter by it).
    await putSetting(db, 'flags', [true, false, { on: null }]);
    const [flags] = await sql<{ type: string; value: unknown }[]>`
      select jsonb_typeof(value) as type, value from instance_settings where key = 'flags'`;
    assert.deepEqual({ ...flags }, { type: 'array', value: [true, false, { on: null }] });

    // Why jsonb() casts through text: JSON text sent straight to a jsonb place is JSON.stringified
    // again by postgres.js (it serializes by the type the server infers) and stored as a string.
    await db
      .insertInto('instance_settings')
      .values({ key: 'pitfall', value: JSON.stringify({ a: 1 }) as never })
      .execute();
    const [pitfall] = await sql<{ type: string }[]>`
      select jsonb_typeof(value) as type from instance_settings where key = 'pitfall'`;
    assert.equal(pitfall?.type, 'string');

    // The driver refuses a plain object as a parameter (in a text place it would be "[object Object]").
    await assert.rejects(
      db
        .insertInto('instance_settings')
        .values({ key: 'raw', value: { a: 1 } as never })
        .execute(),
      /parameter \$2 is a plain object/,
    );
  });

  it('the welcome email: pending, read, sent', async () => {
    assert.equal(WELCOME_KEY, 'welcome_email'); // what the steps have written so far
    assert.equal(await readWelcomeEmail(db), undefined);
    assert.equal(await markWelcomeSent(db, 'nobody@client.example'), false, 'nothing to mark without a pending one');
    await markWelcomePending(db, 'admin@client.example');
    assert.deepEqual(await readWelcomeEmail(db), { status: 'pending', to: 'admin@client.example' });
    await markWelcomePending(db, 'admin@client.example'); // an upsert: twice is fine
    const sentAt = new Date('2030-01-02T03:04:05.678Z');
    assert.equal(await markWelcomeSent(db, 'admin@client.example', sentAt), true);
    assert.deepEqual(await readWelcomeEmail(db), {
      status: 'sent',
      to: 'admin@client.example',
      sent_at: '2030-01-02T03:04:05.678Z',
    });
    const [row] = await sql<{ type: string }[]>`
      select jsonb_typeof(value) as type from instance_settings where key = ${WELCOME_KEY}`;
    assert.equal(row?.type, 'object');
    await putSetting(db, WELCOME_KEY, ['not', 'an', 'object']);
    assert.deepEqual(await readWelcomeEmail(db), {}, 'a value of another shape has no status');
  });

  it('the setup marker: read, marked once (where not completed returning 1)', async () => {
    assert.deepEqual({ ...(await readSetupState(db)) }, { completed: false, completed_by: null, completed_at: null });
    assert.equal(await markSetupCompleted(db, '9.9.9'), true);
    assert.equal(await markSetupCompleted(db, '9.9.10'), false, 'already completed');
    const state = await readSetupState(db);
    assert.equal(state?.completed, true);
    assert.equal(state?.completed_by, 'bootstrap');
    assert.ok(state?.completed_at instanceof Date && Date.now() - state.completed_at.getTime() < 60_000);
    const [version] = await sql<{ bootstrap_version: string }[]>`select bootstrap_version from setup_state`;
    assert.equal(version?.bootstrap_version, '9.9.9');
  });

  it('the migration history: inserted with applied_at, read by name', async () => {
    assert.deepEqual(await readHistory(db), []);
    await insertHistory(db, { name: '0002_b', checksum: 'c2', bootstrap_version: '1.0.0' });
    await insertHistory(db, { name: '0001_a', checksum: 'c1', bootstrap_version: '1.0.0' });
    assert.deepEqual(
      (await readHistory(db)).map((r) => ({ ...r })),
      [
        { name: '0001_a', checksum: 'c1', bootstrap_version: '1.0.0' },
        { name: '0002_b', checksum: 'c2', bootstrap_version: '1.0.0' },
      ],
    );
    const [applied] = await sql<{ fresh: boolean }[]>`
      select bool_and(applied_at > now() - interval '1 minute') as fresh from ${sql(HISTORY_TABLE)}`;
    assert.equal(applied?.fresh, true);

    // And the bootstrap's own history reads the same through Kysely.
    const other = await session(built);
    clients.push(other);
    const rows = await readHistory(await kyselyOver(other));
    assert.deepEqual(
      rows.map((r) => [r.name, r.checksum]),
      (await history(pg, built.schema)).map((r) => [r.name, r.checksum]),
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      MIGRATIONS.map((m) => m.name),
    );
  });

  it("destroy() leaves the caller's connection open; Kysely's own transactions are refused", async () => {
    const scratch = await kyselyOver(sql);
    await scratch.destroy();
    const [one] = await sql<{ one: number }[]>`select 1 as one`;
    assert.equal(one?.one, 1);
    assert.equal((await findUserByEmail(db, 'admin@client.example'))?.role, 'super_admin');
    await assert.rejects(
      db.transaction().execute(async () => {}),
      /no Kysely transaction; run the queries in sql\.begin/,
    );
  });
});

describe('queries.ts inside a postgres.js transaction', () => {
  it('runs in the transaction: invisible outside before commit, nothing left after a rollback', async () => {
    const tenant = await createTenant(pg);
    // Migrated as `direct` was; two connections, so that a query outside the transaction could run
    // (and commit) beside it if Kysely were not bound to the transaction.
    await pg.admin.begin(async (tx) => {
      await tx.unsafe(`set local role ${quote(tenant.role)}; set local search_path = ${quote(tenant.schema)}`).simple();
      for (const migration of MIGRATIONS) await tx.unsafe(migration.sql).simple();
    });
    await pg.admin.unsafe(
      `create table ${quote(tenant.schema)}.${quote(HISTORY_TABLE)} (like ` +
        `${quote(built.schema)}.${quote(HISTORY_TABLE)} including all); ` +
        `alter table ${quote(tenant.schema)}.${quote(HISTORY_TABLE)} owner to ${quote(tenant.role)}`,
    );
    const sql = await session(tenant, 2);
    clients.push(sql);
    const outside = await kyselyOver(sql);
    const mod = await loadKysely();

    await assert.rejects(
      sql.begin(async (tx) => {
        const db = kyselyOverLoaded(mod, tx);
        await insertSuperAdmin(db, { email: 'tx@client.example', first_name: 'T', last_name: 'X', password_hash: 'h' });
        assert.equal(await recordSettingIfChanged(db, 'email', { provider: null }), true);
        await markWelcomePending(db, 'tx@client.example');
        assert.equal(await markSetupCompleted(db, '1.0.0'), true);
        await insertHistory(db, { name: '0001_initial', checksum: 'c', bootstrap_version: '1.0.0' });
        const [txid] = await tx<{ id: string }[]>`select txid_current_if_assigned()::text as id`;
        assert.ok(txid?.id, 'the writes are in this transaction');

        // Inside: visible. Outside (the other connection): not yet.
        assert.equal((await findUserByEmail(db, 'tx@client.example'))?.role, 'super_admin');
        assert.equal((await readSetupState(db))?.completed, true);
        assert.equal(await findUserByEmail(outside, 'tx@client.example'), undefined);
        assert.equal((await readSetupState(outside))?.completed, false);
        throw new Rollback();
      }),
      Rollback,
    );

    assert.equal(await findUserByEmail(outside, 'tx@client.example'), undefined);
    assert.equal(await readWelcomeEmail(outside), undefined);
    assert.equal((await readSetupState(outside))?.completed, false);
    assert.deepEqual(await readHistory(outside), []);
    const [count] = await sql<{ n: number }[]>`select count(*)::int as n from instance_settings`;
    assert.equal(count?.n, 0);
  });
});

describe('kysely is loaded lazily', () => {
  it(
    'bundled as build.mjs does, ' + 'database.ts, kysely.ts and queries.ts load no kysely code until loadKysely()',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sf-kysely-lazy-'));
      try {
        const src = (file: string) => fileURLToPath(new URL(`../src/db/${file}`, import.meta.url));
        const entry = join(dir, 'entry.ts');
        writeFileSync(
          entry,
          [
            `export * from ${JSON.stringify(src('database.ts'))};`,
            `export * from ${JSON.stringify(src('kysely.ts'))};`,
            `export * from ${JSON.stringify(src('queries.ts'))};`,
          ].join('\n'),
        );
        const result = await esbuild.build({
          entryPoints: { entry },
          outdir: join(dir, 'out'),
          bundle: true,
          splitting: true,
          format: 'esm',
          platform: 'node',
          target: 'node20',
          minify: true,
          write: false,
          metafile: true,
          logLevel: 'silent',
        });
        const outputs = result.metafile.outputs;
        const [entryOut] = Object.entries(outputs).find(([, o]) => o.entryPoint?.endsWith('entry.ts')) ?? [];
        assert.ok(entryOut);
        // Everything the entry loads before any dynamic import.
        const eager = new Set<string>();
        const visit = (file: string) => {
          if (eager.has(file)) return;
          eager.add(file);
          for (const imported of outputs[file]?.imports ?? [])
            if (imported.kind === 'import-statement') visit(imported.path);
        };
        visit(entryOut);
        const kyselyIn = (file: string) =>
          Object.keys(outputs[file]?.inputs ?? {}).filter((input) => input.includes('node_modules/kysely/'));
        for (const file of eager) assert.deepEqual(kyselyIn(file), [], `${file} is loaded eagerly and holds kysely`);
        const lazy = Object.keys(outputs).filter((file) => !eager.has(file) && kyselyIn(file).length > 0);
        assert.ok(lazy.length > 0, 'kysely is in a chunk of its own');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

// Compile-time checks (tsc --noEmit reads the tests): never called.
export function typeChecks(db: Db): unknown[] {
  return [
    // @ts-expect-error a plain object is no jsonb value: only jsonb() writes one
    db.insertInto('instance_settings').values({ key: 'k', value: { a: 1 } }),
    // @ts-expect-error no such column
    db.selectFrom('users').select('nickname'),
    // @ts-expect-error email, names and password_hash have no default
    db.insertInto('users').values({ role: 'user' }),
    // nullable or with a default: optional in an insert
    db.insertInto('setup_state').values({}),
    db.insertInto(HISTORY_TABLE).values({ name: 'n', checksum: 'c', bootstrap_version: 'v' }),
  ];
}
