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
import { storageSettings, type StorageSettings } from '../settings.js';
import { httpStatus, s3Failure } from '../storage/s3-errors.js';
import type { Step } from './step.js';

type S3Module = typeof import('@aws-sdk/client-s3');

let s3Module: Promise<S3Module> | undefined;

/** Loaded once, on first need (≈70 ms of start-up that runs without storage never pay). */
function loadS3(): Promise<S3Module> {
  s3Module ??= import('@aws-sdk/client-s3').then((mod) => (mod as S3Module & { default?: S3Module }).default ?? mod);
  return s3Module;
}

const MAX_ATTEMPTS = 3;

/** A skew the SDK silently corrects would still break the app's own signatures: report it. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export const storageStep: Step = {
  name: 'storage',
  errorClass: StorageError,
  prepare(env) {
    if (storageSettings(env)) loadS3().catch(() => {}); // run() awaits it again and reports
  },
  async run(ctx) {
    const s = storageSettings(ctx.env);
    if (!s) return 'STORAGE_PROVIDER is not set: storage not checked';
    const env = ctx.env;
    const s3 = await loadS3();
    const timeoutMs = env.STORAGE_TIMEOUT * 1000;
    const client = new s3.S3Client({
      region: s.region,
      ...(s.endpoint && { endpoint: s.endpoint }),
      forcePathStyle: s.force_path_style,
      credentials: { accessKeyId: env.STORAGE_ACCESS_KEY!, secretAccessKey: env.STORAGE_SECRET_KEY! },
      // S3-compatible providers store the CRC32 framing of aws-chunked bodies as data otherwise.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: MAX_ATTEMPTS,
      // socketTimeout: no byte for that long; requestTimeout: the whole request. Without
      // throwOnRequestTimeout the SDK only prints a warning and waits on.
      requestHandler: { connectionTimeout: timeoutMs, socketTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true },
    });
    // Belt and braces: whatever the SDK does, one operation never outlives all its attempts.
    const deadline = () => AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs * MAX_ATTEMPTS + 2000)]);
    // One place that sends and classifies; the SDK's per-command generics add nothing here.
    const send: Send = async <T>(operation: string, command: object): Promise<T> => {
      try {
        return (await client.send(command as never, { abortSignal: deadline() })) as T;
      } catch (error) {
        throw s3Failure(error, operation, s, env.STORAGE_TIMEOUT);
      }
    };

    try {
      const notes: string[] = [];
      try {
        await client.send(new s3.HeadBucketCommand({ Bucket: s.bucket }), { abortSignal: deadline() });
      } catch (error) {
        if (httpStatus(error) !== 403) throw s3Failure(error, 'HeadBucket', s, env.STORAGE_TIMEOUT);
        notes.push('HeadBucket denied (key limited to the prefix?), the probe decided');
      }

      const prefix = s.prefix ?? '';
      if (ctx.mode === 'check' && !ctx.storageProbe) {
        const folder = s.prefix ? `; ${await folderMarker(s, send, s3, false)}` : '';
        return `${place(s)}: bucket reachable, write probe skipped (--no-write)${folder}${notes.length ? `; ${notes.join('; ')}` : ''}`;
      }
      const probeKey = `${prefix}.superfasttt-bootstrap-probe-${randomBytes(8).toString('hex')}`;
      const body = randomBytes(256);
      await send('PutObject', new s3.PutObjectCommand({ Bucket: s.bucket, Key: probeKey, Body: body, ContentType: 'application/octet-stream' }));
      try {
        const got = await send<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }>('GetObject', new s3.GetObjectCommand({ Bucket: s.bucket, Key: probeKey }));
        const read = Buffer.from((await got.Body?.transformToByteArray()) ?? []);
        if (!read.equals(body)) {
          throw new StorageError(
            `storage: the probe object read back differs from what was written (${read.length} bytes instead of ${body.length}) in ${s.bucket}/${prefix}`,
            'the provider alters uploads; check STORAGE_ENDPOINT and that it is S3-compatible',
          );
        }
      } finally {
        await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: s.bucket, Key: probeKey }));
      }

      if (s.prefix) notes.push(await folderMarker(s, send, s3, ctx.mode === 'apply'));
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
  },
};

type Send = <T = unknown>(operation: string, command: object) => Promise<T>;

function place(s: StorageSettings): string {
  return `${s.bucket}${s.prefix ? `/${s.prefix}` : ''} at ${s.endpoint ?? `AWS S3 ${s.region}`}`;
}

/** The prefix's folder marker: reports it, and creates it when missing if `create`. */
async function folderMarker(s: StorageSettings, send: Send, s3: S3Module, create: boolean): Promise<string> {
  const key = s.prefix!;
  try {
    await send('HeadObject', new s3.HeadObjectCommand({ Bucket: s.bucket, Key: key }));
    return `folder ${key} present`;
  } catch (error) {
    if (!(error instanceof StorageError) || httpStatus((error as { cause?: unknown }).cause) !== 404) throw error;
  }
  if (!create) return `folder ${key} missing (the bootstrap creates it)`;
  // An explicit empty body and length: the SDK warns about "a stream of unknown length" otherwise.
  await send('PutObject', new s3.PutObjectCommand({ Bucket: s.bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0 }));
  return `folder ${key} created`;
}
