// "Empty or ours": a role that can create objects in the tenant schema (a wrong GRANT CREATE), or
// one that owns objects there, must not get the bootstrap to run its code or hand it the super
// admin's credentials; nor may a trigger, rule or policy added to the instance's own tables.
// Real PostgreSQL (TLS), the built executable for bootstrap and check.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { foreignObjects, ourObjects } from '../src/steps/schema-owner.js';
import { statements } from '../src/steps/sql-tokens.js';
import { assertExit, assertNoSecrets, runCli, type RunResult } from './harness/cli.js';
import { ADMIN, fingerprint, history, instanceEnv, relations, setupState, users } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';

let pg: PgServer;
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];

/** migrations/*.sql as the build embeds them: LF line endings, sha256 of the text. */
const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);
const MIGRATIONS = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((file) => {
    const sql = readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8').replace(/\r\n/g, '\n');
    return { name: file.slice(0, -4), sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

async function run(tenant: Tenant, ...args: string[]): Promise<RunResult> {
  secrets.push(tenant.password);
  const result = await runCli(instanceEnv(tenant), { args });
  outputs.push(result);
  return result;
}

/** Runs a script as `role` (through the superuser's SET ROLE) with the tenant schema as search_path. */
async function asRole(role: string, schema: string, script: string): Promise<void> {
  await pg.admin.begin(async (tx) => {
    await tx.unsafe(`set local role ${quote(role)}; set local search_path = ${quote(schema)}`).simple();
    await tx.unsafe(script).simple();
  });
}

/** A role that was wrongly given CREATE (and USAGE) on the tenant's schema. */
async function intruderOn(tenant: Tenant): Promise<string> {
  const role = `intruder_${randomBytes(3).toString('hex')}`;
  await pg.admin.unsafe(`create role ${quote(role)} nologin`);
  await pg.admin.unsafe(`grant usage, create on schema ${quote(tenant.schema)} to ${quote(role)}`);
  return role;
}

/** check --json: the schema check's entry. */
async function schemaEntry(
  tenant: Tenant,
): Promise<{ status: string; message: string; fix: string | null; exit_code: number | null }> {
  const r = await run(tenant, 'check', '--json');
  const report = JSON.parse(r.stdout) as {
    checks: Array<{ name: string; status: string; message: string; fix: string | null; exit_code: number | null }>;
  };
  return report.checks.find((c) => c.name === 'schema')!;
}

async function schemaCheck(tenant: Tenant): Promise<string> {
  return (await schemaEntry(tenant)).status;
}

/** The fix of a failed check, from --json. */
async function schemaFailure(tenant: Tenant): Promise<{ message: string; fix: string; exit: number | null }> {
  const schema = await schemaEntry(tenant);
  assert.equal(schema.status, 'fail', `schema check did not fail: ${schema.message}`);
  return { message: schema.message, fix: schema.fix ?? '', exit: schema.exit_code };
}

/** The inspect queries of a fix (up to "Then"), each run as the superuser: they must be valid SQL. */
async function runInspectQueries(fix: string): Promise<number> {
  const part = /^inspect: (.*?) Then, as the schema owner/s.exec(fix)?.[1];
  assert.ok(part, `no inspect part in: ${fix}`);
  const queries = part
    .replace(/ To list everything.*$/s, '')
    .split(/;\s*/)
    .filter((q) => q.trim() !== '');
  for (const query of queries) await pg.admin.unsafe(query);
  const listAll = /To list everything in the schema with its owner: (SELECT .*?;)/s.exec(fix)?.[1];
  if (listAll) await pg.admin.unsafe(listAll);
  return queries.length;
}

before(async () => {
  pg = await startPostgres({ tls: true });
});
after(async () => {
  await pg?.stop();
});

describe('what the migrations create (parsed from their SQL)', () => {
  it('the tables, and the two guard triggers of setup_state with their function', () => {
    const ours = ourObjects(MIGRATIONS);
    assert.deepEqual(ours.tables, [
      'instance_settings',
      'setup_state',
      'superfasttt_lock',
      'superfasttt_migrations',
      'users',
    ]);
    assert.deepEqual(
      ours.triggers.map((t) => [t.table, t.name, t.function]),
      [
        ['setup_state', 'setup_state_guard', 'setup_state_guard'],
        ['setup_state', 'setup_state_no_truncate', 'setup_state_guard'],
      ],
    );
    assert.match(ours.triggers[0]!.body ?? '', /^\nBEGIN\n {2}IF TG_OP = 'DELETE'/);
    assert.deepEqual([ours.rules, ours.policies, ours.rls], [[], [], []]);
  });

  it('follows comments, strings, quoted names, drops, renames, rules, policies and RLS, in order', () => {
    const ours = ourObjects(
      [
        {
          sql:
            `-- CREATE TRIGGER in_a_comment BEFORE INSERT ON users EXECUTE FUNCTION f();
          /* nested /* CREATE TABLE hidden (x int); */ still a comment */
          CREATE TABLE "Mixed" (note text DEFAULT 'CREATE TRIGGER not_one ON x EXECUTE FUNCTION y(); ');
          create unlogged table if not exists t2 (id int);
          CREATE TEMP TABLE scratch (x int);
          CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN NEW.x = 'it''s'; ` +
            `RETURN NEW; END $body$;
          CREATE TRIGGER touch BEFORE UPDATE OF note ON "Mixed" FOR EACH ROW WHEN (OLD.note IS DISTINCT FROM ` +
            `NEW.note) EXECUTE PROCEDURE touch();
          CREATE TRIGGER builtin BEFORE UPDATE ON t2 FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
          CREATE TRIGGER gone AFTER INSERT ON t2 EXECUTE FUNCTION touch();
          DROP TRIGGER IF EXISTS gone ON t2;
          ALTER TRIGGER builtin ON t2 RENAME TO same_rows;
          CREATE RULE no_delete AS ON DELETE TO t2 DO INSTEAD NOTHING;
          CREATE POLICY own_rows ON "Mixed" USING (true);
          ALTER TABLE "Mixed" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
          ALTER TABLE t2 RENAME TO t3;
          CREATE TABLE dropped (x int); CREATE TRIGGER on_dropped BEFORE ` +
            `INSERT ON dropped EXECUTE FUNCTION touch(); DROP TABLE dropped, other;`,
        },
        { sql: `ALTER TABLE ONLY "Mixed" NO FORCE ROW LEVEL SECURITY;` },
      ],
      ['superfasttt_migrations'],
    );
    assert.deepEqual(ours.tables, ['Mixed', 'superfasttt_migrations', 't3']);
    assert.deepEqual(ours.triggers.map((t) => [t.table, t.name, t.function, t.body]).sort(), [
      ['Mixed', 'touch', 'touch', " BEGIN NEW.x = 'it''s'; RETURN NEW; END "],
      ['t3', 'same_rows', 'suppress_redundant_updates_trigger', null],
    ]);
    assert.deepEqual(ours.rules, [{ table: 't3', name: 'no_delete' }]);
    assert.deepEqual(ours.policies, [{ table: 'Mixed', name: 'own_rows' }]);
    assert.deepEqual(ours.rls, [{ table: 'Mixed', enabled: true, forced: false }]);
  });

  it('splits statements on semicolons outside strings, quoted names and dollar quotes', () => {
    assert.equal(statements(`select ';'; select ";"; select $$;$$; select $a$ $$; $a$; -- ;\nselect 1`).length, 5);
  });
});

describe('the attack: a role with CREATE on the schema prepares it', () => {
  let tenant: Tenant;
  let intruder: string;
  let snapshot: string;

  it('bootstrap exits 4 naming the intruder-owned objects and their owner, and writes nothing', async () => {
    tenant = await createTenant(pg);
    intruder = await intruderOn(tenant);
    const [migration] = MIGRATIONS;
    await asRole(
      intruder,
      tenant.schema,
      `${migration!.sql}
      CREATE TABLE superfasttt_migrations (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT ` +
        `NULL DEFAULT now(), bootstrap_version text NOT NULL);
      INSERT INTO superfasttt_migrations (name, checksum, bootstrap_version) VALUES ('${migration!.name}', ` +
        `'${migration!.checksum}', '${VERSION}');
      CREATE TABLE loot (email text, password_hash text);
      CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN INSERT INTO loot VALUES (NEW.email, NEW.password_hash); RETURN NEW; END $$;
      CREATE TRIGGER audit AFTER INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION steal();
      GRANT SELECT, INSERT, UPDATE, DELETE ON users, setup_state, ` +
        `instance_settings, superfasttt_migrations TO ${quote(tenant.role)};`,
    );
    snapshot = await fingerprint(pg, tenant.schema);
    const result = await run(tenant);
    const s = tenant.schema;
    assertExit(
      result,
      4,
      new RegExp(`trigger audit on ${s}\\.users \\(executes ${s}\\.steal\\(\\), owner ${intruder}\\)`),
      new RegExp(`function ${s}\\.steal\\(\\) \\(owner ${intruder}\\)`),
      new RegExp(`function ${s}\\.setup_state_guard\\(\\) \\(owner ${intruder}\\)`),
      new RegExp(`table ${s}\\.users \\(owner ${intruder}\\)`),
      new RegExp(`table ${s}\\.loot \\(owner ${intruder}\\)`),
      /holds 15 object\(s\)/,
      /, and 5 more\./,
      /REVOKE CREATE ON SCHEMA/,
    );
    assert.doesNotMatch(result.output, /\[migrations\]|setup marked as completed|super admin .* created/);
    assert.equal((await users(pg, tenant.schema)).length, 0);
    assert.equal((await pg.admin`select count(*)::int as n from ${pg.admin(tenant.schema)}.loot`)[0]!.n, 0);
    assert.equal((await setupState(pg, tenant.schema))?.completed, false);
    assert.deepEqual(
      (await history(pg, tenant.schema)).map((h) => h.name),
      ['0001_initial'],
    );
    assert.equal(await fingerprint(pg, tenant.schema), snapshot);
  });

  it('check exits 4 as well, and its inspect queries and listing query run as printed', async () => {
    const r = await run(tenant, 'check');
    assertExit(
      r,
      4,
      /^FAIL\s+schema\s/m,
      /^skip\s+migrations\s+skipped: schema did not pass/m,
      /Result: \d+ check\(s\) failed \(exit 4\)/,
    );
    const { fix, exit } = await schemaFailure(tenant);
    assert.equal(exit, 4);
    assert.match(fix, /To list everything in the schema with its owner: SELECT/);
    assert.equal(await runInspectQueries(fix), 10);
    assert.equal(await fingerprint(pg, tenant.schema), snapshot);
  });
});

describe("the tenant's own tables with something the migrations did not create", () => {
  let tenant: Tenant;
  before(async () => {
    tenant = await createTenant(pg);
    assertExit(await run(tenant), 0, /setup marked as completed/);
  });

  /** Adds `change` as the tenant role, expects exit 4 with `pattern` from bootstrap and check, then `undo`. */
  async function refused(change: string, undo: string, pattern: RegExp): Promise<void> {
    await asRole(tenant.role, tenant.schema, change);
    try {
      const snapshot = await fingerprint(pg, tenant.schema);
      const r = await run(tenant);
      assertExit(r, 4, pattern);
      assert.doesNotMatch(r.output, /\[migrations\]/);
      assert.equal(await fingerprint(pg, tenant.schema), snapshot);
      const { message, fix } = await schemaFailure(tenant);
      assert.match(message, pattern);
      await runInspectQueries(fix);
    } finally {
      await asRole(tenant.role, tenant.schema, undo);
    }
  }

  it('a trigger on users (the tenant role owns its function): exit 4 naming the trigger', async () => {
    await refused(
      `CREATE TABLE app_log (email text, hash text);
       CREATE FUNCTION log_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO app_log VALUES ` +
        `(NEW.email, NEW.password_hash); RETURN NEW; END $$;
       CREATE TRIGGER log_users AFTER INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION log_users();`,
      `DROP TRIGGER log_users ON users; DROP FUNCTION log_users(); DROP TABLE app_log;`,
      new RegExp(
        `trigger log_users on ${tenant.schema}\\.users \\(executes ` +
          `${tenant.schema}\\.log_users\\(\\), owner ${tenant.role}\\)`,
      ),
    );
  });

  it('a rule on users: exit 4', async () => {
    await refused(
      `CREATE TABLE app_log (email text, hash text);
       CREATE RULE copy_users AS ON INSERT TO users DO ALSO INSERT INTO app_log VALUES (NEW.email, NEW.password_hash);`,
      `DROP RULE copy_users ON users; DROP TABLE app_log;`,
      new RegExp(`rule copy_users on ${tenant.schema}\\.users \\(owner ${tenant.role}\\)`),
    );
  });

  it('a row-security policy, and RLS enabled or forced, on a table of ours: exit 4', async () => {
    await refused(
      `CREATE POLICY everyone ON users USING (true);`,
      `DROP POLICY everyone ON users;`,
      new RegExp(`policy everyone on ${tenant.schema}\\.users \\(owner ${tenant.role}\\)`),
    );
    await refused(
      `ALTER TABLE instance_settings ENABLE ROW LEVEL SECURITY;`,
      `ALTER TABLE instance_settings DISABLE ROW LEVEL SECURITY;`,
      new RegExp(`row level security enabled on ${tenant.schema}\\.instance_settings \\(owner ${tenant.role}\\)`),
    );
    await refused(
      `ALTER TABLE superfasttt_migrations FORCE ROW LEVEL SECURITY;`,
      `ALTER TABLE superfasttt_migrations NO FORCE ROW LEVEL SECURITY;`,
      new RegExp(`row level security forced on ${tenant.schema}\\.superfasttt_migrations \\(owner ${tenant.role}\\)`),
    );
  });

  it('the guard function rewritten, or its trigger pointed at another function: exit 4', async () => {
    const original = MIGRATIONS[0]!.sql.match(/CREATE FUNCTION setup_state_guard\(\)[\s\S]*?\$\$;/)![0];
    await refused(
      `CREATE OR REPLACE FUNCTION setup_state_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;`,
      original.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION'),
      new RegExp(
        `trigger setup_state_guard on ${tenant.schema}\\.setup_state \\(executes ` +
          `${tenant.schema}\\.setup_state_guard\\(\\), owner ${tenant.role}\\)`,
      ),
    );
    await refused(
      `CREATE FUNCTION let_through() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
       DROP TRIGGER setup_state_guard ON setup_state;
       CREATE TRIGGER setup_state_guard BEFORE UPDATE OR DELETE ` +
        `ON setup_state FOR EACH ROW EXECUTE FUNCTION let_through();`,
      `DROP TRIGGER setup_state_guard ON setup_state; DROP FUNCTION let_through();
       CREATE TRIGGER setup_state_guard BEFORE UPDATE OR DELETE ` +
        `ON setup_state FOR EACH ROW EXECUTE FUNCTION setup_state_guard();`,
      new RegExp(
        `trigger setup_state_guard on ${tenant.schema}\\.setup_state \\(executes ` +
          `${tenant.schema}\\.let_through\\(\\), owner ${tenant.role}\\)`,
      ),
    );
  });

  it('after every undo, the schema is ours again: exit 0', async () => {
    assertExit(await run(tenant), 0, /already bootstrapped, nothing changed/);
  });
});

describe('objects of another role in the schema', () => {
  it('a function owned by another role, before the first bootstrap: exit 4, nothing created', async () => {
    const tenant = await createTenant(pg);
    const other = await intruderOn(tenant);
    await asRole(other, tenant.schema, `CREATE FUNCTION lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1';`);
    const r = await run(tenant);
    assertExit(r, 4, new RegExp(`function ${tenant.schema}\\.lower\\(pg_catalog\\.text\\) \\(owner ${other}\\)`));
    assert.doesNotMatch(r.output, /and \d+ more|To list everything/);
    assert.deepEqual(await relations(pg, tenant.schema), []);
  });

  it('a type added by another role to a bootstrapped schema: exit 4 from bootstrap and check', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant), 0);
    const other = await intruderOn(tenant);
    await asRole(other, tenant.schema, `CREATE TYPE mood AS ENUM ('ok', 'not ok');`);
    assertExit(await run(tenant), 4, new RegExp(`enum type ${tenant.schema}\\.mood \\(owner ${other}\\)`));
    assertExit(await run(tenant, 'check'), 4, new RegExp(`^FAIL\\s+schema\\s.*enum type ${tenant.schema}\\.mood`, 'm'));
  });

  it('every kind of schema object is named with its kind and owner; the list is capped', async () => {
    const tenant = await createTenant(pg);
    const other = await intruderOn(tenant);
    await asRole(
      other,
      tenant.schema,
      `CREATE TABLE t (a int, b int);
       CREATE SEQUENCE s;
       CREATE VIEW v AS SELECT 1 AS one;
       CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one;
       CREATE TYPE comp AS (x int);
       CREATE TYPE mood AS ENUM ('ok');
       CREATE DOMAIN posint AS int CHECK (VALUE > 0);
       CREATE TYPE span AS RANGE (subtype = int);
       CREATE FUNCTION plus(int, int) RETURNS int LANGUAGE sql AS 'SELECT $1 + $2';
       CREATE PROCEDURE noop() LANGUAGE sql AS 'SELECT 1';
       CREATE AGGREGATE total(int) (sfunc = plus, stype = int);
       CREATE OPERATOR <<>> (leftarg = int, rightarg = int, function = plus);
       CREATE COLLATION c2 FROM "C";
       CREATE CONVERSION conv FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
       CREATE TEXT SEARCH CONFIGURATION cfg (COPY = simple);
       CREATE TEXT SEARCH DICTIONARY dict (TEMPLATE = simple);
       CREATE STATISTICS st ON a, b FROM t;`,
    );
    const all = await foreignObjects(pg.admin, tenant.schema, ourObjects(MIGRATIONS), 100);
    // As the superuser, who owns nothing here: every object counts, each once, with the other role as owner.
    assert.ok(all.objects.every((o) => o.owner === other));
    const s = tenant.schema;
    assert.deepEqual(all.objects.map((o) => `${o.kind} ${o.name}`).sort(), [
      `aggregate ${s}.total(integer)`,
      `collation ${s}.c2`,
      `composite type ${s}.comp`,
      `conversion ${s}.conv`,
      `domain ${s}.posint`,
      `enum type ${s}.mood`,
      `function ${s}.plus(integer,integer)`,
      `materialized view ${s}.mv`,
      `multirange type ${s}.span_multirange`,
      `operator ${s}.<<>>(integer,integer)`,
      `procedure ${s}.noop()`,
      `range type ${s}.span`,
      `sequence ${s}.s`,
      `statistics object ${s}.st`,
      `table ${s}.t`,
      `text search configuration ${s}.cfg`,
      `text search dictionary ${s}.dict`,
      `view ${s}.v`,
    ]);
    assert.equal(all.total, 18);

    const r = await run(tenant);
    assertExit(
      r,
      4,
      /holds 18 object\(s\) that are not the instance's own/,
      /, and 8 more\./,
      new RegExp(`\\(owner ${other}\\)`),
    );
    const { fix } = await schemaFailure(tenant);
    assert.equal(await runInspectQueries(fix), 10);
  });
});

