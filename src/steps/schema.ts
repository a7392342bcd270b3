/**
 * The tenant schema exists, the role may use it, and it is ours: every object owned by the role,
 * nothing on the instance's tables that its migrations did not create (schema-owner.ts), and empty
 * or holding our migration history. The deployment machine creates schemas, never the instance: each failure
 * names the exact SQL the operator must run. Then the session's search_path is the tenant schema
 * alone, so migrations and queries can never touch public or another tenant.
 */
import migrations from 'virtual:migrations';
import { SchemaError } from '../errors.js';
import { quoteIdent } from '../db/sql-text.js';
import { HISTORY_TABLE, BOOTSTRAP_LOCK_TABLE } from '../db/tables.js';
import { assertSchemaIsOurs, ourObjects } from './schema-owner.js';
import type { Connection } from '../db/connect.js';
import { databaseStep } from './database.js';
import { type Done, defineStep, done, type StepContext } from './step.js';

/** The run's session once the schema step passed: search_path is the tenant schema alone. */
export interface TenantSession extends Connection {
  readonly schema: string;
}

export const schemaStep = defineStep({
  name: 'schema',
  errorClass: SchemaError,
  needs: { db: databaseStep },
  inspect: useSchema,
  apply: useSchema,
});

/** The same in check and bootstrap: only reads, then sets the session's search_path. */
async function useSchema(ctx: StepContext, { db }: { db: Connection }): Promise<Done<TenantSession>> {
  const { sql } = db;
  const schema = ctx.config.schema;
  const [info] = await sql<
    { role: string; exists: boolean; usage: boolean; create: boolean; owner: string | null; similar: string | null }[]
  >`
      select current_user as role,
             n.oid is not null as exists,
             coalesce(has_schema_privilege(n.oid, 'USAGE'), false) as usage,
             coalesce(has_schema_privilege(n.oid, 'CREATE'), false) as create,
             pg_get_userbyid(n.nspowner) as owner,
             (select string_agg(quote_ident(nspname), ', ') from pg_namespace
               where lower(nspname) = ${schema} and nspname <> ${schema}) as similar
      from (select 1) one left join pg_namespace n on n.nspname = ${schema}`;
  if (!info) throw new Error('internal: schema query returned no row');
  const role = quoteIdent(info.role);
  const target = quoteIdent(schema);

  if (!info.exists) {
    const similar = info.similar
      ? ` (a schema with other letter case exists: ${info.similar}; schema names are case-sensitive when quoted)`
      : '';
    throw new SchemaError(
      `schema ${schema} does not exist in database ` +
        `${ctx.config.database.url.database}${similar}; the instance never creates its schema`,
      `as the deployment role, run: CREATE SCHEMA ${target}; GRANT USAGE, CREATE ON SCHEMA ${target} TO ${role};`,
    );
  }
  const missing = [!info.usage && 'USAGE', !info.create && 'CREATE'].filter(Boolean);
  if (missing.length > 0) {
    throw new SchemaError(
      `role ${info.role} lacks ${missing.join(' and ')} on schema ${schema} (owner: ${info.owner})`,
      `as the schema owner or the deployment role, run: GRANT ${missing.join(', ')} ON SCHEMA ${target} TO ${role};`,
    );
  }
  // Before reading or writing anything in it: every object ours, no foreign trigger on our tables.
  await assertSchemaIsOurs(sql, schema, ourObjects(migrations));
  // And it stays ours: a check is a snapshot, so no other role may be able to add to the schema
  // after it (its owner, the deployment role, excepted: it could change the ACL anyway).
  const [acl] = await sql<{ others: string | null }[]>`
      select string_agg(distinct coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC'), ', ') as others
      from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
      where n.nspname = ${schema} and a.privilege_type = 'CREATE'
        and a.grantee <> n.nspowner and a.grantee <> (select oid from pg_roles where rolname = current_user)`;
  if (acl?.others) {
    throw new SchemaError(
      `schema ${schema} lets ${acl.others} create objects in it besides ${info.role}: another role could add a ` +
        `trigger or a table next to the instance's after any check; nothing was written`,
      `as the schema owner (${info.owner}), run: REVOKE CREATE ON SCHEMA ${target} FROM ${acl.others
        .split(', ')
        .map((r) => (r === 'PUBLIC' ? r : quoteIdent(r)))
        .join(', ')};`,
    );
  }

  const [content] = await sql<{ relations: number; sample: string | null; history: boolean }[]>`
      select count(*)::int as relations,
             string_agg(relname, ', ' order by relname) filter (where rn <= 5) as sample,
             bool_or(relname = ${HISTORY_TABLE} and relkind = 'r') as history
      from (select relname, relkind, row_number() over (order by relname) as rn
            from pg_class where relnamespace = ${schema}::regnamespace and relkind in ('r', 'p', 'v', 'm', 'f', 'S')
              and relname <> ${BOOTSTRAP_LOCK_TABLE}) rel`;
  if (content && content.relations > 0 && !content.history) {
    throw new SchemaError(
      `schema ${schema} already holds ${content.relations} table(s) or other relations ` +
        `(${content.sample}${content.relations > 5 ? ', ...' : ''}) but ` +
        `no superfasttt migration history: it is used by something else`,
      `give this instance its own schema (DATABASE_SCHEMA), or, if that content is not needed, empty the schema: ` +
        `DROP SCHEMA ${target} CASCADE; CREATE SCHEMA ${target}; GRANT USAGE, CREATE ON SCHEMA ${target} TO ${role};`,
    );
  }

  // Server-side quoting of the identifier; `false`: for the whole session, not one transaction.
  await sql`select set_config('search_path', quote_ident(${schema}), false)`;
  const summary = `schema ${schema} is usable by ${info.role} (USAGE, CREATE)${content?.history ? '' : ', empty'}`;
  return done(summary, { ...db, schema });
}
