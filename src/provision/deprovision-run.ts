/**
 * A deprovision run: the tenants and the deployer's environment checked before anything is
 * connected to; then the dry run's plan, or the tenants removed one after the other, one refused
 * not stopping the others.
 */
import { loadProvisionConfig, type ProvisionEnv } from '../config/provision-schema.js';
import { type BootstrapError, ConfigError } from '../errors.js';
import { openProvisionStorage, storageLocation } from './deployer.js';
import { type RunInput, withDeployer } from './deployer-session.js';
import { deprovisionOne, dropStatements } from './deprovision-tenant.js';
import { tenantFailure } from './failures.js';
import { where } from './storage-owner.js';
import { prepareProvisionLock } from './tenant-sql.js';
import { type TenantSpec, tenantSpecs } from './tenants.js';

export interface DeprovisionOptions {
  tenants: string[];
  yes: boolean;
  purgeStorage: boolean;
  storageMode: 'prefix' | 'bucket';
  opaqueNames: boolean;
}

/** The tenants and the deployer's environment, once every check that needs no server passed. */
export interface Deprovision {
  env: ProvisionEnv;
  specs: TenantSpec[];
  opts: DeprovisionOptions;
}

export function prepareDeprovision(ctx: RunInput, opts: DeprovisionOptions): Deprovision {
  const specs = tenantSpecs(opts.tenants, undefined, {
    opaque: opts.opaqueNames,
    buckets: opts.storageMode === 'bucket',
  });
  const env = loadProvisionConfig(ctx.env);
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
  return { env, specs, opts };
}

/** The dry run: what would be run for each tenant, one line each. */
export function deprovisionPlan({ env, specs, opts }: Deprovision): string[] {
  const { database } = env.PROVISION_DATABASE_URL;
  return specs.flatMap((spec) => [
    ...dropStatements(spec, database).map((s) => `${s};`),
    opts.purgeStorage
      ? `${where(storageLocation(env, spec, opts.storageMode))}: every object deleted, if it carries this tenant's proof of ownership`
      : 'storage left alone (--purge-storage to delete it)',
  ]);
}

export interface DeprovisionResult {
  removed: number;
  notFound: number;
  failures: BootstrapError[];
}

export async function runDeprovision(ctx: RunInput, { env, specs, opts }: Deprovision): Promise<DeprovisionResult> {
  const result: DeprovisionResult = { removed: 0, notFound: 0, failures: [] };
  await withDeployer(env, ctx, {}, async (db) => {
    const storage = opts.purgeStorage ? await openProvisionStorage(env, ctx.signal) : undefined;
    try {
      await prepareProvisionLock(db.sql);
      for (const spec of specs) {
        try {
          const done = await deprovisionOne(db.sql, storage, env, spec, opts.storageMode);
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
      storage?.client.destroy();
    }
  });
  return result;
}
