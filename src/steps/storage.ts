/**
 * Storage step: the S3 keys work, the bucket is there, and a probe object written under the
 * tenant's prefix reads back byte for byte and is deleted. The prefix "folder" exists afterwards
 * (an empty marker object named after it is created when missing). Objects already there are
 * never overwritten or deleted: the probe has a random name of its own.
 *
 * Keys limited to the prefix (per-tenant IAM) are often denied HeadBucket: that 403 is
 * inconclusive, and the probe decides.
 */
import { randomBytes } from 'node:crypto';
import { StorageError } from '../errors.js';
import type { StorageSettings, StorageTarget } from '../config/targets.js';
import { ensureFolder, loadS3, openS3, readAtMost, reportFolder, whyAborted } from '../storage/client.js';
import { httpStatus, s3Failure } from '../storage/s3-errors.js';
import { type Done, defineStep, done, type StepContext } from './step.js';

/** A skew the SDK silently corrects would still break the app's own signatures: report it. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** The probe object's size; its read-back stops one byte past it. */
const PROBE_BYTES = 256;

export const storageStep = defineStep({
  name: 'storage',
  errorClass: StorageError,
  needs: {},
  prepare(config) {
    if (config.storage) loadS3().catch(() => {}); // the step awaits it again and reports
  },
  // check writes the probe too (what proves the keys may write), unless --no-write.
  inspect: (ctx) => verify(ctx, { probe: ctx.write, createFolder: false }),
  apply: (ctx) => verify(ctx, { probe: true, createFolder: true }),
});

async function verify(ctx: StepContext, how: { probe: boolean; createFolder: boolean }): Promise<Done<void>> {
  const target = ctx.config.storage;
  if (!target) return done('STORAGE_PROVIDER is not set: storage not checked', undefined);
  return done(await probe(target, ctx.signal, how), undefined);
}

async function probe(target: StorageTarget, signal: AbortSignal, how: { probe: boolean; createFolder: boolean }) {
  const s = target.settings;
  const { s3, client, send, deadline } = await openS3(s, target, signal);
  try {
    const notes: string[] = [];
    const headSignal = deadline();
    try {
      await client.send(new s3.HeadBucketCommand({ Bucket: s.bucket }), { abortSignal: headSignal });
    } catch (error) {
      if (httpStatus(error) !== 403) throw s3Failure(whyAborted(headSignal, error), 'HeadBucket', s, target);
      notes.push('HeadBucket denied (key limited to the prefix?), the probe decided');
    }

    const prefix = s.prefix ?? '';
    const folder = s.prefix ? { bucket: s.bucket, prefix: s.prefix } : undefined;
    if (!how.probe) {
      const state = folder ? `; ${await reportFolder(folder, send, s3)}` : '';
      return (
        `${place(s)}: bucket reachable, write probe skipped ` +
        `(--no-write)${state}${notes.length ? `; ${notes.join('; ')}` : ''}`
      );
    }
    const probeKey = `${prefix}.superfasttt-bootstrap-probe-${randomBytes(8).toString('hex')}`;
    const body = randomBytes(PROBE_BYTES);
    await send(
      'PutObject',
      new s3.PutObjectCommand({
        Bucket: s.bucket,
        Key: probeKey,
        Body: body,
        ContentType: 'application/octet-stream',
      }),
    );
    try {
      const got = await send<{ Body?: AsyncIterable<Uint8Array> & { destroy?(): void } }>(
        'GetObject',
        new s3.GetObjectCommand({ Bucket: s.bucket, Key: probeKey }),
      );
      // At most one byte more than was written is read: a longer body is cut, whatever it says.
      let read: Buffer;
      try {
        read = await readAtMost(got.Body, PROBE_BYTES + 1);
      } catch (error) {
        throw s3Failure(error, 'GetObject', s, target);
      }
      if (read.length > PROBE_BYTES) {
        throw new StorageError(
          `storage: the probe object read back is longer than the ${PROBE_BYTES} bytes written in ` +
            `${s.bucket}/${prefix} (reading stopped there)`,
          'the provider alters uploads; check STORAGE_ENDPOINT and that it is S3-compatible',
        );
      }
      if (!read.equals(body)) {
        throw new StorageError(
          `storage: the probe object read back differs from what was written (${read.length} bytes instead of ` +
            `${body.length}) in ${s.bucket}/${prefix}`,
          'the provider alters uploads; check STORAGE_ENDPOINT and that it is S3-compatible',
        );
      }
    } finally {
      await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: s.bucket, Key: probeKey }));
    }

    if (folder)
      notes.push(how.createFolder ? await ensureFolder(folder, send, s3) : await reportFolder(folder, send, s3));
    const skew = Math.abs((client.config as { systemClockOffset?: number }).systemClockOffset ?? 0);
    if (skew > MAX_CLOCK_SKEW_MS) {
      throw new StorageError(
        `storage: this machine's clock differs from the S3 provider's by ${Math.round(skew / 60_000)} minutes`,
        'synchronise the clock of the node (NTP): signed requests of the app would be refused',
      );
    }
    return `${place(s)}: probe written, read back and deleted${notes.length ? `; ${notes.join('; ')}` : ''}`;
  } finally {
    client.destroy();
  }
}

function place(s: StorageSettings): string {
  return `${s.bucket}${s.prefix ? `/${s.prefix}` : ''} at ${s.endpoint ?? `AWS S3 ${s.region}`}`;
}