describe("the app's own objects", () => {
  it(
    'a table of the app (owned by the tenant role) with its index, sequence, view, type and trigger: ' + 'exit 0',
    async () => {
      const tenant = await createTenant(pg);
      assertExit(await run(tenant), 0);
      await asRole(
        tenant.role,
        tenant.schema,
        `CREATE TYPE note_kind AS ENUM ('memo', 'task');
       CREATE TABLE notes (id serial PRIMARY KEY, kind note_kind NOT NULL, body text, author uuid REFERENCES users ` +
          `(id), updated_at timestamptz);
       CREATE INDEX notes_kind ON notes (kind);
       CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN ` +
          `NEW; END $$;
       CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION notes_touch();
       CREATE VIEW recent_notes AS SELECT * FROM notes;`,
      );
      assertExit(await run(tenant), 0, /already bootstrapped, nothing changed/);
      assert.equal(await schemaCheck(tenant), 'pass');
    },
  );
});

describe('a normal instance', () => {
  it(
    'a fresh bootstrap and its re-run exit 0; ' +
      "other tenants' objects in the database are never counted as this schema's",
    async () => {
      const tenant = await createTenant(pg);
      assertExit(await run(tenant), 0, /setup marked as completed/);
      assertExit(await run(tenant), 0, /\[schema\] schema \S+ is usable/, /already bootstrapped, nothing changed/);
      assert.equal(await schemaCheck(tenant), 'pass');
      // Other schemas holding the same tables, functions and types, owned by someone else.
      const script = Array.from(
        { length: 20 },
        (_, i) => `CREATE SCHEMA other_${i}; SET LOCAL search_path = other_${i};\n${MIGRATIONS[0]!.sql}`,
      );
      await pg.admin.begin((tx) => tx.unsafe(script.join('\n')).simple());
      const sql = postgres(tenant.url, { max: 1, onnotice: () => {}, ssl: { rejectUnauthorized: false } });
      try {
        assert.equal((await foreignObjects(sql, tenant.schema, ourObjects(MIGRATIONS))).total, 0);
      } finally {
        await sql.end();
      }
      assertExit(await run(tenant), 0, /already bootstrapped, nothing changed/);
    },
  );
});

describe('output', () => {
  it('no secret appears in any output', () => {
    assert.ok(outputs.length >= 15);
    for (const output of outputs) assertNoSecrets(output, secrets);
  });
});
