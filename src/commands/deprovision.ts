/**
 * `deprovision --tenant NAME --yes`: drops the tenant's schema (with everything in it) and its
 * role, and with --purge-storage its storage, only once every check passed. Without --yes it only
 * prints what it would do. Tenants are independent: one refused does not stop the others.
 */
import { parseOptions } from '../cli-options.js';
import { loadProvisionConfig, type ProvisionEnv } from '../config/provision-schema.js';
import type { S3Session } from '../storage/client.js';
import { connect, errorCode, type Sql } from '../db/connect.js';
import { isLockTimeout, lockTimeoutError } from '../db/locks.js';
import { quoteIdent } from '../db/sql-text.js';
import { BootstrapError, ConfigError, SchemaError } from '../errors.js';
import { inspectLocation, MARKER_NAME, proofMatches, where, type StorageLocation } from '../provision/storage-owner.js';
import {
  DEPLOYER_SCHEMA,
  lockProvisioning,
  prepareProvisionLock,
  roleProblem,
  tenantState,
} from '../provision/tenant-sql.js';
import {
  deployerBounds,
  deployerConnectSettings,
  locationSession,
  openProvisionStorage,
  storageLocation,
} from '../provision/deployer.js';
import { tenantSpecs, type TenantSpec } from '../provision/tenants.js';
import type { CommandInput } from './bootstrap.js';

export interface DeprovisionOptions {
  tenants: string[];
  yes: boolean;
  purgeStorage: boolean;
  storageMode: 'prefix' | 'bucket';
  opaqueNames: boolean;
}

export function deprovisionOptions(args: readonly string[]): DeprovisionOptions {
  const o = parseOptions('deprovision', args, {
    flags: ['--yes', '--purge-storage', '--opaque-names'],
    values: ['--storage-mode'],
    repeatable: ['--tenant'],
  });
  const tenants = o.lists.get('--tenant') ?? [];
  if (tenants.length === 0)
    throw new ConfigError('deprovision needs --tenant NAME', [], 'name the tenant(s) to remove');
  const storageMode = o.values.get('--storage-mode') ?? 'prefix';
  if (storageMode !== 'prefix' && storageMode !== 'bucket')
    throw new ConfigError('--storage-mode must be prefix or bucket', [], 'the mode the tenants were provisioned with');
  return {
    tenants,
    yes: o.flags.has('--yes'),
    purgeStorage: o.flags.has('--purge-storage'),
    storageMode,
    opaqueNames: o.flags.has('--opaque-names'),
  };
}

export async function deprovision(input: CommandInput, opts: DeprovisionOptions): Promise<number> {
  const specs = tenantSpecs(opts.tenants, undefined, {
    opaque: opts.opaqueNames,
    buckets: opts.storageMode === 'bucket',
  });
  const env = loadProvisionConfig(input.env);
  const { database } = env.PROVISION_DATABASE_URL;
  if (opts.purgeStorage && !env.PROVISION_STORAGE_ACCESS_KEY) {
    throw new ConfigError(
      '--purge-storage needs the storage admin keys (PROVISION_STORAGE_ACCESS_KEY, PROVISION_STORAGE_SECRET_KEY)',
      [],
      'set them, or leave the storage alone',
    );
  }
  if (opts.purgeStorage && opts.storageMode === 'prefix' && !env.PROVISION_STORAGE_BUCKET) {
    throw new ConfigError(
      'PROVISION_STORAGE_BUCKET: is required with --purge-storage --storage-mode prefix',
      [],
      'set the shared bucket the tenants were provisioned in',
    );
  }
  const clash =
    opts.storageMode === 'bucket' ? specs.find((spec) => spec.bucket === env.PROVISION_STORAGE_BUCKET) : undefined;
  if (clash)
    throw new ConfigError(
      `tenant ${JSON.stringify(clash.name)}: its bucket ${clash.bucket} is PROVISION_STORAGE_BUCKET, the shared bucket of the tenants' folders: nothing was removed`,
      [],
      'check the tenant name and --storage-mode',
    );
  if (!opts.yes) {
    const lines = specs.flatMap((spec) => [
      ...dropStatements(spec, database).map((s) => `  ${s};`),
      `  ${!opts.purgeStorage ? 'storage left alone (--purge-storage to delete it)' : `${where(storageLocation(env, spec, opts.storageMode))}: every object deleted, if it carries this tenant's proof of ownership`}`,
    ]);
    process.stdout.write(
      `deprovision (dry run: add --yes to do it) would run on database ${database}, for each tenant that exists and is not connected:\n${lines.join('\n')}\n`,
    );
    return 0;
  }
  const db = await connect(deployerConnectSettings(env), input.log, input.signal, { bounds: deployerBounds(env) });
  const storage = opts.purgeStorage ? await openProvisionStorage(env, input.signal) : undefined;
  const failures: BootstrapError[] = [];
  let removed = 0;
  try {
    await prepareProvisionLock(db.sql);
    for (const spec of specs) {
      try {
        const done = await deprovisionOne(db.sql, storage, env, spec, opts);
        if (!done.startsWith('nothing')) removed++;
        input.log.info(`${spec.name}: ${done}`, { step: 'deprovision' });
      } catch (error) {
        const e =
          error instanceof BootstrapError
            ? error
            : new SchemaError(
                `tenant ${spec.name}: ${(error as Error).message} (${errorCode(error) || 'error'})`,
                'check the deployer\'s rights (README, "Provisioning")',
                { cause: error },
              );
        failures.push(e);
        input.log.error(`${spec.name}: ${e.message}`, {
          step: 'deprovision',
          ...(e.fix && { fix: e.fix }),
          exit_code: e.exitCode,
        });
      }
    }
  } finally {
    storage?.client.destroy();
    await db.sql.end({ timeout: 5 });
  }
  process.stdout.write(
    `deprovision: ${specs.length} tenant(s): ${removed} removed, ${specs.length - removed - failures.length} not found, ${failures.length} failed\n`,
  );
  return failures[0]?.exitCode ?? 0;
}

