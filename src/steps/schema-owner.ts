/**
 * "Empty or ours", checked before anything is read from or written to the tenant schema.
 *
 * A role that can create objects in the schema (a wrong GRANT CREATE, or a role owning objects
 * there) could otherwise prepare the tables, a migration history with the right checksums, and a
 * trigger on `users`: the bootstrap would find everything "up to date", insert the super admin, and
 * the intruder's trigger would copy (or rewrite) the email and password hash. So:
 *
 * 1. every object in the schema (relations, functions, types, operators, collations, conversions,
 *    text search objects, extended statistics, extensions, and any other kind the catalogs tie to
 *    the schema) is owned by the connecting role (current_user);
 * 2. the tables our migrations own (derived from the migration SQL, plus the program's own history
 *    and lock tables) carry no trigger, rule or row-security policy, and no RLS enabled or forced,
 *    beyond what the migrations create.
 *
 * "What the migrations create" is parsed from the embedded migration SQL (never a hand-kept list):
 * CREATE/DROP/ALTER ... RENAME of tables, triggers, rules and policies, and ALTER TABLE ... ROW
 * LEVEL SECURITY, statement by statement. A trigger is ours only if its name, its table AND its
 * function match: a function the migrations define (zero arguments, as trigger functions are) must
 * be in the schema, owned by us, with the very source text of the migration (so neither a look-alike
 * trigger nor a rewritten guard function passes); one they do not define must be a built-in
 * (pg_catalog). Anything created in a way the parser does not follow (dynamic SQL, a DO block) is
 * not "ours" and fails the check: the failure is closed, and the re-run test catches it.
 *
 * Tables the app adds later, owned by the same role, with their own triggers, are fine: only the
 * ownership of those is checked.
 */
import type { TransactionSql } from 'postgres';
import type { Sql } from '../db/connect.js';
import { quoteIdent } from '../db/sql-text.js';
import { SchemaError } from '../errors.js';
import type { Migration } from './migration-plan.js';
import { nameAt, statements, type Token } from './sql-tokens.js';
import { HISTORY_TABLE, BOOTSTRAP_LOCK_TABLE } from '../db/tables.js';

/** Tables the program itself creates in the schema, beside the migrations': the history and the lock. */
export const PROGRAM_TABLES: readonly string[] = [HISTORY_TABLE, BOOTSTRAP_LOCK_TABLE];

/** Objects listed in the error; the count of the others follows. */
export const LIST_CAP = 10;

export interface OurTrigger {
  table: string;
  name: string;
  /** Name of the function it executes. */
  function: string;
  /** Source text of that function as the migrations define it; null: a built-in (pg_catalog). */
  body: string | null;
}

export interface OurObjects {
  /** Tables whose triggers, rules and policies are checked. */
  tables: string[];
  triggers: OurTrigger[];
  rules: Array<{ table: string; name: string }>;
  policies: Array<{ table: string; name: string }>;
  /** Row level security the migrations enable (absent: disabled, not forced). */
  rls: Array<{ table: string; enabled: boolean; forced: boolean }>;
}

export interface ForeignObject {
  /** table, view, sequence, index, function, type, operator, ..., trigger, rule, policy, row level security */
  kind: string;
  /** Schema-qualified identity, as DROP takes it (functions with their argument types; "trigger on table"). */
  name: string;
  /** Owning role (for a trigger: of its function; rule, policy, RLS: of the table). */
  owner: string;
  /** For a trigger: the function it executes. */
  detail: string | null;
  /** A catalog query the operator can paste to see it. */
  inspect: string;
}

// ---------------------------------------------------------------------------------------------
// What the migrations create

const key = (table: string, name: string) => `${table}\u0000${name}`;

/**
 * The tables, triggers, rules, policies and RLS settings the migrations leave behind, applied in
 * order. Pure: the same SQL always gives the same answer.
 */
