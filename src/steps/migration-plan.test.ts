// The migration history against the bundled migrations, and the tables a migration creates, as pure
// functions (test/bootstrap.test.ts applies them to a real server).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MigrationError } from '../errors.js';
import { createdTables, type Migration, pendingMigrations } from './migration-plan.js';

const checksum = (sql: string) => createHash('sha256').update(sql).digest('hex');
const migration = (name: string, sql = `create table t_${name} (id int);`): Migration => ({
  name,
  sql,
  checksum: checksum(sql),
});
const applied = (m: Migration, version = '0.1.0') => ({
  name: m.name,
  checksum: m.checksum,
  bootstrap_version: version,
});

const [m1, m2, m3] = [migration('0001_initial'), migration('0002_settings'), migration('0003_audit')] as [
  Migration,
  Migration,
  Migration,
];

function refusal(fn: () => unknown): MigrationError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MigrationError, `not a MigrationError: ${error}`);
    assert.equal(error.exitCode, 5);
    return error;
  }
  assert.fail('not refused');
}

describe('pendingMigrations', () => {
  it('a fresh schema has every migration pending, in order', () => {
    assert.deepEqual(pendingMigrations([m1, m2, m3], []), [m1, m2, m3]);
  });

  it('the ones after the last applied are pending; none when all are applied', () => {
    assert.deepEqual(pendingMigrations([m1, m2, m3], [applied(m1)]), [m2, m3]);
    assert.deepEqual(pendingMigrations([m1, m2, m3], [applied(m1), applied(m2)]), [m3]);
    assert.deepEqual(pendingMigrations([m1, m2, m3], [applied(m1), applied(m2), applied(m3)]), []);
  });

  it('a migration unknown to this version means a newer bootstrapper migrated the schema: refused, naming it', () => {
    const newer = migration('0004_future');
    const error = refusal(() => pendingMigrations([m1, m2, m3], [applied(m1), applied(newer, '0.2.0')]));
    assert.match(error.message, /migrated by a newer superfasttt-bootstrap \(0\.2\.0\)/);
    assert.match(error.message, /migration 0004_future is unknown to this version/);
    assert.match(error.fix ?? '', /run superfasttt-bootstrap 0\.2\.0 or newer/);
    assert.match(error.fix ?? '', /never migrated down/);
  });

  it('a migration changed after it was applied is refused, with both checksums', () => {
    const edited = migration('0002_settings', 'create table t_0002_settings (id bigint);');
    const error = refusal(() => pendingMigrations([m1, edited, m3], [applied(m1), applied(m2)]));
    assert.match(error.message, /^migration 0002_settings was changed after it was applied/);
    assert.ok(error.message.includes(`checksum ${m2.checksum.slice(0, 12)} in the history`), error.message);
    assert.ok(error.message.includes(`${edited.checksum.slice(0, 12)} in this version`), error.message);
    assert.match(error.fix ?? '', /never edit an applied migration/);
  });

  it('a new migration that sorts before the last applied one is refused (it would run out of order)', () => {
    const inserted = migration('0002a_inserted');
    const error = refusal(() => pendingMigrations([m1, m2, inserted, m3], [applied(m1), applied(m3)]));
    assert.match(error.message, /^migration 0002_settings sorts before 0003_audit, which is already applied/);
    // Added at the end instead: accepted.
    const last = migration('0004_added');
    assert.deepEqual(pendingMigrations([m1, m2, m3, last], [applied(m1), applied(m2), applied(m3)]), [last]);
  });

  it('property: with a prefix applied, the rest is pending; with a gap before the last applied, refused', () => {
    const names = fc.uniqueArray(fc.stringMatching(/^[0-9]{4}_[a-z]{1,8}$/), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(names, fc.nat(), fc.array(fc.boolean(), { maxLength: 8 }), (raw, cut, picks) => {
        const all = [...raw].sort().map((name) => migration(name));
        const k = cut % (all.length + 1);
        assert.deepEqual(
          pendingMigrations(
            all,
            all.slice(0, k).map((m) => applied(m)),
          ),
          all.slice(k),
        );
        // Any subset applied (the history is read in name order): a hole before its last is refused.
        const subset = all.filter((_, i) => picks[i]);
        const last = subset.at(-1)?.name;
        const hole = last !== undefined && all.some((m) => m.name < last && !subset.includes(m));
        const history = subset.map((m) => applied(m));
        if (hole) assert.throws(() => pendingMigrations(all, history), /sorts before/);
        else assert.deepEqual(pendingMigrations(all, history), all.slice(subset.length));
      }),
      { numRuns: 300 },
    );
  });
});

