/**
 * What the deployment machine runs in PostgreSQL, per tenant, in one transaction under the
 * provisioning lock (concurrent GRANTs on the same database row fail with "tuple concurrently
 * updated" otherwise), and checked afterwards: PostgreSQL answers a GRANT it cannot
 * honour with a mere WARNING, CREATE ... IF NOT EXISTS skips another owner's object silently.
 *
 * The model is the seed's: the deployer owns the schema; the tenant's login role has USAGE and
 * CREATE on it (so the tables it creates are its own: SELECT, INSERT, UPDATE, DELETE by ownership)
 * and CONNECT on the database, nothing else. The tenant cannot drop its schema or reach another's.
 */
import type { TransactionSql } from 'postgres';
import { SchemaError } from '../errors.js';
import { errorCode, type Sql } from '../db/connect.js';
import { quoteIdent } from '../db/sql-text.js';
import { generatePassword, scramVerifier } from './scram.js';
import type { TenantSpec } from './tenants.js';

/**
 * Provisioning (and deprovisioning) of this database is serialised by a lock on a table in the
 * deployer's own schema, not by an advisory key: advisory keys are shared by every role of the
 * database, and a tenant holding the key would freeze all provisioning. PUBLIC has no USAGE on this
 * schema, so no tenant can lock (or even name) the table. Every wait is bounded by lock_timeout.
 */
export const DEPLOYER_SCHEMA = 'superfasttt_deployer';
const PROVISION_LOCK_TABLE = 'provision_lock';

/** Once per run: the deployer's schema and lock table exist and are the deployer's own. */
export async function prepareProvisionLock(sql: Sql): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`create schema if not exists ${sql(DEPLOYER_SCHEMA)}`;
      await sql`create table if not exists ${sql(DEPLOYER_SCHEMA)}.${sql(PROVISION_LOCK_TABLE)} ()`;
      break;
    } catch (error) {
      // Two runs creating them at the same instant collide on the catalog; a foreign schema is 42501.
      if (!['23505', '42P06', '42P07'].includes(errorCode(error)) || attempt >= 3) {
        if (errorCode(error) !== '42501') throw error;
        break;
      }
    }
  }
  const [state] = await sql<
    { me: string; schema_owner: string | null; table_owner: string | null; others: string | null }[]
  >`
    select current_user as me, pg_get_userbyid(n.nspowner) as schema_owner,
           (select pg_get_userbyid(relowner) from pg_class
              where relnamespace = n.oid and relname = ${PROVISION_LOCK_TABLE}) as table_owner,
           (select string_agg(distinct coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC'), ', ')
              from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
              where a.grantee <> n.nspowner) as others
    from (select 1) one left join pg_namespace n on n.nspname = ${DEPLOYER_SCHEMA}`;
  if (!state || state.schema_owner !== state.me || state.table_owner !== state.me || state.others) {
    throw new SchemaError(
      `schema ${DEPLOYER_SCHEMA} (where provisioning takes its lock) must belong to the deployer ${state?.me} alone: ` +
        `owner ${state?.schema_owner ?? 'none'}, lock table owner ` +
        `${state?.table_owner ?? 'none'}${state?.others ? `, also granted to ${state.others}` : ''}`,
      `as its owner or a superuser, run: DROP SCHEMA ${quoteIdent(DEPLOYER_SCHEMA)} ` +
        `CASCADE; then run provision again (it recreates it)`,
    );
  }
}

/** Inside a provisioning transaction: waits (at most lock_timeout) for any other provisioning run. */
export async function lockProvisioning(tx: TransactionSql): Promise<void> {
  await tx`lock table ${tx(DEPLOYER_SCHEMA)}.${tx(PROVISION_LOCK_TABLE)} in exclusive mode`;
}

const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

export interface DatabaseStatement {
  sql: string;
  why: string;
}

/**
 * Once per database: PUBLIC loses what would let one tenant see or touch another. Applied only
 * where the grant is there (checked on the actual ACLs, not guessed from the server version).
 */