export function ourObjects(
  migrations: readonly Pick<Migration, 'sql'>[],
  programTables: readonly string[] = PROGRAM_TABLES,
): OurObjects {
  const tables = new Set<string>();
  const triggers = new Map<string, { table: string; name: string; function: string }>();
  const rules = new Map<string, { table: string; name: string }>();
  const policies = new Map<string, { table: string; name: string }>();
  const rls = new Map<string, { enabled: boolean; forced: boolean }>();
  /** Zero-argument functions (trigger functions take none): name -> source text. */
  const functions = new Map<string, string | null>();

  const word = (t: Token[], i: number) => {
    const token = t[i];
    return token?.kind === 'word' ? token.value : undefined;
  };
  const find = (t: Token[], from: number, ...words: string[]) => {
    for (let j = from; j < t.length; j++) if (words.every((w, k) => word(t, j + k) === w)) return j;
    return -1;
  };
  /** `NAME ON TABLE` after `at` (+ IF EXISTS): for DROP/ALTER TRIGGER, RULE, POLICY. */
  const onTable = (t: Token[], at: number) => {
    let i = at;
    if (word(t, i) === 'if' && word(t, i + 1) === 'exists') i += 2;
    const name = nameAt(t, i);
    if (!name || word(t, name.next) !== 'on') return undefined;
    const table = nameAt(t, name.next + 1);
    return table && { name: name.name, table: table.name, next: table.next };
  };
  const renameTable = (from: string, to: string) => {
    if (tables.delete(from)) tables.add(to);
    for (const map of [triggers, rules, policies]) {
      for (const [k, v] of [...map]) {
        if (v.table !== from) continue;
        map.delete(k);
        map.set(key(to, v.name), { ...v, table: to });
      }
    }
    const setting = rls.get(from);
    if (setting) {
      rls.delete(from);
      rls.set(to, setting);
    }
  };
  const dropTable = (table: string) => {
    tables.delete(table);
    for (const map of [triggers, rules, policies]) for (const [k, v] of [...map]) if (v.table === table) map.delete(k);
    rls.delete(table);
  };
  const byKind = { trigger: triggers, rule: rules, policy: policies } as const;

  for (const migration of migrations) {
    for (const t of statements(migration.sql)) {
      const verb = word(t, 0);
      let i = 1;
      if (verb === 'create') {
        if (word(t, i) === 'or' && word(t, i + 1) === 'replace') i += 2;
        let temporary = false;
        while (['global', 'local', 'temp', 'temporary', 'unlogged', 'constraint'].includes(word(t, i) ?? '')) {
          if (word(t, i) === 'temp' || word(t, i) === 'temporary') temporary = true;
          i++;
        }
        const what = word(t, i++);
        if (what === 'table' && !temporary) {
          if (word(t, i) === 'if' && word(t, i + 1) === 'not' && word(t, i + 2) === 'exists') i += 3;
          const table = nameAt(t, i);
          if (table) tables.add(table.name);
        } else if (what === 'trigger') {
          const name = nameAt(t, i);
          const on = name ? find(t, name.next, 'on') : -1;
          const table = on >= 0 ? nameAt(t, on + 1) : undefined;
          const execute = table
            ? Math.max(find(t, table.next, 'execute', 'function'), find(t, table.next, 'execute', 'procedure'))
            : -1;
          const fn = execute >= 0 ? nameAt(t, execute + 2) : undefined;
          if (name && table && fn)
            triggers.set(key(table.name, name.name), { table: table.name, name: name.name, function: fn.name });
        } else if (what === 'function') {
          const fn = nameAt(t, i);
          if (!fn || t[fn.next]?.value !== '(' || t[fn.next + 1]?.value !== ')') continue;
          const as = find(t, fn.next + 2, 'as');
          const body = as >= 0 ? t[as + 1] : undefined;
          functions.set(fn.name, body?.kind === 'string' ? body.value : null);
        } else if (what === 'rule') {
          const name = nameAt(t, i);
          const to = name ? find(t, name.next, 'to') : -1;
          const table = to >= 0 ? nameAt(t, to + 1) : undefined;
          if (name && table) rules.set(key(table.name, name.name), { table: table.name, name: name.name });
        } else if (what === 'policy') {
          const found = onTable(t, i);
          if (found) policies.set(key(found.table, found.name), { table: found.table, name: found.name });
        }
      } else if (verb === 'drop') {
        const what = word(t, i++);
        if (what === 'table') {
          if (word(t, i) === 'if' && word(t, i + 1) === 'exists') i += 2;
          for (let name = nameAt(t, i); name; name = t[name.next]?.value === ',' ? nameAt(t, name.next + 1) : undefined)
            dropTable(name.name);
        } else if (what === 'trigger' || what === 'rule' || what === 'policy') {
          const found = onTable(t, i);
          if (found) byKind[what].delete(key(found.table, found.name));
        }
      } else if (verb === 'alter') {
        const what = word(t, i++);
        if (what === 'table') {
          if (word(t, i) === 'if' && word(t, i + 1) === 'exists') i += 2;
          if (word(t, i) === 'only') i++;
          const table = nameAt(t, i);
          if (!table) continue;
          const setting = { ...(rls.get(table.name) ?? { enabled: false, forced: false }) };
          for (let j = table.next; j < t.length; j++) {
            if (word(t, j) === 'row' && word(t, j + 1) === 'level' && word(t, j + 2) === 'security') {
              const action = word(t, j - 1);
              if (action === 'enable') setting.enabled = true;
              else if (action === 'disable') setting.enabled = false;
              else if (action === 'force') setting.forced = word(t, j - 2) !== 'no';
            }
          }
          if (setting.enabled || setting.forced) rls.set(table.name, setting);
          else rls.delete(table.name);
          if (word(t, table.next) === 'rename' && word(t, table.next + 1) === 'to') {
            const to = nameAt(t, table.next + 2);
            if (to) renameTable(table.name, to.name);
          }
        } else if (what === 'trigger' || what === 'rule' || what === 'policy') {
          const found = onTable(t, i);
          const to =
            found && word(t, found.next) === 'rename' && word(t, found.next + 1) === 'to'
              ? nameAt(t, found.next + 2)
              : undefined;
          const map: Map<string, { table: string; name: string }> = byKind[what];
          const old = found && map.get(key(found.table, found.name));
          if (found && to && old) {
            map.delete(key(found.table, found.name));
            map.set(key(found.table, to.name), { ...old, name: to.name });
          }
        }
      }
    }
  }
  for (const table of programTables) tables.add(table);
  return {
    tables: [...tables].sort(),
    triggers: [...triggers.values()].map((t) => ({
      ...t,
      body: functions.get(t.function) ?? null,
    })),
    rules: [...rules.values()],
    policies: [...policies.values()],
    rls: [...rls].map(([table, s]) => ({ table, ...s })),
  };
}