describe('createdTables', () => {
  it('names the tables created without IF NOT EXISTS, in order', () => {
    assert.deepEqual(
      createdTables(`
        CREATE TABLE users (id uuid primary key);
        create table if not exists settings (key text);
        Create Table Audit_Log (at timestamptz);
        CREATE TABLE IF NOT EXISTS other (id int);`),
      ['users', 'audit_log'],
    );
  });

  it('takes the last part of schema-qualified names, and quoted names as written', () => {
    assert.deepEqual(
      createdTables(`
        create table app.accounts (id int);
        create table "My Table" (id int);
        create table "Sales"."Q1 ""2024""" (id int);
        create table db.app."Orders" (id int);`),
      ['accounts', 'My Table', 'Q1 "2024"', 'Orders'],
    );
  });

  it('counts unlogged (and the obsolete global/local) tables, not temporary ones', () => {
    assert.deepEqual(
      createdTables(`
        create unlogged table cache (k text);
        create global unlogged table g (k text);
        create temp table scratch (k text);
        create temporary table scratch2 (k text);
        create local temporary table scratch3 (k text);
        create unlogged table if not exists cache2 (k text);`),
      ['cache', 'g'],
    );
  });

  it('ignores "create table" in comments, strings, dollar-quoted bodies and other statements', () => {
    assert.deepEqual(
      createdTables(`
        -- create table in_line_comment (id int);
        /* create table in_block /* nested create table deeper */ still_comment (id int); */
        insert into notes (body) values ('create table in_string (id int); create table x');
        insert into notes (body) values (E'it\\'s; create table in_escape_string (id int)');
        create function f() returns void language plpgsql as $body$
        begin
          create table in_function (id int);
        end
        $body$;
        create index users_email on users (email);
        create view v as select 1;
        create table real_one (note text default 'create table fake (id int);');`),
      ['real_one'],
    );
  });

  it('CREATE TABLE ... AS and PARTITION OF create tables too', () => {
    assert.deepEqual(
      createdTables('create table copy as select * from users; create table p1 partition of parent for values in (1);'),
      ['copy', 'p1'],
    );
  });

  it('nothing for a script without tables', () => {
    assert.deepEqual(createdTables(''), []);
    assert.deepEqual(createdTables('-- only a comment'), []);
    assert.deepEqual(createdTables('alter table users add column x int; drop table old;'), []);
  });

  it('the shipped migration creates the tables of the contract', () => {
    const sql = readFileSync(new URL('../../migrations/0001_initial.sql', import.meta.url), 'utf8');
    assert.deepEqual(createdTables(sql), ['users', 'setup_state', 'instance_settings']);
  });

  it('a new migration sorting before the highest applied one is refused, whatever order the history came in', () => {
    // A collation such as en_US sorts 0002_addition before 0002_add_users; the code-point order does not.
    const early = migration('0002_add_users');
    const later = migration('0002_addition');
    const inCollationOrder = [applied(m1), applied(later)].reverse();
    assert.throws(
      () => pendingMigrations([m1, early, later], inCollationOrder),
      (error: unknown) => error instanceof MigrationError && /sorts before 0002_addition/.test(error.message),
    );
  });
});