export async function hardenDatabase(sql: Sql | TransactionSql, database: string): Promise<DatabaseStatement[]> {
  const db = quoteIdent(database);
  const [acl] = await sql<{ connect: boolean; temp: boolean; public_create: boolean }[]>`
    select has_database_privilege('public', current_database(), 'CONNECT') as connect,
           has_database_privilege('public', current_database(), 'TEMPORARY') as temp,
           has_schema_privilege('public', 'public', 'CREATE') as public_create`;
  const statements: DatabaseStatement[] = [];
  if (acl?.connect || acl?.temp)
    statements.push({
      sql: `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
      why:
        'every role may connect to (and create temporary tables in) ' +
        'a new database by default; tenants get CONNECT one by one',
    });
  if (acl?.public_create)
    statements.push({
      sql: 'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
      why:
        'before PostgreSQL 15 (and in upgraded databases) every role ' +
        'may create objects in public, where all tenants would meet',
    });
  for (const statement of statements) await sql.unsafe(statement.sql);
  const [after] = await sql<
    { connect: boolean; create: boolean; me: string; db_owner: string; public_owner: string | null }[]
  >`
    select has_database_privilege('public', current_database(), 'CONNECT') as connect,
           has_schema_privilege('public', 'public', 'CREATE') as create, current_user as me,
           (select pg_get_userbyid(datdba) from pg_database where datname = current_database()) as db_owner,
           (select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'public') as public_owner`;
  if (after?.connect || after?.create) {
    // Each right is revoked by the owner of its object; on PostgreSQL 14 schema public belongs to the
    // bootstrap superuser even when the deployer owns the database.
    const fixes = [
      after.connect &&
        `as ${after.db_owner} (owner of the database) or a superuser: REVOKE ALL ON DATABASE ${db} FROM PUBLIC; or ` +
          `ALTER DATABASE ${db} OWNER TO ${quoteIdent(after.me)}`,
      after.create &&
        `as ${after.public_owner} (owner of schema public) or a superuser: REVOKE CREATE ON SCHEMA public FROM ` +
          `PUBLIC; or ALTER SCHEMA public OWNER TO ${quoteIdent(after.me)}`,
    ].filter(Boolean);
    throw new SchemaError(
      `the deployer ${after.me} could not take PUBLIC's default rights away on database ${database}: ` +
        [after.connect && 'PUBLIC may still connect', after.create && 'PUBLIC may still create in schema public']
          .filter(Boolean)
          .join(', '),
      `run once, in database ${database}: ${fixes.join('; ')}`,
    );
  }
  return statements;
}

/** The schema's comment carries the tenant id that provision also writes into the tenant's storage. */
const TENANT_ID_COMMENT = /^superfasttt tenant ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export interface TenantState {
  roleExists: boolean;
  schemaExists: boolean;
  schemaOwner: string | null;
  /** From the schema's comment, which only its owner (the deployer) can set. */
  tenantId: string | undefined;
  /** From the role's comment (roles are shared by every database of the cluster). */
  roleTenantId: string | undefined;
  /** The role has a tenant's attributes: login, no superuser, createrole nor createdb. */
  roleIsTenantLike: boolean;
}

/**
 * Why the tenant's role may not be used (adopted by provision, dropped by deprovision), or
 * undefined. The role must carry the id of this database's schema of the tenant; a role without id
 * is accepted only beside a schema with one (provisioned before roles were marked).
 */
export function roleProblem(state: TenantState, spec: TenantSpec, database: string): string | undefined {
  if (!state.roleExists) return undefined;
  if (!state.roleIsTenantLike)
    return (
      `role ${spec.role} has other attributes than a tenant's (superuser, ` +
      `createrole, createdb or no login): provision did not make it`
    );
  if (state.roleTenantId && state.roleTenantId !== state.tenantId) {
    return (
      `role ${spec.role} belongs to tenant id ${state.roleTenantId}, ` +
      (state.schemaExists
        ? `not to schema ${spec.schema} of database ${database} (tenant id ${state.tenantId ?? 'none'})`
        : `which has no schema in database ${database} (a tenant of another database of this cluster)`)
    );
  }
  if (!state.roleTenantId && !state.tenantId)
    return (
      `role ${spec.role} exists but provision did not make it (no tenant id on it, nor a schema ${spec.schema} ` +
      `of ours in database ${database})`
    );
  return undefined;
}

