/**
 * Where each tenant's storage is, and the deployer's S3 session: what provision and deprovision
 * share about the deployer's storage (its database is `config.database`, a target like any other).
 */
import { type DeployerStorage, pathStyle, type StorageSettings } from '../config/targets.js';
import { openS3, type S3Session } from '../storage/client.js';
import type { StorageLocation } from './storage-owner.js';
import type { TenantSpec } from './tenants.js';

/** --storage-mode: a bucket per tenant, or a folder per tenant in the shared bucket. */
export type StorageMode = 'prefix' | 'bucket';

/** Where the tenants' storage goes: --storage-mode prefix always has its shared bucket. */
export type StorageLayout = { mode: 'bucket' } | { mode: 'prefix'; sharedBucket: string };

/**
 * The layout of `mode`, or undefined when prefix mode has no PROVISION_STORAGE_BUCKET
 * (the caller says why it needs one).
 */
export function storageLayout(sharedBucket: string | undefined, mode: StorageMode): StorageLayout | undefined {
  if (mode === 'bucket') return { mode };
  return sharedBucket ? { mode, sharedBucket } : undefined;
}

/** The deployer's S3 account, its session, and the layout of this run. */
export interface DeployerS3 {
  target: DeployerStorage;
  session: S3Session;
  layout: StorageLayout;
}

export function storageSettingsOf(storage: DeployerStorage, bucket: string, prefix: string | null): StorageSettings {
  return {
    provider: 's3',
    endpoint: storage.endpoint,
    bucket,
    region: storage.region,
    prefix,
    force_path_style: pathStyle(storage.forcePathStyle, storage.endpoint),
  };
}

/** `bucket`: what the session's own failures name (the shared bucket, when there is one). */
export function openProvisionStorage(
  storage: DeployerStorage,
  bucket: string,
  signal: AbortSignal,
): Promise<S3Session> {
  return openS3(storageSettingsOf(storage, bucket, null), storage, signal);
}

export function storageLocation(layout: StorageLayout, spec: TenantSpec): StorageLocation {
  return layout.mode === 'bucket'
    ? { mode: 'bucket', bucket: spec.bucket, prefix: '' }
    : { mode: 'prefix', bucket: layout.sharedBucket, prefix: `${spec.schema}/` };
}

/** The session, with failures naming the tenant's bucket or folder. */
export function locationSession(s3: DeployerS3, loc: StorageLocation): S3Session {
  return { ...s3.session, send: s3.session.sendFor(storageSettingsOf(s3.target, loc.bucket, loc.prefix || null)) };
}
