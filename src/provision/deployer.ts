/**
 * What provision and deprovision share about the deployer: its PostgreSQL connection and bounds,
 * its S3 session, and where each tenant's storage is.
 */
import type { ProvisionEnv } from '../config/provision-schema.js';
import type { DatabaseUrl } from '../config/schema.js';
import type { ConnectSettings, SessionBounds } from '../db/connect.js';
import type { StorageSettings } from '../settings.js';
import { openS3, type S3Session } from '../storage/client.js';
import type { StorageLocation } from './storage-owner.js';
import type { TenantSpec } from './tenants.js';

/** A connection from a URL alone: TLS as the URL says (sslmode, sslrootcert), as an instance would. */
export function urlConnectSettings(url: DatabaseUrl, connectTimeoutSec: number): ConnectSettings {
  return {
    DATABASE_URL: url,
    DATABASE_SSL: false,
    DATABASE_SSL_CA: undefined,
    DATABASE_SSL_CA_FILE: undefined,
    DATABASE_CONNECT_TIMEOUT: connectTimeoutSec,
  };
}

/** The deployer's connection: its URL and connect timeout. */
export function deployerConnectSettings(env: ProvisionEnv): ConnectSettings {
  return urlConnectSettings(env.PROVISION_DATABASE_URL, env.PROVISION_CONNECT_TIMEOUT);
}

export function deployerBounds(env: ProvisionEnv): SessionBounds {
  return {
    lockTimeoutSec: env.PROVISION_LOCK_TIMEOUT,
    statementTimeoutSec: env.PROVISION_STATEMENT_TIMEOUT,
    statementVariable: 'PROVISION_STATEMENT_TIMEOUT',
  };
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
  return openS3(
    storageSettingsOf(env, env.PROVISION_STORAGE_BUCKET ?? 'superfasttt', null),
    keys,
    10,
    signal,
    'PROVISION_STORAGE',
  );
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
