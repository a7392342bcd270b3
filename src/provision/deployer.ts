/**
 * What provision and deprovision share about the deployer: its PostgreSQL connection and bounds,
 * its S3 session, and where each tenant's storage is.
 */
import type { ProvisionEnv } from '../config/provision-schema.js';
import {
  type DatabaseTarget,
  DEPLOYER_DATABASE_VARIABLES,
  DEPLOYER_STORAGE_VARIABLES,
  type StorageSettings,
  urlDatabaseTarget,
} from '../config/targets.js';
import type { SessionBounds } from '../db/connect.js';
import { openS3, type S3Session } from '../storage/client.js';
import type { StorageLocation } from './storage-owner.js';
import type { TenantSpec } from './tenants.js';

/** The deployer's database: its URL (TLS as the URL says), its timeouts, its PROVISION_* variables. */
export function deployerConnectSettings(env: ProvisionEnv): DatabaseTarget {
  return urlDatabaseTarget(env.PROVISION_DATABASE_URL, deployerLimits(env), DEPLOYER_DATABASE_VARIABLES);
}

export function deployerBounds(env: ProvisionEnv): SessionBounds {
  return { lockTimeoutSec: env.PROVISION_LOCK_TIMEOUT, statementTimeoutSec: env.PROVISION_STATEMENT_TIMEOUT };
}

function deployerLimits(env: ProvisionEnv) {
  return { connectTimeoutSec: env.PROVISION_CONNECT_TIMEOUT, ...deployerBounds(env) };
}

export function storageSettingsOf(env: ProvisionEnv, bucket: string, prefix: string | null): StorageSettings {
  return {
    provider: 's3',
    endpoint: env.PROVISION_STORAGE_ENDPOINT ?? null,
    bucket,
    region: env.PROVISION_STORAGE_REGION,
    prefix,
    force_path_style: env.PROVISION_STORAGE_FORCE_PATH_STYLE ?? env.PROVISION_STORAGE_ENDPOINT !== undefined,
  };
}

export function openProvisionStorage(env: ProvisionEnv, signal: AbortSignal): Promise<S3Session> {
  const keys = { accessKeyId: env.PROVISION_STORAGE_ACCESS_KEY!, secretAccessKey: env.PROVISION_STORAGE_SECRET_KEY! };
  // The deployment machine's requests have no timeout variable: 10 s each.
  const account = { credentials: keys, timeoutSec: 10, vars: DEPLOYER_STORAGE_VARIABLES };
  return openS3(storageSettingsOf(env, env.PROVISION_STORAGE_BUCKET ?? 'superfasttt', null), account, signal);
}

export function storageLocation(env: ProvisionEnv, spec: TenantSpec, mode: 'prefix' | 'bucket'): StorageLocation {
  return mode === 'bucket'
    ? { mode, bucket: spec.bucket, prefix: '' }
    : { mode, bucket: env.PROVISION_STORAGE_BUCKET!, prefix: `${spec.schema}/` };
}

/** The session, with failures naming the tenant's bucket or folder. */
export function locationSession(session: S3Session, env: ProvisionEnv, loc: StorageLocation): S3Session {
  return { ...session, send: session.sendFor(storageSettingsOf(env, loc.bucket, loc.prefix || null)) };
}
