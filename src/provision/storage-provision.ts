/**
 * A tenant's storage, made ready: in prefix mode its folder marker in the shared bucket, in bucket
 * mode its own bucket; then its proof of ownership. Idempotent.
 */
import type { ProvisionEnv } from '../config/provision-schema.js';
import { folderMarker, type S3Session } from '../storage/client.js';
import { locationSession, storageSettingsOf } from './deployer.js';
import { type LocationState, MARKER_NAME, type Ownership, type StorageLocation, writeMarker } from './storage-owner.js';
import type { TenantSpec } from './tenants.js';

/** `found`: the location as inspected before (assertMayUse accepted it). Returns what was done. */
export async function provisionStorage(
  shared: S3Session,
  env: ProvisionEnv,
  loc: StorageLocation,
  found: LocationState,
  owner: Ownership,
  spec: TenantSpec,
): Promise<string> {
  const session = locationSession(shared, env, loc);
  const { s3, send } = session;
  let done: string;
  if (loc.mode === 'prefix') {
    done = await folderMarker(storageSettingsOf(env, loc.bucket, loc.prefix), send, s3, true);
  } else if (found.exists) {
    done = `bucket ${loc.bucket} present`;
  } else {
    const location =
      env.PROVISION_STORAGE_REGION === 'us-east-1'
        ? {}
        : { CreateBucketConfiguration: { LocationConstraint: env.PROVISION_STORAGE_REGION as never } };
    await send('CreateBucket', new s3.CreateBucketCommand({ Bucket: loc.bucket, ...location }));
    done = `bucket ${loc.bucket} created (bucket names allow no _ nor uppercase: ${spec.name} -> ${loc.bucket})`;
  }
  if (!found.marker) await writeMarker(session, loc, owner);
  return found.marker ? done : `${done}, proof of ownership written (${loc.prefix}${MARKER_NAME})`;
}