/** Read-only: what exists of the tenant, before anything is decided. */
export async function tenantState(sql: Sql, spec: TenantSpec): Promise<TenantState> {
  const [row] = await sql<
    {
      role: boolean;
      tenant_like: boolean | null;
      role_comment: string | null;
      schema: boolean;
      owner: string | null;
      comment: string | null;
    }[]
  >`
    select exists (select 1 from pg_roles where rolname = ${spec.role}) as role,
           (select rolcanlogin and not (rolsuper or rolcreaterole or rolcreatedb)
              from pg_roles where rolname = ${spec.role}) as tenant_like,
           (select shobj_description(oid, 'pg_authid') from pg_roles where rolname = ${spec.role}) as role_comment,
           n.oid is not null as schema,
           pg_get_userbyid(n.nspowner) as owner,
           obj_description(n.oid, 'pg_namespace') as comment
    from (select 1) one left join pg_namespace n on n.nspname = ${spec.schema}`;
  return {
    roleExists: row?.role ?? false,
    schemaExists: row?.schema ?? false,
    schemaOwner: row?.owner ?? null,
    tenantId: TENANT_ID_COMMENT.exec(row?.comment ?? '')?.[1],
    roleTenantId: TENANT_ID_COMMENT.exec(row?.role_comment ?? '')?.[1],
    roleIsTenantLike: row?.tenant_like ?? false,
  };
}

export interface TenantOutcome {
  /** The role was created by this run. */
  created: boolean;
  /** Set when this run chose the role's password (created, or rotated). */
  password?: string;
  /** The statements run, with the password shown as a verifier placeholder. */
  statements: string[];
}

