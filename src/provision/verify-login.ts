/**
 * Provision never reports a tenant ready that cannot boot: before it does, it logs in exactly as
 * the instance will, with the DATABASE_URL of the tenant's .env (read back from the file, so the
 * written bytes are what is proven), TLS as that URL says, and checks that the session is the
 * tenant's role and reaches its schema with USAGE and CREATE.
 */
import { parseEnv } from 'node:util';
import * as v from 'valibot';
import { databaseUrl } from '../config/schema.js';
import { type Connection, connect } from '../db/connect.js';
import { BootstrapError } from '../errors.js';
import { type DatabaseTarget, DEPLOYER_DATABASE_VARIABLES, urlDatabaseTarget } from '../config/targets.js';
import type { Logger } from '../log.js';
import type { TenantSpec } from './tenants.js';

/** A tenant's login is tried with its .env's URL and the deployer's timeouts. */
const TENANT_ENV_VARIABLES = { ...DEPLOYER_DATABASE_VARIABLES, url: "DATABASE_URL of the tenant's .env" };

export interface LoginSettings {
  /** The deployer's database: its timeouts bound the tenant's login too. */
  deployer: DatabaseTarget;
  log: Logger;
  signal: AbortSignal;
}

/** undefined when the tenant can boot from `envText` (a .env file's content); otherwise why not. */
export async function loginProblem(envText: string, spec: TenantSpec, s: LoginSettings): Promise<string | undefined> {
  const values = parseEnv(envText);
  if (values.DATABASE_SCHEMA !== spec.schema)
    return `its DATABASE_SCHEMA is ${JSON.stringify(values.DATABASE_SCHEMA ?? null)}, not ${spec.schema}`;
  const url = v.safeParse(databaseUrl(), values.DATABASE_URL ?? '');
  if (!url.success) return 'its DATABASE_URL is missing or invalid';
  if (url.output.user !== spec.role) return `its DATABASE_URL logs in as ${url.output.user}, not ${spec.role}`;
  let db: Connection | undefined;
  try {
    db = await connect(urlDatabaseTarget(url.output, s.deployer, TENANT_ENV_VARIABLES), s.log, s.signal);
  } catch (error) {
    if (error instanceof BootstrapError) return `logging in with its DATABASE_URL failed: ${error.message}`;
    throw error;
  }
  try {
    const [row] = await db.sql<{ user: string; usage: boolean; create: boolean }[]>`
      select current_user as user,
             coalesce(has_schema_privilege(${spec.schema}, 'USAGE'), false) as usage,
             coalesce(has_schema_privilege(${spec.schema}, 'CREATE'), false) as create`;
    if (row?.user !== spec.role) return `its DATABASE_URL logs in as ${row?.user}, not ${spec.role}`;
    if (!row.usage || !row.create)
      return (
        `role ${spec.role} lacks ` +
        `${[!row.usage && 'USAGE', !row.create && 'CREATE'].filter(Boolean).join(' and ')} on schema ${spec.schema}`
      );
    return undefined;
  } finally {
    await db.sql.end({ timeout: 1 });
  }
}
