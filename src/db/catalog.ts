/**
 * A schema's catalog, read and normalised so that two schemas compare equal when they hold the same
 * objects (drift, src/steps/drift.ts): for the tables asked for, their columns, constraints, indexes
 * and triggers (with the trigger function's source), and the functions asked for. Nothing depends on
 * the schema's name (its qualification is removed from every definition) nor on the object ids, and
 * lists are sorted by name in byte order ("C"), so the same migrations give the same catalog on every
 * PostgreSQL the program supports. Read-only: catalog queries only.
 */
import type { TransactionSql } from 'postgres';
import type { Sql } from './connect.js';

export interface ColumnCatalog {
  name: string;
  /** format_type: `text`, `character varying(20)`, `timestamp with time zone`. */
  type: string;
  not_null: boolean;
  /** The default expression (pg_get_expr), or null. */
  default: string | null;
  /** '' (none), 'a' (GENERATED ALWAYS AS IDENTITY), 'd' (BY DEFAULT). */
  identity: string;
  /** '' (none), 's' (GENERATED ALWAYS AS (...) STORED). */
  generated: string;
  /** The collation when it is not the type's default, or null. */
  collation: string | null;
}

export interface ConstraintCatalog {
  name: string;
  /** primary key, unique, check, foreign key, exclusion, trigger. */
  type: string;
  /** pg_get_constraintdef. */
  definition: string;
}

export interface IndexCatalog {
  name: string;
  /** pg_get_indexdef without the schema: `CREATE INDEX x ON users USING btree (phone)`. */
  definition: string;
}

export interface TriggerCatalog {
  name: string;
  /** pg_get_triggerdef without the schema (timing, events, level, WHEN, function). */
  definition: string;
  /** 'O' (enabled), 'D' (disabled), 'R' (replica), 'A' (always). */
  enabled: string;
  /** The function it executes, as `name(arguments)`, schema-less. */
  function: string;
  /** That function's source (prosrc). */
  function_body: string;
}

export interface TableCatalog {
  name: string;
  /** In column order. */
  columns: ColumnCatalog[];
  constraints: ConstraintCatalog[];
  /** Every index, those of primary key, unique and exclusion constraints too. */
  indexes: IndexCatalog[];
  triggers: TriggerCatalog[];
}

export interface FunctionCatalog {
  /** `name(identity arguments)`. */
  name: string;
  result: string;
  language: string;
  /** f (function), p (procedure), a (aggregate), w (window). */
  kind: string;
  /** i, s, v. */
  volatility: string;
  security_definer: boolean;
  /** SET clauses (proconfig), sorted. */
  config: string[];
  /** prosrc. */
  body: string;
}

export interface Catalog {
  tables: TableCatalog[];
  functions: FunctionCatalog[];
}

/** Which objects to read: names, or null for every table (or function) of the schema. */
export interface CatalogScope {
  tables: readonly string[] | null;
  functions: readonly string[] | null;
}

const CONSTRAINT_TYPES: Record<string, string> = {
  p: 'primary key',
  u: 'unique',
  c: 'check',
  f: 'foreign key',
  x: 'exclusion',
  t: 'trigger',
};

/** Byte order, whatever the locale: the catalog file must not depend on the machine that made it. */
const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The catalog of `scope` in `schema` (an absent schema or table is simply not in it). NOT NULL
 * constraints (pg_constraint rows since PostgreSQL 18) are the column's not_null, not constraints.
 */
