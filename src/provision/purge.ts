/**
 * Deletes a tenant's storage (deprovision --purge-storage --yes, once its proof of ownership was
 * found to match): its objects, its proof last (so an interrupted purge can be run again), then
 * its bucket in bucket mode.
 */
import { SchemaError } from '../errors.js';
import type { S3Session } from '../storage/client.js';
import { MARKER_NAME, type StorageLocation, where } from './storage-owner.js';

export async function purgeStorage(session: S3Session, loc: StorageLocation): Promise<string> {
  const { s3, send } = session;
  const proof = loc.prefix + MARKER_NAME;
  const keys: string[] = [];
  // 200 keys a page: a page of 1000 long, escaped keys could pass the 2 MiB a response may hold.
  for (let token: string | undefined; ; ) {
    const page = await send<{ Contents?: Array<{ Key?: string }>; NextContinuationToken?: string }>(
      'ListObjectsV2',
      new s3.ListObjectsV2Command({
        Bucket: loc.bucket,
        Prefix: loc.prefix || undefined,
        ContinuationToken: token,
        MaxKeys: 200,
      }),
    );
    for (const { Key } of page.Contents ?? []) if (Key !== undefined && Key !== proof) keys.push(Key);
    token = page.NextContinuationToken;
    if (!token) break;
  }
  // Listed whole before anything is deleted: a tenant's bucket that also holds other tenants'
  // folders (their proofs) is not this tenant's alone.
  const others = keys.filter((key) => key.endsWith(`/${MARKER_NAME}`));
  if (others.length > 0) {
    throw new SchemaError(
      `${where(loc)} also holds the folders of other tenants ` +
        `(${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''}): nothing was removed`,
      "move those tenants' folders out of this bucket first",
    );
  }
  for (const Key of keys) await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: loc.bucket, Key }));
  const deleted = keys.length;
  await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: loc.bucket, Key: proof }));
  if (loc.mode === 'bucket') await send('DeleteBucket', new s3.DeleteBucketCommand({ Bucket: loc.bucket }));
  return (
    `${deleted} object(s) and the proof of ownership deleted from ` +
    `${loc.bucket}/${loc.prefix}${loc.mode === 'bucket' ? `, bucket ${loc.bucket} deleted` : ''}`
  );
}
