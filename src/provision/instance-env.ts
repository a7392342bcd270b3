/**
 * A tenant's .env: everything its instance needs to bootstrap with SKIP_SETUP=true. Its database
 * URL is the deployer's with the tenant's role and password; its storage is the tenant's folder
 * or bucket; the deployer's email settings, when it has them, are every instance's.
 */
import { fieldDoc, VARIABLES } from '../config/load.js';
import type { DeployerConfig, DeployerStorage, S3Credentials } from '../config/targets.js';
import { parseEnv } from 'node:util';
import { type StorageLayout, storageLocation } from './deployer.js';
import { renderEnv } from './env-file.js';
import { generatePassword } from './scram.js';
import type { TenantSpec } from './tenants.js';

/** The schema's email variables (provider, sender, SMTP or SendGrid, timeout): the deployer's are every instance's. */
const EMAIL_KEYS = VARIABLES.filter((name) => fieldDoc(name).group === 'email');

/** The deployer's values copied into every tenant's .env (to be checked before anything is created). */
export function copiedFromDeployer(
  config: DeployerConfig,
  deployerEnv: NodeJS.ProcessEnv,
): Record<string, string | undefined> {
  const storage = config.storage;
  return {
    ...Object.fromEntries(EMAIL_KEYS.map((key) => [key, deployerEnv[key] || undefined])),
    PROVISION_STORAGE_ENDPOINT: storage?.endpoint ?? undefined,
    PROVISION_STORAGE_ACCESS_KEY: storage?.credentials.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: storage?.credentials.secretAccessKey,
  };
}

/** `layout`: undefined when the deployer has no storage keys (the instance then gets no storage). */
export function instanceEnv(
  config: DeployerConfig,
  spec: TenantSpec,
  password: string,
  deployerEnv: NodeJS.ProcessEnv,
  layout: StorageLayout | undefined,
  /** The tenant's own key (per-tenant keys); unset: the tenants file's, else the deployer's. */
  storageKey?: S3Credentials,
): Record<string, string> {
  const { host, port, database, sslmode, sslrootcert } = config.database.url;
  const url = new URL(`postgres://${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(database)}`);
  url.username = spec.role;
  url.password = password;
  if (sslmode) url.searchParams.set('sslmode', sslmode);
  if (sslrootcert) url.searchParams.set('sslrootcert', sslrootcert);
  const out: Record<string, string | undefined> = {
    SKIP_SETUP: 'true',
    DATABASE_URL: url.toString(),
    DATABASE_SCHEMA: spec.schema,
    AUTO_SUPERADMIN_EMAIL: spec.admin.email ?? '',
    AUTO_SUPERADMIN_FIRSTNAME: spec.admin.firstName ?? '',
    AUTO_SUPERADMIN_LASTNAME: spec.admin.lastName ?? '',
    AUTO_SUPERADMIN_PHONE: spec.admin.phone,
    AUTO_SUPERADMIN_PASSWORD: generatePassword(18),
  };
  const storage = config.storage;
  if (storage && layout) {
    const fromFile = spec.s3 && { accessKeyId: spec.s3.accessKey, secretAccessKey: spec.s3.secretKey };
    Object.assign(out, storageEnv(storage, layout, spec, fromFile ?? storageKey ?? storage.credentials));
  }
  for (const key of EMAIL_KEYS) if (deployerEnv[key]) out[key] = deployerEnv[key];
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The STORAGE_* variables of the tenant's .env: its folder or bucket, and `key`. */
function storageEnv(
  storage: DeployerStorage,
  layout: StorageLayout,
  spec: TenantSpec,
  key: S3Credentials,
): Record<string, string | undefined> {
  const { endpoint, region, forcePathStyle } = storage;
  const location = storageLocation(layout, spec);
  return {
    STORAGE_PROVIDER: 's3',
    STORAGE_ENDPOINT: endpoint ?? undefined,
    STORAGE_SECURE: endpoint?.startsWith('http:') ? 'false' : undefined,
    STORAGE_REGION: region,
    STORAGE_BUCKET: location.bucket,
    STORAGE_PREFIX: location.prefix || undefined,
    STORAGE_FORCE_PATH_STYLE: forcePathStyle === undefined ? undefined : String(forcePathStyle),
    STORAGE_ACCESS_KEY: key.accessKeyId,
    STORAGE_SECRET_KEY: key.secretAccessKey,
  };
}

/** The storage key an existing .env holds, if it holds one. */
export function envStorageKey(envText: string): S3Credentials | undefined {
  const values = parseEnv(envText);
  const accessKeyId = values.STORAGE_ACCESS_KEY;
  const secretAccessKey = values.STORAGE_SECRET_KEY;
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}

/**
 * An existing .env with its storage variables replaced (its own key): every other value, the
 * database password first, is kept as it is; comments other than the header are not.
 */
export function withStorageKey(
  envText: string,
  storage: DeployerStorage,
  layout: StorageLayout,
  spec: TenantSpec,
  key: S3Credentials,
): string {
  const kept = Object.entries(parseEnv(envText)).filter(([name]) => !name.startsWith('STORAGE_'));
  return renderInstanceEnv(spec, { ...Object.fromEntries(kept), ...storageEnv(storage, layout, spec, key) });
}

/** The .env file's text, headed by what it is. */
export function renderInstanceEnv(spec: TenantSpec, values: Record<string, string | undefined>): string {
  return renderEnv(values, [
    `superfasttt instance ${spec.name}: generated by ` +
      `superfasttt-bootstrap provision. Secret: mode 0600, never commit it.`,
  ]);
}
