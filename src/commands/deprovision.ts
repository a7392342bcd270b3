/**
 * `deprovision --tenant NAME --yes`: drops the tenant's schema (with everything in it) and its
 * role. Without --yes it only prints what it would do. Storage is not touched here.
 */
import { parseOptions } from '../cli-options.js';
import { loadProvisionConfig, type ProvisionEnv } from '../config/provision-schema.js';
import { openS3 } from '../storage/client.js';
import { connect } from '../db/connect.js';
import { quoteIdent } from '../db/sql-text.js';
import { ConfigError } from '../errors.js';
import { PROVISION_LOCK } from '../provision/tenant-sql.js';
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
  const o = parseOptions('deprovision', args, { flags: ['--yes', '--purge-storage', '--opaque-names'], values: ['--storage-mode'], repeatable: ['--tenant'] });
  const tenants = o.lists.get('--tenant') ?? [];
  if (tenants.length === 0) throw new ConfigError('deprovision needs --tenant NAME', [], 'name the tenant(s) to remove');
  const storageMode = o.values.get('--storage-mode') ?? 'prefix';
  if (storageMode !== 'prefix' && storageMode !== 'bucket') throw new ConfigError('--storage-mode must be prefix or bucket', [], 'the mode the tenants were provisioned with');
  return { tenants, yes: o.flags.has('--yes'), purgeStorage: o.flags.has('--purge-storage'), storageMode, opaqueNames: o.flags.has('--opaque-names') };
}

export async function deprovision(input: CommandInput, opts: DeprovisionOptions): Promise<number> {
  const specs = tenantSpecs(opts.tenants, undefined, { opaque: opts.opaqueNames });
  const env = loadProvisionConfig(input.env);
  const { database } = env.PROVISION_DATABASE_URL;
  if (opts.purgeStorage && !env.PROVISION_STORAGE_ACCESS_KEY) {
    throw new ConfigError('--purge-storage needs the storage admin keys (PROVISION_STORAGE_ACCESS_KEY, PROVISION_STORAGE_SECRET_KEY)', [], 'set them, or leave the storage alone');
  }
  const storagePlan = specs.map((spec) =>
    !opts.purgeStorage ? 'storage left alone (--purge-storage to delete it)' : opts.storageMode === 'bucket' ? `delete every object of bucket ${spec.bucket}, then the bucket` : `delete every object under ${env.PROVISION_STORAGE_BUCKET}/${spec.schema}/`,
  );
  const plan = specs.map((spec) => [
    `DROP SCHEMA IF EXISTS ${quoteIdent(spec.schema)} CASCADE`,
    `REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(spec.role)}`,
    `DROP ROLE IF EXISTS ${quoteIdent(spec.role)}`,
  ]);
  if (!opts.yes) {
    process.stdout.write(`deprovision (dry run: add --yes to do it) would run on database ${database}:\n${plan.flat().map((s) => `  ${s};`).join('\n')}\nand: ${storagePlan.join('; ')}\n`);
    return 0;
  }
  const db = await connect(
    { DATABASE_URL: env.PROVISION_DATABASE_URL, DATABASE_SSL: false, DATABASE_SSL_CA: undefined, DATABASE_SSL_CA_FILE: undefined, DATABASE_CONNECT_TIMEOUT: env.PROVISION_CONNECT_TIMEOUT },
    input.log,
    input.signal,
  );
  try {
    for (const [i, spec] of specs.entries()) {
      await db.sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${PROVISION_LOCK[0]}, ${PROVISION_LOCK[1]})`;
        const [role] = await tx`select 1 from pg_roles where rolname = ${spec.role}`;
        for (const statement of plan[i]!) {
          if (!role && !statement.startsWith('DROP SCHEMA')) continue; // REVOKE needs the role
          await tx.unsafe(statement);
        }
      });
      input.log.info(`${spec.name}: schema ${spec.schema} and role ${spec.role} removed`, { step: 'deprovision' });
      if (opts.purgeStorage) input.log.info(`${spec.name}: ${await purgeStorage(env, spec, opts.storageMode, input.signal)}`, { step: 'deprovision' });
    }
  } finally {
    await db.sql.end({ timeout: 5 });
  }
  process.stdout.write(`deprovision: ${specs.length} tenant(s) removed\n`);
  return 0;
}

/** Deletes the tenant's objects (its folder, or its whole bucket): only with --purge-storage --yes. */
async function purgeStorage(env: ProvisionEnv, spec: TenantSpec, mode: 'prefix' | 'bucket', signal: AbortSignal): Promise<string> {
  const bucket = mode === 'bucket' ? spec.bucket : env.PROVISION_STORAGE_BUCKET!;
  const prefix = mode === 'bucket' ? undefined : `${spec.schema}/`;
  const settings = { provider: 's3' as const, endpoint: env.PROVISION_STORAGE_ENDPOINT ?? null, bucket, region: env.PROVISION_STORAGE_REGION, prefix: prefix ?? null, force_path_style: env.PROVISION_STORAGE_FORCE_PATH_STYLE ?? env.PROVISION_STORAGE_ENDPOINT !== undefined };
  const { s3, send, client } = await openS3(settings, { accessKeyId: env.PROVISION_STORAGE_ACCESS_KEY!, secretAccessKey: env.PROVISION_STORAGE_SECRET_KEY! }, 10, signal, 'PROVISION_STORAGE');
  try {
    let deleted = 0;
    for (let token: string | undefined; ; ) {
      const page = await send<{ Contents?: Array<{ Key?: string }>; NextContinuationToken?: string }>('ListObjectsV2', new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const { Key } of page.Contents ?? []) {
        await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: bucket, Key: Key! }));
        deleted++;
      }
      token = page.NextContinuationToken;
      if (!token) break;
    }
    if (mode === 'bucket') await send('DeleteBucket', new s3.DeleteBucketCommand({ Bucket: bucket }));
    return `${deleted} object(s) deleted from ${bucket}/${prefix ?? ''}${mode === 'bucket' ? `, bucket ${bucket} deleted` : ''}`;
  } finally {
    client.destroy();
  }
}
