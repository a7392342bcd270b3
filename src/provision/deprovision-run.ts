/**
 * A deprovision run: the tenants and the deployer's environment checked before anything is
 * connected to; then the dry run's plan, or the tenants removed one after the other, one refused
 * not stopping the others.
 */
import { loadProvisionConfig } from '../config/provision-schema.js';
import type { DeployerConfig, DeployerStorage } from '../config/targets.js';
import { type BootstrapError, ConfigError } from '../errors.js';
import {
  openProvisionStorage,
  type StorageLayout,
  type StorageMode,
  storageLayout,
  storageLocation,
} from './deployer.js';
import { type RunInput, withDeployer } from './deployer-session.js';
import { deprovisionOne, dropStatements } from './deprovision-tenant.js';
import { tenantFailure } from './failures.js';
import { where } from './storage-owner.js';
import { type OpenProvider, openKeyProvider, type StorageKeysMode } from './storage-keys/select.js';
import { prepareProvisionLock } from './tenant-sql.js';
import { type TenantSpec, tenantSpecs } from './tenants.js';

export interface DeprovisionOptions {
  tenants: string[];
  yes: boolean;
  purgeStorage: boolean;
  storageMode: StorageMode;
  opaqueNames: boolean;
  /** --storage-keys, or PROVISION_STORAGE_KEYS: with per-tenant keys, --purge-storage deletes the identities. */
  storageKeys: StorageKeysMode | undefined;
}

/** The tenants and the deployer's environment, once every check that needs no server passed. */
export interface Deprovision {
  config: DeployerConfig;
  specs: TenantSpec[];
  opts: DeprovisionOptions;
  /** With --purge-storage: the deployer's S3 account and where the tenants' storage is. */
  purge: { target: DeployerStorage; layout: StorageLayout } | undefined;
  /** With per-tenant keys: the provider whose identities are deleted (storage purged or not), and their layout. */
  identities: { provider: OpenProvider; layout: StorageLayout } | undefined;
}

export function prepareDeprovision(ctx: RunInput, opts: DeprovisionOptions): Deprovision {
  const specs = tenantSpecs(opts.tenants, undefined, {
    opaque: opts.opaqueNames,
    buckets: opts.storageMode === 'bucket',
  });
  const config = loadProvisionConfig(ctx.env);
  const target = opts.purgeStorage ? config.storage : undefined;
  if (opts.purgeStorage && !target) {
    throw new ConfigError(
      '--purge-storage needs the storage admin keys (PROVISION_STORAGE_ACCESS_KEY, PROVISION_STORAGE_SECRET_KEY)',
      [],
      'set them, or leave the storage alone',
    );
  }
  const perTenant = (opts.storageKeys ?? config.storageKeys.mode) === 'per-tenant';
  const layout = storageLayout(config.sharedBucket, opts.storageMode);
  if ((target || perTenant) && !layout) {
    throw new ConfigError(
      `PROVISION_STORAGE_BUCKET: is required with ${target ? '--purge-storage' : 'per-tenant storage keys'} ` +
        '--storage-mode prefix',
      [],
      'set the shared bucket the tenants were provisioned in',
    );
  }
  const clash = opts.storageMode === 'bucket' ? specs.find((spec) => spec.bucket === config.sharedBucket) : undefined;
  if (clash)
    throw new ConfigError(
      `tenant ${JSON.stringify(clash.name)}: its bucket ${clash.bucket} is PROVISION_STORAGE_BUCKET, the shared ` +
        `bucket of the tenants' folders: nothing was removed`,
      [],
      'check the tenant name and --storage-mode',
    );
  // Refused here (exit 2) when the provider cannot be used; it connects on first use only.
  const provider = perTenant ? openKeyProvider(config, 'per-tenant', ctx.env) : undefined;
  return {
    config,
    specs,
    opts,
    purge: target && layout ? { target, layout } : undefined,
    identities: provider && layout ? { provider, layout } : undefined,
  };
}

/** The dry run: what would be run for each tenant, one line each. */
export function deprovisionPlan({ config, specs, purge, identities }: Deprovision): string[] {
  const { database } = config.database.url;
  return specs.flatMap((spec) => [
    ...dropStatements(spec, database).map((s) => `${s};`),
    purge
      ? `${where(storageLocation(purge.layout, spec))}: every object ` +
        `deleted, if it carries this tenant's proof of ownership`
      : 'storage left alone (--purge-storage to delete it)',
    ...(identities
      ? [
          `storage identity ${spec.schema} and its keys deleted (${identities.provider.name})` +
            (purge ? ', once that proof matched' : ''),
        ]
      : []),
  ]);
}

export interface DeprovisionResult {
  removed: number;
  notFound: number;
  failures: BootstrapError[];
}

export async function runDeprovision(
  ctx: RunInput,
  { config, specs, purge, identities }: Deprovision,
): Promise<DeprovisionResult> {
  const result: DeprovisionResult = { removed: 0, notFound: 0, failures: [] };
  await withDeployer(config.database, ctx, {}, async (db) => {
    const storage = purge && {
      ...purge,
      session: await openProvisionStorage(purge.target, config.sharedBucket ?? 'superfasttt', ctx.signal),
    };
    try {
      await prepareProvisionLock(db.sql);
      for (const spec of specs) {
        try {
          const done = await deprovisionOne(db.sql, storage, config, spec, { identities, signal: ctx.signal });
          if (done.startsWith('nothing')) result.notFound++;
          else result.removed++;
          ctx.log.info(`${spec.name}: ${done}`, { step: 'deprovision' });
        } catch (error) {
          const e = tenantFailure(spec, error);
          result.failures.push(e);
          ctx.log.error(`${spec.name}: ${e.message}`, {
            step: 'deprovision',
            ...(e.fix && { fix: e.fix }),
            exit_code: e.exitCode,
          });
        }
      }
    } finally {
      storage?.session.client.destroy();
      identities?.provider.close();
    }
  });
  return result;
}
