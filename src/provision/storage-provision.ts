/**
 * A tenant's storage, made ready: in prefix mode its folder marker in the shared bucket, in bucket
 * mode its own bucket; then its proof of ownership. Idempotent.
 */
import { ensureFolder } from '../storage/client.js';
import { type DeployerS3, locationSession } from './deployer.js';
import { type LocationState, MARKER_NAME, type Ownership, type StorageLocation, writeMarker } from './storage-owner.js';
import type { TenantSpec } from './tenants.js';

/** `found`: the location as inspected before (assertMayUse accepted it). Returns what was done. */
export async function provisionStorage(
  s3Admin: DeployerS3,
  loc: StorageLocation,
  found: LocationState,
  owner: Ownership,
  spec: TenantSpec,
): Promise<string> {
  const session = locationSession(s3Admin, loc);
  const { s3, send } = session;
  const region = s3Admin.target.region;
  let done: string;
  if (loc.mode === 'prefix') {
    done = await ensureFolder({ bucket: loc.bucket, prefix: loc.prefix }, send, s3);
  } else if (found.exists) {
    done = `bucket ${loc.bucket} present`;
  } else {
    const location =
      region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as never } };
    await send('CreateBucket', new s3.CreateBucketCommand({ Bucket: loc.bucket, ...location }));
    done = `bucket ${loc.bucket} created (bucket names allow no _ nor uppercase: ${spec.name} -> ${loc.bucket})`;
  }
  if (!found.marker) await writeMarker(session, loc, owner);
  return found.marker ? done : `${done}, proof of ownership written (${loc.prefix}${MARKER_NAME})`;
}