function dropStatements(spec: TenantSpec, database: string): string[] {
  return [
    `DROP SCHEMA IF EXISTS ${quoteIdent(spec.schema)} CASCADE`,
    `REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(spec.role)}`,
    `DROP ROLE IF EXISTS ${quoteIdent(spec.role)}`,
  ];
}

/**
 * One tenant, all checks before any removal: it exists, its schema is the deployer's, its role is a
 * tenant's, no session of it is open, and (with --purge-storage) its storage carries its proof.
 * Then the storage (its proof last, so an interrupted purge can be run again), then PostgreSQL.
 */
async function deprovisionOne(
  sql: Sql,
  storage: S3Session | undefined,
  env: ProvisionEnv,
  spec: TenantSpec,
  opts: DeprovisionOptions,
): Promise<string> {
  const state = await tenantState(sql, spec);
  if (!state.roleExists && !state.schemaExists) {
    if (!opts.purgeStorage) return `nothing to remove: no role ${spec.role}, no schema ${spec.schema}`;
    throw new SchemaError(
      `tenant ${spec.name} does not exist (no role ${spec.role}, no schema ${spec.schema}) in database ${env.PROVISION_DATABASE_URL.database}: its storage was left alone, nothing was removed`,
      'check the tenant name (and --opaque-names, --storage-mode): storage is purged only for a tenant that exists and whose storage carries its proof of ownership',
    );
  }
  const database = env.PROVISION_DATABASE_URL.database;
  if (!state.schemaExists) {
    // The role alone proves nothing: roles are shared by every database of the cluster, and this
    // program drops schema and role in one transaction, so a role without schema is not its own.
    throw new SchemaError(
      `tenant ${spec.name} has no schema ${spec.schema} in database ${database}, only a role ${spec.role} (a tenant of another database of this cluster, or a role made by hand): nothing was removed`,
      'run deprovision against the database the tenant was provisioned in (PROVISION_DATABASE_URL); remove the role by hand only after checking whose it is',
    );
  }
  const [me] = await sql<{ user: string; sessions: string | null }[]>`
    select current_user as user,
           (select string_agg(format('pid %s (%s, %s)', pid, coalesce(nullif(application_name, ''), 'no application name'), coalesce(state, 'state hidden')), '; ')
              from pg_stat_activity where usename = ${spec.role}) as sessions`;
  if (state.schemaExists && state.schemaOwner !== me?.user) {
    throw new SchemaError(
      `schema ${spec.schema} belongs to ${state.schemaOwner}, not to the deployer ${me?.user}: provision did not make it, and nothing was removed`,
      `if it is this tenant's schema, as ${quoteIdent(state.schemaOwner ?? '?')} or a superuser run: ALTER SCHEMA ${quoteIdent(spec.schema)} OWNER TO ${quoteIdent(me?.user ?? '?')}; then run deprovision again`,
    );
  }
  const roleRefused = roleProblem(state, spec, database);
  if (roleRefused)
    throw new SchemaError(`${roleRefused}; nothing was removed`, 'remove it by hand only after checking whose it is');
  if (me?.sessions) {
    throw new SchemaError(
      `tenant ${spec.name} is still connected (${me.sessions}): nothing was removed`,
      `stop its instance first (every replica), then run deprovision again; or, as a superuser: SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${spec.role}';`,
    );
  }

  let storageDone = '';
  if (storage) {
    const loc = storageLocation(env, spec, opts.storageMode);
    const session = locationSession(storage, env, loc);
    const found = await inspectLocation(session, loc);
    const verdict = proofMatches(found, loc, state.tenantId);
    if (verdict !== 'match' && verdict !== 'gone') {
      throw new SchemaError(
        `tenant ${spec.name}: ${verdict}; nothing was removed`,
        "check whose storage it is; deprovision deletes only storage that provision marked as this tenant's (run provision for the tenant once to mark storage made before proofs existed)",
      );
    }
    storageDone = verdict === 'gone' ? `; ${where(loc)} already gone` : `; ${await purgeStorage(session, loc)}`;
  }

  try {
    await sql.begin(async (tx) => {
      await lockProvisioning(tx);
      // The role may be gone already (an interrupted run): REVOKE needs it.
      for (const statement of dropStatements(spec, env.PROVISION_DATABASE_URL.database)) {
        if (!state.roleExists && !statement.startsWith('DROP SCHEMA')) continue;
        await tx.unsafe(statement);
      }
    });
  } catch (error) {
    if (!isLockTimeout(error)) throw error;
    throw await lockTimeoutError(
      sql,
      [spec.schema, DEPLOYER_SCHEMA],
      `dropping tenant ${spec.name}${storageDone ? ` (its storage was already purged${storageDone})` : ''}`,
      'PROVISION_LOCK_TIMEOUT',
      env.PROVISION_LOCK_TIMEOUT,
      error,
    );
  }
  return `schema ${spec.schema} and role ${spec.role} removed${storageDone}`;
}

