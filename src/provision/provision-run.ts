/**
 * A provision run: the tenants and the deployer's environment checked before anything is
 * connected to; then the deployer's rights, the database hardened once (under the provisioning
 * lock), and the tenants provisioned concurrently, each reported as it finishes. The reports come
 * back in the order the tenants were given.
 */
import { loadProvisionConfig } from '../config/provision-schema.js';
import { ConfigError } from '../errors.js';
import { type DeployerS3, openProvisionStorage, storageLayout } from './deployer.js';
import { checkDeployer, warnIfCreateroleIsBroad } from './deployer-rights.js';
import { type RunInput, withDeployer } from './deployer-session.js';
import { assertEnvValues, assertSafeOutDir } from './env-file.js';
import { lockTimeoutAs } from './failures.js';
import { copiedFromDeployer } from './instance-env.js';
import { forEachConcurrently } from './pool.js';
import { provisionOne, type TenantOptions, type TenantReport } from './provision-tenant.js';
import { withRetries } from './retry.js';
import { assertSharedBucket } from './storage-owner.js';
import { DEPLOYER_SCHEMA, hardenDatabase, lockProvisioning, prepareProvisionLock } from './tenant-sql.js';
import { type TenantSpec, tenantSpecs } from './tenants.js';
import type { TenantKeys } from './storage-keys/tenant-key.js';
import type { DeployerConfig } from '../config/targets.js';
import { tenantKeys } from './storage-keys/select.js';

export interface ProvisionOptions extends TenantOptions {
  tenants: string[];
  tenantsFile?: string;
  concurrency: number;
  opaqueNames: boolean;
}

/** What a caller follows of a run: how many tenants it has, then each report as it comes. */
export interface ProvisionWatcher {
  start?(total: number): void;
  tenant?(report: TenantReport): void;
}

export async function runProvision(
  ctx: RunInput,
  opts: ProvisionOptions,
  watch: ProvisionWatcher = {},
): Promise<TenantReport[]> {
  const specs = tenantSpecs(opts.tenants, opts.tenantsFile, {
    opaque: opts.opaqueNames,
    buckets: opts.storageMode === 'bucket',
  });
  const config = loadProvisionConfig(ctx.env);
  const shared = config.sharedBucket;
  const layout = config.storage && storageLayout(shared, opts.storageMode);
  if (config.storage && !layout) {
    throw new ConfigError(
      "PROVISION_STORAGE_BUCKET: is required with --storage-mode prefix (the shared bucket of the tenants' folders)",
      [],
      'set PROVISION_STORAGE_BUCKET, or use --storage-mode bucket',
    );
  }
  const keysMode = opts.storageKeys ?? config.storageKeys.mode;
  if (opts.keyAction !== 'ensure' && keysMode !== 'per-tenant')
    throw new ConfigError(
      `--${opts.keyAction === 'rotate' ? 'rotate-storage-key' : 'revoke-old-storage-keys'} needs per-tenant keys`,
      [],
      'add --storage-keys per-tenant (or set PROVISION_STORAGE_KEYS=per-tenant)',
    );
  if (keysMode === 'per-tenant' && !opts.outDir && (opts.keyAction !== 'ensure' || !opts.json))
    throw new ConfigError(
      'per-tenant storage keys need the .env files: --out-dir DIR' +
        (opts.keyAction === 'ensure' ? ' (or --format json, which then carries the new keys)' : ''),
      [],
      'give --out-dir the directory of the tenants .env files: which key each instance uses is written there',
    );
  // Copied into every tenant's .env: refused now, before anything is created, if a .env reader would change them.
  assertEnvValues(copiedFromDeployer(config, ctx.env), "the deployer's environment");
  if (opts.outDir)
    assertSafeOutDir(
      opts.outDir,
      specs.map((spec) => `${spec.name}.env`),
    );
  const clash = opts.storageMode === 'bucket' ? specs.find((spec) => spec.bucket === shared) : undefined;
  if (clash)
    throw new ConfigError(
      `tenant ${JSON.stringify(clash.name)}: its bucket ${clash.bucket} is PROVISION_STORAGE_BUCKET, the shared ` +
        `bucket of the tenants' folders`,
      [],
      'choose another tenant name, or give the shared bucket a name that does not start with superfasttt-',
    );
  // Refused now (exit 2) when per-tenant keys cannot be issued; closed when the run ends.
  const keys = tenantKeys(config, keysMode, opts.keyAction, ctx.env);
  try {
    watch.start?.(specs.length);
    return await provisionTenants(ctx, opts, config, specs, keys, watch);
  } finally {
    keys?.close();
  }
}

async function provisionTenants(
  ctx: RunInput,
  opts: ProvisionOptions,
  config: DeployerConfig,
  specs: TenantSpec[],
  keys: TenantKeys | undefined,
  watch: ProvisionWatcher,
): Promise<TenantReport[]> {
  const shared = config.sharedBucket;
  const layout = config.storage && storageLayout(shared, opts.storageMode);
  const storage: DeployerS3 | undefined =
    config.storage && layout
      ? {
          target: config.storage,
          layout,
          session: await openProvisionStorage(config.storage, shared ?? 'superfasttt', ctx.signal),
        }
      : undefined;
  if (storage?.layout.mode === 'prefix')
    await assertSharedBucket(storage.session, storage.layout.sharedBucket, 'PROVISION_STORAGE_BUCKET');

  const reports = await withDeployer(config.database, ctx, { max: Math.min(opts.concurrency, 8) }, async (db) => {
    await checkDeployer(db, config.database);
    await prepareProvisionLock(db.sql);
    warnIfCreateroleIsBroad(db, ctx.log);
    // Under the lock: two first runs at once would otherwise collide on the database's ACL (XX000).
    const hardening = await withRetries(() =>
      db.sql.begin(async (tx) => {
        await lockProvisioning(tx);
        return hardenDatabase(tx, config.database.url.database);
      }),
    ).catch(lockTimeoutAs(db.sql, config.database, [DEPLOYER_SCHEMA], 'provision (before any tenant was changed)'));
    for (const statement of hardening) ctx.log.info(`${statement.sql}: ${statement.why}`, { step: 'provision' });

    const done: TenantReport[] = [];
    await forEachConcurrently(specs, opts.concurrency, async (spec) => {
      const report = await provisionOne({ db, storage, config, opts, ctx, keys }, spec);
      done.push(report);
      const line = `${spec.name}: ${report.status}, ${report.message}`;
      if (report.status === 'failed')
        ctx.log.error(line, { step: 'provision', ...(report.fix && { fix: report.fix }) });
      else ctx.log.info(line, { step: 'provision' });
      watch.tenant?.(report);
    });
    return done;
  });
  const order = new Map(specs.map((spec, i) => [spec.name, i]));
  return reports.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
}
