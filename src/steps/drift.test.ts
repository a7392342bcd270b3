import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Catalog, ColumnCatalog } from '../db/catalog.js';
import { CATALOG, compareCatalog, describeDrift, DRIFT_LIST_CAP, type DriftItem, driftSummary } from './drift.js';

const column = (name: string, over: Partial<ColumnCatalog> = {}): ColumnCatalog => ({
  name,
  type: 'text',
  not_null: false,
  default: null,
  identity: '',
  generated: '',
  collation: null,
  ...over,
});

const reference = (): Catalog => ({
  tables: [
    {
      name: 'users',
      columns: [column('id', { type: 'uuid', not_null: true }), column('phone')],
      constraints: [{ name: 'users_pkey', type: 'primary key', definition: 'PRIMARY KEY (id)' }],
      indexes: [{ name: 'users_phone_idx', definition: 'CREATE INDEX users_phone_idx ON users USING btree (phone)' }],
      triggers: [
        {
          name: 'guard',
          definition: 'CREATE TRIGGER guard BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION guard()',
          enabled: 'O',
          function: 'guard()',
          function_body: 'BEGIN RETURN NEW; END',
        },
      ],
    },
    { name: 'settings', columns: [column('key')], constraints: [], indexes: [], triggers: [] },
  ],
  functions: [
    {
      name: 'guard()',
      result: 'trigger',
      language: 'plpgsql',
      kind: 'f',
      volatility: 'v',
      security_definer: false,
      config: [],
      body: 'BEGIN RETURN NEW; END',
    },
  ],
});

const users = (c: Catalog) => c.tables[0]!;

describe('compareCatalog', () => {
  it('nothing when equal', () => {
    assert.deepEqual(compareCatalog(reference(), reference()), []);
  });

  it('a changed column names what differs, expected → actual', () => {
    const actual = reference();
    users(actual).columns[1] = column('phone', { type: 'character varying(20)', not_null: true, default: "''" });
    const items = compareCatalog(reference(), actual);
    assert.deepEqual(items, [
      {
        kind: 'changed',
        object: 'column',
        name: 'users.phone',
        differences: ['type text → character varying(20)', 'not null no → yes', "default none → ''"],
      },
    ]);
    assert.equal(
      describeDrift(items[0]!),
      "column users.phone: type text → character varying(20), not null no → yes, default none → ''",
    );
  });

  it('extra and missing columns, indexes and constraints; a missing table is one item', () => {
    const actual = reference();
    users(actual).columns.push(column('nickname'));
    users(actual).columns.splice(1, 1);
    users(actual).indexes = [{ name: 'x', definition: 'CREATE INDEX x ON users USING btree (id)' }];
    users(actual).constraints = [];
    actual.tables.pop();
    assert.deepEqual(compareCatalog(reference(), actual).map(describeDrift), [
      'missing column users.phone',
      'extra column users.nickname',
      'missing constraint users.users_pkey',
      'missing index users.users_phone_idx',
      'extra index users.x',
      'missing table settings',
    ]);
  });

  it("a trigger dropped, disabled, or its function's body replaced (the body is not printed)", () => {
    const dropped = reference();
    users(dropped).triggers = [];
    assert.deepEqual(compareCatalog(reference(), dropped).map(describeDrift), ['missing trigger users.guard']);

    const replaced = reference();
    users(replaced).triggers[0]!.function_body = 'BEGIN RETURN NULL; END';
    replaced.functions[0]!.body = 'BEGIN RETURN NULL; END';
    users(replaced).triggers[0]!.enabled = 'D';
    assert.deepEqual(compareCatalog(reference(), replaced).map(describeDrift), [
      'trigger users.guard: enabled O → D, function body differs',
      'function guard(): body differs',
    ]);
  });

  it('functions: missing, extra (another overload), changed', () => {
    const actual = reference();
    actual.functions = [{ ...reference().functions[0]!, name: 'guard(integer)', security_definer: true }];
    assert.deepEqual(compareCatalog(reference(), actual).map(describeDrift), [
      'missing function guard()',
      'extra function guard(integer)',
    ]);
    actual.functions[0]!.name = 'guard()';
    assert.deepEqual(compareCatalog(reference(), actual).map(describeDrift), [
      'function guard(): security definer no → yes',
    ]);
  });
});

describe('driftSummary', () => {
  it('matches, differs (cut, with the count of the rest), nothing applied, unknown migration', () => {
    const compared = { kind: 'compared', migration: '0002_b', first: '0001_a' } as const;
    assert.equal(driftSummary({ ...compared, items: [] }), 'schema matches migrations 0001_a to 0002_b');
    const items: DriftItem[] = Array.from({ length: DRIFT_LIST_CAP + 2 }, (_, i) => ({
      kind: 'extra',
      object: 'column',
      name: `users.c${i}`,
    }));
    const text = driftSummary({ ...compared, items });
    assert.match(text, /^schema differs from migrations 0001_a to 0002_b in 7 place\(s\): extra column users\.c0; /);
    assert.match(text, /extra column users\.c4; and 2 more$/);
    assert.match(driftSummary({ kind: 'none' }), /no migration applied yet/);
    assert.match(driftSummary({ kind: 'unknown', migration: '0009_x' }), /0009_x has no reference catalog/);
  });

  it('the embedded reference has an entry per migration, in order, each with a catalog', () => {
    assert.ok(CATALOG.length > 0);
    assert.deepEqual(
      CATALOG.map((e) => e.migration),
      [...CATALOG.map((e) => e.migration)].sort(),
    );
    assert.ok(CATALOG.every((e) => /^[0-9a-f]{64}$/.test(e.checksum) && e.catalog.tables.length > 0));
  });
});