export async function readCatalog(sql: Sql | TransactionSql, schema: string, scope: CatalogScope): Promise<Catalog> {
  const tables = scope.tables === null ? null : JSON.stringify(scope.tables);
  const functions = scope.functions === null ? null : JSON.stringify(scope.functions);
  const [ns] = await sql<{ oid: string; prefix: string }[]>`
    select oid::int8::text as oid, quote_ident(nspname) || '.' as prefix from pg_namespace where nspname = ${schema}`;
  if (!ns) return { tables: [], functions: [] };
  const strip = (text: string) => text.split(ns.prefix).join('');
  const nsOid = ns.oid;

  const rels = await sql<{ oid: string; name: string }[]>`
    select c.oid::int8::text as oid, c.relname as name from pg_class c
    where c.relnamespace = ${nsOid}::int8::oid and c.relkind in ('r', 'p')
      and (${tables}::text is null
           or c.relname in (select value from json_array_elements_text(${tables}::text::json)))`;
  const oids = JSON.stringify(rels.map((r) => r.oid));
  const inTables = sql`(select value::int8::oid from json_array_elements_text(${oids}::text::json))`;

  const columns = await sql<(ColumnCatalog & { table: string })[]>`
    select c.relname as table, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
           a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default,
           a.attidentity::text as identity, a.attgenerated::text as generated,
           case when a.attcollation <> t.typcollation
                then (select collname from pg_collation where oid = a.attcollation) end as collation
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_type t on t.oid = a.atttypid
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid in ${inTables} and a.attnum > 0 and not a.attisdropped
    order by c.relname, a.attnum`;
  const constraints = await sql<(ConstraintCatalog & { table: string })[]>`
    select c.relname as table, k.conname as name, k.contype::text as type, pg_get_constraintdef(k.oid) as definition
    from pg_constraint k join pg_class c on c.oid = k.conrelid
    where k.conrelid in ${inTables} and k.contype <> 'n'`;
  const indexes = await sql<(IndexCatalog & { table: string })[]>`
    select c.relname as table, i.relname as name, pg_get_indexdef(i.oid) as definition
    from pg_index x join pg_class c on c.oid = x.indrelid join pg_class i on i.oid = x.indexrelid
    where x.indrelid in ${inTables}`;
  const triggers = await sql<(TriggerCatalog & { table: string })[]>`
    select c.relname as table, tg.tgname as name, pg_get_triggerdef(tg.oid) as definition,
           tg.tgenabled::text as enabled,
           p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as function,
           p.prosrc as function_body
    from pg_trigger tg join pg_class c on c.oid = tg.tgrelid join pg_proc p on p.oid = tg.tgfoid
    where tg.tgrelid in ${inTables} and not tg.tgisinternal`;
  // config as JSON text: the program's sessions may not parse arrays (no type fetching).
  const fns = await sql<(Omit<FunctionCatalog, 'config'> & { config: string })[]>`
    select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name,
           coalesce(pg_get_function_result(p.oid), '') as result, l.lanname as language, p.prokind::text as kind,
           p.provolatile::text as volatility, p.prosecdef as security_definer,
           coalesce(array_to_json(p.proconfig)::text, '[]') as config, p.prosrc as body
    from pg_proc p join pg_language l on l.oid = p.prolang
    where p.pronamespace = ${nsOid}::int8::oid
      and (${functions}::text is null
           or p.proname in (select value from json_array_elements_text(${functions}::text::json)))`;

  const of = <T extends { table: string }>(rows: readonly T[], table: string) =>
    rows.filter((r) => r.table === table).map(({ table: _, ...rest }) => rest);
  return {
    tables: rels
      .map(({ name }) => ({
        name,
        columns: of(columns, name).map((c) => ({
          ...c,
          type: strip(c.type),
          default: c.default === null ? null : strip(c.default),
        })),
        constraints: of(constraints, name)
          .map((k) => ({ ...k, type: CONSTRAINT_TYPES[k.type] ?? k.type, definition: strip(k.definition) }))
          .sort(byName),
        indexes: of(indexes, name)
          .map((i) => ({ ...i, definition: strip(i.definition) }))
          .sort(byName),
        triggers: of(triggers, name)
          .map((t) => ({ ...t, definition: strip(t.definition), function: strip(t.function) }))
          .sort(byName),
      }))
      .sort(byName),
    functions: fns
      .map((f) => ({
        ...f,
        name: strip(f.name),
        result: strip(f.result),
        config: (JSON.parse(f.config) as string[]).sort(),
      }))
      .sort(byName),
  };
}