// ---------------------------------------------------------------------------------------------
// What the catalogs hold

/**
 * Everything in the schema that is not ours (see the top of this file), at most `limit` of them,
 * in a fixed order (triggers, rules, policies and RLS on our tables first, then functions, then
 * relations, then the other kinds, indexes last), with the total count. Names are schema-qualified
 * identities (pg_identify_object), as DROP takes them. One catalog query, read-only (it also serves
 * `check`), driven by indexes: its cost does not grow with the other tenants' objects.
 *
 * What is in the schema: the dependency records DROP SCHEMA ... CASCADE follows (pg_depend).
 * Who owns it: the owner records DROP OWNED / REASSIGN OWNED follow (pg_shdepend); PostgreSQL keeps
 * none for the bootstrap superuser (oid 10), so a missing record means that superuser (or, for text
 * search parsers and templates, which have no owner, a superuser's object all the same). Objects
 * without a dependency on the schema follow an owner checked here: an index its table (listed
 * too), a table's row type and the array types their relation or element, a composite type's
 * relation its type; a range type's constructor functions belong to the bootstrap superuser but
 * depend on the type (skipped).
 */
export async function foreignObjects(
  sql: Sql | TransactionSql,
  schema: string,
  ours: OurObjects,
  limit = LIST_CAP,
): Promise<{ objects: ForeignObject[]; total: number }> {
  const rows = await sql<(ForeignObject & { total: number })[]>`
    with ns as (select oid from pg_namespace where nspname = ${schema}),
    me as (select oid from pg_roles where rolname = current_user),
    ours as (select ${sql.json(ours as never)}::jsonb as o),
    members as (
      select distinct d.classid, d.objid from pg_depend d, ns
      where d.refclassid = 'pg_namespace'::regclass and d.refobjid = ns.oid),
    our_tables as (
      select c.oid, c.relname, c.relowner, c.relrowsecurity, c.relforcerowsecurity,
             pg_identify_object('pg_class'::regclass, c.oid, 0) as id
      from members m join pg_class c on c.oid = m.objid
      where m.classid = 'pg_class'::regclass
        and c.relname in (select jsonb_array_elements_text(o -> 'tables') from ours)),
    owned(rank, kind, name, owner, inspect) as (
      select case m.classid when 'pg_proc'::regclass then 4 when 'pg_class'::regclass then 5 else 6 end,
             coalesce((select case t.typtype when 'd' then 'domain' when 'e' then 'enum type' when 'r' then 'range type'
                                 when 'm' then 'multirange type' when 'c' then 'composite type' end
                       from pg_type t where m.classid = 'pg_type'::regclass and t.oid = m.objid), i.type, 'object'),
             coalesce(i.identity, pg_describe_object(m.classid, m.objid, 0)),
             coalesce(sh.refobjid, 10::oid),
             case when i.type in ('function', 'procedure') then format('SELECT pg_get_functiondef(%s)', m.objid)
                  when i.type in ('view', 'materialized view') then format('SELECT pg_get_viewdef(%s, true)', m.objid)
                  else format('SELECT * FROM %s WHERE oid = %s', m.classid::regclass, m.objid) end
      from members m
      cross join lateral pg_identify_object(m.classid, m.objid, 0) i
      left join pg_shdepend sh on sh.dbid = (select oid from pg_database where datname = current_database())
        and sh.classid = m.classid and sh.objid = m.objid and sh.objsubid = 0 and sh.deptype = 'o'
      where not exists (select from pg_depend d where d.classid = m.classid and d.objid = m.objid
                          and d.deptype = 'i' and d.refclassid = 'pg_type'::regclass
                          and m.classid = 'pg_proc'::regclass)
      union all
      select 7, i.type, i.identity, c.relowner, format('SELECT pg_get_indexdef(%s)', c.oid)
      from members m join pg_index x on x.indrelid = m.objid join pg_class c on c.oid = x.indexrelid
      cross join lateral pg_identify_object('pg_class'::regclass, c.oid, 0) i
      where m.classid = 'pg_class'::regclass),
    problems(rank, kind, name, owner, detail, inspect) as (
      select rank, kind, name, pg_get_userbyid(owner)::text, null::text, inspect
      from owned where owner is distinct from (select oid from me)
      union all
      select 0, 'trigger', (pg_identify_object('pg_trigger'::regclass, tg.oid, 0)).identity,
             pg_get_userbyid(p.proowner)::text,
             'executes ' || (pg_identify_object('pg_proc'::regclass, p.oid, 0)).identity,
             format('SELECT pg_get_triggerdef(%s), pg_get_functiondef(%s)', tg.oid, p.oid)
      from our_tables c join pg_trigger tg on tg.tgrelid = c.oid join pg_proc p on p.oid = tg.tgfoid
      where not tg.tgisinternal
        and not exists (
          select from ours, jsonb_to_recordset(o -> 'triggers') x("table" text, name text, function text, body text)
          where x."table" = c.relname and x.name = tg.tgname and x.function = p.proname and p.pronargs = 0
            and case when x.body is null then p.pronamespace = 'pg_catalog'::regnamespace
                     else p.pronamespace = (select oid from ns) and p.proowner = (select oid from me)
                          and p.prosrc = x.body end)
      union all
      select 1, 'rule', (pg_identify_object('pg_rewrite'::regclass, r.oid, 0)).identity,
             pg_get_userbyid(c.relowner)::text, null,
             format('SELECT pg_get_ruledef(%s, true)', r.oid)
      from our_tables c join pg_rewrite r on r.ev_class = c.oid
      where not exists (select from ours, jsonb_to_recordset(o -> 'rules') x("table" text, name text)
                        where x."table" = c.relname and x.name = r.rulename)
      union all
      select 2, 'policy', (pg_identify_object('pg_policy'::regclass, pol.oid, 0)).identity,
             pg_get_userbyid(c.relowner)::text, null,
             format('SELECT * FROM pg_policies WHERE schemaname = %L AND tablename = %L AND policyname = %L',
                    ${schema}::text, c.relname, pol.polname)
      from our_tables c join pg_policy pol on pol.polrelid = c.oid
      where not exists (select from ours, jsonb_to_recordset(o -> 'policies') x("table" text, name text)
                        where x."table" = c.relname and x.name = pol.polname)
      union all
      select 3, 'row level security', concat_ws(' and ',
               case when c.relrowsecurity is distinct from coalesce(x.enabled, false)
                    then case when c.relrowsecurity then 'enabled' else 'disabled' end end,
               case when c.relforcerowsecurity is distinct from coalesce(x.forced, false)
                    then case when c.relforcerowsecurity then 'forced' else 'not forced' end end)
               || ' on ' || (c.id).identity,
             pg_get_userbyid(c.relowner)::text, null,
             format('SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_catalog.pg_class WHERE oid = %s',
                    c.oid)
      from our_tables c
      left join (select y.* from ours,
                   jsonb_to_recordset(o -> 'rls') y("table" text, enabled boolean, forced boolean)) x
        on x."table" = c.relname
      where c.relrowsecurity is distinct from coalesce(x.enabled, false)
         or c.relforcerowsecurity is distinct from coalesce(x.forced, false))
    select kind, name, owner, detail, inspect, (count(*) over ())::int as total
    from problems order by rank, kind, name limit ${limit}`;
  return { objects: rows.map(({ total: _, ...object }) => object), total: rows[0]?.total ?? 0 };
}