export async function provisionTenant(
  sql: Sql,
  spec: TenantSpec,
  opts: { database: string; rotatePassword: boolean; connectionLimit: number; tenantId: string },
): Promise<TenantOutcome> {
  const role = quoteIdent(spec.role);
  const schema = quoteIdent(spec.schema);
  return sql.begin(async (tx) => {
    await lockProvisioning(tx);
    const [row] = await tx<{ user: string }[]>`select current_user as user`;
    const deployer = row?.user ?? 'current_user';
    const [existingRole] = await tx<
      { rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolcanlogin: boolean }[]
    >`
      select rolsuper, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles where rolname = ${spec.role}`;
    const [existingSchema] = await tx<{ owner: string; comment: string | null }[]>`
      select pg_get_userbyid(nspowner) as owner, obj_description(oid, 'pg_namespace') as comment
      from pg_namespace where nspname = ${spec.schema}`;
    if (existingSchema && existingSchema.owner !== deployer) {
      throw new SchemaError(
        `schema ${spec.schema} exists and belongs to ${existingSchema.owner}, ` +
          `not to the deployer ${deployer}: it is someone else's`,
        `choose another tenant name, or remove that schema if it is not used`,
      );
    }
    if (
      existingRole &&
      (existingRole.rolsuper || existingRole.rolcreaterole || existingRole.rolcreatedb || !existingRole.rolcanlogin)
    ) {
      throw new SchemaError(
        `role ${spec.role} exists with other attributes than a tenant's (superuser, createrole, createdb or no login)`,
        'choose another tenant name, or fix that role by hand',
      );
    }

    const statements: string[] = [];
    const run = async (statement: string, shown = statement) => {
      await tx.unsafe(statement);
      statements.push(shown);
    };
    let password: string | undefined;
    if (!existingRole || opts.rotatePassword) {
      password = generatePassword();
      const verb = existingRole ? 'ALTER' : 'CREATE';
      const login = existingRole ? '' : ' LOGIN';
      await run(
        `${verb} ROLE ${role}${login} PASSWORD ${literal(scramVerifier(password))}`,
        `${verb} ROLE ${role}${login} PASSWORD 'SCRAM-SHA-256$4096:<salt>$<stored key>:<server key>'`,
      );
    }
    await run(`ALTER ROLE ${role} CONNECTION LIMIT ${opts.connectionLimit}`);
    await run(`ALTER ROLE ${role} SET search_path = ${schema}`);
    if (!existingSchema) await run(`CREATE SCHEMA ${schema}`);
    const comment = `superfasttt tenant ${opts.tenantId}`;
    if (existingSchema?.comment !== comment) {
      // Decided by the caller from the state read before (and the storage's proof); a schema that
      // got another id in between was provisioned concurrently by someone else: refuse.
      const other = TENANT_ID_COMMENT.exec(existingSchema?.comment ?? '')?.[1];
      if (other)
        throw new SchemaError(
          `schema ${spec.schema} changed while it was being provisioned (tenant id ${other})`,
          'run provision again',
        );
      await run(`COMMENT ON SCHEMA ${schema} IS ${literal(comment)}`);
    }
    // The same id on the role: roles are cluster-wide, and a role of another database's tenant (or
    // one made by hand) must never be adopted, nor dropped by a deprovision of this database.
    const [roleComment] = await tx<
      { comment: string | null }[]
    >`select shobj_description(oid, 'pg_authid') as comment from pg_roles where rolname = ${spec.role}`;
    if (roleComment?.comment !== comment) await run(`COMMENT ON ROLE ${role} IS ${literal(comment)}`);
    await run(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${role}`);
    await run(`GRANT CONNECT ON DATABASE ${quoteIdent(opts.database)} TO ${role}`);
    await verifyTenant(tx as unknown as Sql, spec, deployer);
    return { created: !existingRole, ...(password && { password }), statements };
  });
}

/** The state after the statements, checked: PostgreSQL lets several of them fail silently. */
async function verifyTenant(sql: Sql, spec: TenantSpec, deployer: string): Promise<void> {
  const [state] = await sql<
    {
      owner: string | null;
      usage: boolean;
      create: boolean;
      connect: boolean;
      others: string | null;
      foreign: string | null;
    }[]
  >`
    select pg_get_userbyid(n.nspowner) as owner,
           has_schema_privilege(${spec.role}, n.oid, 'USAGE') as usage,
           has_schema_privilege(${spec.role}, n.oid, 'CREATE') as create,
           has_database_privilege(${spec.role}, current_database(), 'CONNECT') as connect,
           (select string_agg(distinct coalesce(pg_get_userbyid(nullif(a.grantee, 0)), 'PUBLIC'), ', ')
              from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
             where a.grantee <> n.nspowner and pg_get_userbyid(a.grantee) is distinct from ${spec.role}) as others,
           (select string_agg(distinct pg_get_userbyid(c.relowner), ', ') from pg_class c
             where c.relnamespace = n.oid and pg_get_userbyid(c.relowner) not in (${spec.role}, ${deployer})) as foreign
    from pg_namespace n where n.nspname = ${spec.schema}`;
  const problem = !state
    ? `schema ${spec.schema} was not created`
    : state.owner !== deployer
      ? `schema ${spec.schema} belongs to ${state.owner}`
      : state.others
        ? `schema ${spec.schema} is also granted to ${state.others}: it is used by something else`
        : state.foreign
          ? `schema ${spec.schema} holds objects of ${state.foreign}: it is used by something else`
          : !state.usage || !state.create
            ? `the grant of USAGE, CREATE on ${spec.schema} did not take effect`
            : !state.connect
              ? 'the grant of CONNECT on the database did not take effect (the deployer has no grant option on CONNECT)'
              : undefined;
  if (problem) {
    throw new SchemaError(
      `tenant ${spec.name}: ${problem}`,
      problem.includes('CONNECT')
        ? `as the database owner, run: GRANT CONNECT ON DATABASE <database> TO ${quoteIdent(deployer)} WITH GRANT ` +
            `OPTION; or make the deployer the owner of the database`
        : 'choose another tenant name, or fix the schema by hand',
    );
  }
}
