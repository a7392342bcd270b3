/**
 * The tables the program reads and writes in the tenant schema, as one runtime list (TABLES) from
 * which the Kysely types (Database) are derived: test/database-types.test.ts compares TABLES with
 * the catalog of a freshly migrated schema, both ways, so a migration that adds, drops or changes a
 * column fails the suite until this file follows it.
 * The columns are those of migrations/*.sql and of the history table the migrations step creates
 * (src/steps/migrations.ts). BOOTSTRAP_LOCK_TABLE (no columns, only locked) is not part of it.
 * Types only from kysely: this module is loaded eagerly, kysely itself lazily (kysely.ts).
 */
import type { ColumnType } from 'kysely';
import { HISTORY_TABLE } from './tables.js';

/** A column's type as the catalog writes it: format_type(atttypid, atttypmod). */
export type PgType = 'uuid' | 'text' | 'boolean' | 'timestamp with time zone' | 'jsonb';

export interface ColumnSpec {
  readonly type: PgType;
  /** Not NOT NULL. */
  readonly nullable: boolean;
  /** A DEFAULT (or an identity): an insert may leave it out. */
  readonly hasDefault: boolean;
}

/** Every table and column, in the order of their CREATE TABLE. */
export const TABLES = {
  users: {
    id: { type: 'uuid', nullable: false, hasDefault: true },
    email: { type: 'text', nullable: false, hasDefault: false },
    first_name: { type: 'text', nullable: false, hasDefault: false },
    last_name: { type: 'text', nullable: false, hasDefault: false },
    phone: { type: 'text', nullable: true, hasDefault: false },
    password_hash: { type: 'text', nullable: false, hasDefault: false },
    role: { type: 'text', nullable: false, hasDefault: true },
    created_at: { type: 'timestamp with time zone', nullable: false, hasDefault: true },
    updated_at: { type: 'timestamp with time zone', nullable: false, hasDefault: true },
  },
  setup_state: {
    id: { type: 'boolean', nullable: false, hasDefault: true },
    completed: { type: 'boolean', nullable: false, hasDefault: true },
    completed_at: { type: 'timestamp with time zone', nullable: true, hasDefault: false },
    completed_by: { type: 'text', nullable: true, hasDefault: false },
    bootstrap_version: { type: 'text', nullable: true, hasDefault: false },
  },
  instance_settings: {
    key: { type: 'text', nullable: false, hasDefault: false },
    value: { type: 'jsonb', nullable: false, hasDefault: false },
    updated_at: { type: 'timestamp with time zone', nullable: false, hasDefault: true },
  },
  [HISTORY_TABLE]: {
    name: { type: 'text', nullable: false, hasDefault: false },
    checksum: { type: 'text', nullable: false, hasDefault: false },
    applied_at: { type: 'timestamp with time zone', nullable: false, hasDefault: true },
    bootstrap_version: { type: 'text', nullable: false, hasDefault: false },
  },
} as const satisfies Record<string, Record<string, ColumnSpec>>;

export type TableName = keyof typeof TABLES;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

declare const jsonbBrand: unique symbol;
/**
 * What a jsonb column accepts on insert and update: only the expression of queries.ts' jsonb()
 * (the value's JSON text, cast), never a plain object or a string (see jsonb() for why).
 */
export interface JsonbInput {
  readonly [jsonbBrand]: 'jsonb';
}

/** What a value of each type is in JavaScript when read (postgres.js' parsers). */
interface Selected {
  uuid: string;
  text: string;
  boolean: boolean;
  'timestamp with time zone': Date;
  jsonb: JsonValue;
}
/** What a query may write into a column of each type. */
interface Written {
  uuid: string;
  text: string;
  boolean: boolean;
  'timestamp with time zone': Date;
  jsonb: JsonbInput;
}

type OrNull<C extends ColumnSpec, T> = C['nullable'] extends true ? T | null : T;
/** Kysely makes a column optional in an insert when its insert type admits undefined (or null). */
type Column<C extends ColumnSpec> = ColumnType<
  OrNull<C, Selected[C['type']]>,
  OrNull<C, Written[C['type']]> | (C['hasDefault'] extends true ? undefined : never),
  OrNull<C, Written[C['type']]>
>;
type Table<T extends Record<string, ColumnSpec>> = { -readonly [K in keyof T]: Column<T[K]> };
type DatabaseOf<T extends Record<string, Record<string, ColumnSpec>>> = { -readonly [K in keyof T]: Table<T[K]> };

/** The Kysely schema of the tenant schema's tables (unqualified names: the session's search_path). */
export interface Database extends DatabaseOf<typeof TABLES> {}