/** Deletes the tenant's objects, its proof last, then its bucket in bucket mode: only with --purge-storage --yes. */
async function purgeStorage(session: S3Session, loc: StorageLocation): Promise<string> {
  const { s3, send } = session;
  const proof = loc.prefix + MARKER_NAME;
  const keys: string[] = [];
  // 200 keys a page: a page of 1000 long, escaped keys could pass the 2 MiB a response may hold.
  for (let token: string | undefined; ; ) {
    const page = await send<{ Contents?: Array<{ Key?: string }>; NextContinuationToken?: string }>(
      'ListObjectsV2',
      new s3.ListObjectsV2Command({
        Bucket: loc.bucket,
        Prefix: loc.prefix || undefined,
        ContinuationToken: token,
        MaxKeys: 200,
      }),
    );
    for (const { Key } of page.Contents ?? []) if (Key !== undefined && Key !== proof) keys.push(Key);
    token = page.NextContinuationToken;
    if (!token) break;
  }
  // Listed whole before anything is deleted: a tenant's bucket that also holds other tenants'
  // folders (their proofs) is not this tenant's alone.
  const others = keys.filter((key) => key.endsWith(`/${MARKER_NAME}`));
  if (others.length > 0) {
    throw new SchemaError(
      `${where(loc)} also holds the folders of other tenants (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''}): nothing was removed`,
      "move those tenants' folders out of this bucket first",
    );
  }
  for (const Key of keys) await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: loc.bucket, Key }));
  const deleted = keys.length;
  await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: loc.bucket, Key: proof }));
  if (loc.mode === 'bucket') await send('DeleteBucket', new s3.DeleteBucketCommand({ Bucket: loc.bucket }));
  return `${deleted} object(s) and the proof of ownership deleted from ${loc.bucket}/${loc.prefix}${loc.mode === 'bucket' ? `, bucket ${loc.bucket} deleted` : ''}`;
}
