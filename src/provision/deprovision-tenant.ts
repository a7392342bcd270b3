/**
 * One tenant of a deprovision run, all checks before any removal: it exists, its schema is the
 * deployer's, its role is a tenant's, no session of it is open, and (with --purge-storage) its
 * storage carries its proof. Then the storage (its proof last, so an interrupted purge can be run
 * again), then PostgreSQL: schema and role dropped in one transaction under the provisioning lock.
 */
import type { DeployerConfig } from '../config/targets.js';
import type { Sql } from '../db/connect.js';
import { quoteIdent } from '../db/sql-text.js';
import { SchemaError } from '../errors.js';
import { type DeployerS3, locationSession, type StorageLayout, storageLocation } from './deployer.js';
import { lockTimeoutAs } from './failures.js';
import { purgeStorage } from './purge.js';
import type { KeyProvider } from './storage-keys/provider.js';
import { inspectLocation, proofMatches, where } from './storage-owner.js';
import { DEPLOYER_SCHEMA, lockProvisioning, roleProblem, tenantState } from './tenant-sql.js';
import type { TenantSpec } from './tenants.js';

/** What deprovision runs for a tenant (the dry run prints them). */
export function dropStatements(spec: TenantSpec, database: string): string[] {
  return [
    `DROP SCHEMA IF EXISTS ${quoteIdent(spec.schema)} CASCADE`,
    `REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(spec.role)}`,
    `DROP ROLE IF EXISTS ${quoteIdent(spec.role)}`,
  ];
}

/**
 * `storage`: the deployer's S3 session with --purge-storage, else undefined; `identities`: the
 * provider of per-tenant keys (their identities are deleted, storage purged or not), else undefined.
 * Returns what was done.
 */
export async function deprovisionOne(
  sql: Sql,
  storage: DeployerS3 | undefined,
  config: DeployerConfig,
  spec: TenantSpec,
  keys: { identities: { provider: KeyProvider; layout: StorageLayout } | undefined; signal: AbortSignal },
): Promise<string> {
  const { database } = config.database.url;
  const state = await tenantState(sql, spec);
  if (!state.roleExists && !state.schemaExists) {
    if (!storage) return `nothing to remove: no role ${spec.role}, no schema ${spec.schema}`;
    throw new SchemaError(
      `tenant ${spec.name} does not exist (no role ${spec.role}, no schema ${spec.schema}) in database ${database}: ` +
        `its storage was left alone, nothing was removed`,
      'check the tenant name (and --opaque-names, --storage-mode): storage is purged only for a tenant that exists ' +
        'and whose storage carries its proof of ownership',
    );
  }
  if (!state.schemaExists) {
    // The role alone proves nothing: roles are shared by every database of the cluster, and this
    // program drops schema and role in one transaction, so a role without schema is not its own.
    throw new SchemaError(
      `tenant ${spec.name} has no schema ${spec.schema} in database ${database}, only a role ${spec.role} (a tenant ` +
        `of another database of this cluster, or a role made by hand): nothing was removed`,
      'run deprovision against the database the tenant was provisioned in (PROVISION_DATABASE_URL); remove the role ' +
        'by hand only after checking whose it is',
    );
  }
  const [me] = await sql<{ user: string; sessions: string | null }[]>`
    select current_user as user,
           (select string_agg(format('pid %s (%s, %s)', pid,
                                     coalesce(nullif(application_name, ''), 'no application name'),
                                     coalesce(state, 'state hidden')), '; ')
              from pg_stat_activity where usename = ${spec.role}) as sessions`;
  if (state.schemaOwner !== me?.user) {
    throw new SchemaError(
      `schema ${spec.schema} belongs to ${state.schemaOwner}, not to the deployer ${me?.user}: provision did not ` +
        `make it, and nothing was removed`,
      `if it is this tenant's schema, as ${quoteIdent(state.schemaOwner ?? '?')} or a superuser run: ALTER SCHEMA ` +
        `${quoteIdent(spec.schema)} OWNER TO ${quoteIdent(me?.user ?? '?')}; then run deprovision again`,
    );
  }
  const roleRefused = roleProblem(state, spec, database);
  if (roleRefused)
    throw new SchemaError(`${roleRefused}; nothing was removed`, 'remove it by hand only after checking whose it is');
  if (me?.sessions) {
    throw new SchemaError(
      `tenant ${spec.name} is still connected (${me.sessions}): nothing was removed`,
      `stop its instance first (every replica), then run deprovision again; or, as a superuser: SELECT ` +
        `pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${spec.role}';`,
    );
  }

  let storageDone = '';
  let purge: (() => Promise<string>) | undefined;
  if (storage) {
    const loc = storageLocation(storage.layout, spec);
    const session = locationSession(storage, loc);
    const found = await inspectLocation(session, loc);
    const verdict = proofMatches(found, loc, state.tenantId);
    if (verdict !== 'match' && verdict !== 'gone') {
      throw new SchemaError(
        `tenant ${spec.name}: ${verdict}; nothing was removed`,
        "check whose storage it is; deprovision deletes only storage that provision marked as this tenant's (run " +
          'provision for the tenant once to mark storage made before proofs existed)',
      );
    }
    purge = async () => (verdict === 'gone' ? `; ${where(loc)} already gone` : `; ${await purgeStorage(session, loc)}`);
  }
  if (keys.identities) {
    // Its keys die with the tenant, storage purged or kept: the provider deletes only an identity it made
    // for this tenant (IAM: the path and tag), and a storage kept is then reachable by the deployer only.
    const loc = storageLocation(keys.identities.layout, spec);
    const scope = { tenant: spec.schema, mode: loc.mode, bucket: loc.bucket, prefix: loc.prefix };
    await keys.identities.provider.deleteIdentity(scope, keys.signal);
    storageDone = `; storage identity ${spec.schema} and its keys deleted`;
  }
  if (purge) storageDone += await purge();

  await sql
    .begin(async (tx) => {
      await lockProvisioning(tx);
      // The role may be gone already (an interrupted run): REVOKE needs it.
      for (const statement of dropStatements(spec, database)) {
        if (!state.roleExists && !statement.startsWith('DROP SCHEMA')) continue;
        await tx.unsafe(statement);
      }
    })
    .catch(
      lockTimeoutAs(
        sql,
        config.database,
        [spec.schema, DEPLOYER_SCHEMA],
        `dropping tenant ${spec.name}${storageDone ? ` (its storage was already purged${storageDone})` : ''}`,
      ),
    );
  return `schema ${spec.schema} and role ${spec.role} removed${storageDone}`;
}