/** One object for the operator: "table users (owner intruder)". */
export function describeObject(object: ForeignObject): string {
  return `${object.kind} ${object.name} (${object.detail ? `${object.detail}, ` : ''}owner ${object.owner})`;
}

/**
 * Throws SchemaError (exit 4) naming what is not ours, with the catalog query to inspect each and
 * what to do; returns quietly when the schema is empty or ours. Reads the catalogs only.
 */
export async function assertSchemaIsOurs(sql: Sql | TransactionSql, schema: string, ours: OurObjects): Promise<void> {
  const { objects, total } = await foreignObjects(sql, schema, ours);
  if (total === 0) return;
  const [me] = await sql<{ role: string }[]>`select current_user as role`;
  const role = me?.role ?? 'current_user';
  const target = quoteIdent(schema);
  const more = total > objects.length ? `, and ${total - objects.length} more` : '';
  const listAll =
    total > objects.length
      ? ` To list everything in the schema with its owner: SELECT pg_describe_object(d.classid, d.objid, 0) AS ` +
        `object, pg_get_userbyid(o.refobjid) AS owner FROM pg_depend d LEFT JOIN pg_shdepend o ON o.dbid = (SELECT ` +
        `oid FROM pg_database WHERE datname = current_database()) AND o.classid = d.classid AND o.objid = d.objid ` +
        `AND o.deptype = 'o' WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ` +
        `'${target.replace(/'/g, "''")}'::regnamespace ORDER BY 2, 1; (an empty owner is the bootstrap superuser).`
      : '';
  throw new SchemaError(
    `schema ${schema} holds ${total} object(s) that are not the instance's own: ` +
      `${objects.map(describeObject).join('; ')}${more}. ` +
      `Every object in the schema must belong to role ${role}, and the instance's tables (${ours.tables.join(', ')}) ` +
      `must carry only the triggers, rules and policies its migrations create: ` +
      `otherwise another role's code would see or change what the bootstrap writes (the super admin's email and ` +
      `password hash). The instance's tables were neither read nor written`,
    `inspect: ${objects.map((o) => `${o.inspect};`).join(' ')}${listAll} Then, as the schema owner or a superuser, ` +
      `drop what is not the instance's ` +
      `and revoke CREATE on the schema from every role but ${role} (REVOKE CREATE ON SCHEMA ${target} FROM <role>;); ` +
      `if nothing in the schema is needed: DROP SCHEMA ${target} CASCADE; CREATE SCHEMA ${target}; GRANT USAGE, ` +
      `CREATE ON SCHEMA ${target} TO ${quoteIdent(role)};`,
  );
}
