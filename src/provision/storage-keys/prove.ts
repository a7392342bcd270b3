/**
 * Proof that a new per-tenant storage key (issue 14) does what the instance needs, and nothing more,
 * before it is written into the tenant's .env. With that key only:
 *
 * - the bootstrap's probe: a random object written under the tenant's folder (or at the root of its
 *   own bucket), read back byte for byte, deleted. New IAM keys take a few seconds to work everywhere
 *   in AWS: while the answer is a 403, the probe is retried with backoff, within `settleMs`;
 * - refusals outside the scope, each required to be a 403 AccessDenied (never retried: one answer
 *   that reaches is enough). Prefix mode: a write and a listing of a neighbour folder of the same
 *   bucket, a listing of the bucket's root; bucket mode: a listing of and a write into another bucket
 *   (the shared one when given). Both modes: ListBuckets.
 *
 * A key that does not work, or reaches too far, is a StorageError (exit 6): it is not handed to the
 * instance.
 */
import { randomBytes } from 'node:crypto';
import type { S3Credentials, StorageSettings, StorageVariables } from '../../config/targets.js';
import { StorageError } from '../../errors.js';
import { openS3, readAtMost, type S3Session, whyAborted } from '../../storage/client.js';
import { httpStatus, s3Failure } from '../../storage/s3-errors.js';
import type { KeyScope } from './provider.js';

/** Where the key is used: the deployer's endpoint and region (what the tenant's .env receives). */
export interface ProveTarget {
  endpoint: string | null;
  region: string;
  forcePathStyle: boolean;
  /** An existing bucket the key must not reach in bucket mode (the shared bucket); `<bucket>-neighbour` if unset. */
  neighbourBucket?: string;
}

export interface ProveOptions {
  /** Each request's timeout (s). */
  timeoutSec?: number;
  /** How long a new key may take to work (ms): 15 s by default, for AWS's propagation. */
  settleMs?: number;
  /** What the key is, in messages: 'new key' (the default) or 'key of the .env'. */
  label?: string;
}

const PROBE_BYTES = 256;
const DEFAULT_SETTLE_MS = 15_000;
const FIRST_RETRY_MS = 250;

const hex = () => randomBytes(8).toString('hex');
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** The write, read-back and delete of one probe object; throws StorageError. */
async function probeOnce(session: S3Session, s: StorageSettings, scope: KeyScope, label: string): Promise<void> {
  const { s3, send } = session;
  const key = `${scope.prefix}.superfasttt-key-probe-${hex()}`;
  const body = randomBytes(PROBE_BYTES);
  await send(
    'PutObject',
    new s3.PutObjectCommand({ Bucket: s.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }),
  );
  try {
    const got = await send<{ Body?: AsyncIterable<Uint8Array> & { destroy?(): void } }>(
      'GetObject',
      new s3.GetObjectCommand({ Bucket: s.bucket, Key: key }),
    );
    const read = await readAtMost(got.Body, PROBE_BYTES + 1);
    if (!read.equals(body)) {
      throw new StorageError(
        `storage keys: the probe object written with the ${label} of ${scope.tenant} reads back different ` +
          `(${read.length}${read.length > PROBE_BYTES ? '+' : ''} bytes instead of ${PROBE_BYTES}) in ${s.bucket}/` +
          scope.prefix,
        'the provider alters uploads; check PROVISION_STORAGE_ENDPOINT and that it is S3-compatible',
      );
    }
  } finally {
    await send('DeleteObject', new s3.DeleteObjectCommand({ Bucket: s.bucket, Key: key }));
  }
}

type Verdict = 'refused' | 'absent' | 'reached';

/**
 * Proves `key` on `scope` (see the module's comment); returns a one-line summary. `signal` ends it
 * early; every request is bounded besides.
 */
export async function proveKey(
  key: S3Credentials,
  scope: KeyScope,
  target: ProveTarget,
  signal: AbortSignal,
  options: ProveOptions = {},
): Promise<string> {
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  const label = options.label ?? 'new key';
  const where = scope.mode === 'prefix' ? `${scope.bucket}/${scope.prefix}` : `bucket ${scope.bucket}`;
  const vars: StorageVariables = {
    endpoint: 'PROVISION_STORAGE_ENDPOINT',
    bucket: scope.mode === 'prefix' ? 'PROVISION_STORAGE_BUCKET' : `the bucket of ${scope.tenant}`,
    region: 'PROVISION_STORAGE_REGION',
    accessKey: `the access key (${label}) of ${scope.tenant}`,
    secretKey: `the secret key (${label}) of ${scope.tenant}`,
  };
  const account = { credentials: key, timeoutSec: options.timeoutSec ?? 10, vars };
  const settings = (bucket: string, prefix: string | null): StorageSettings => ({
    provider: 's3',
    endpoint: target.endpoint,
    bucket,
    region: target.region,
    prefix,
    force_path_style: target.forcePathStyle,
  });
  const own = settings(scope.bucket, scope.prefix || null);
  const session = await openS3(own, account, signal);
  try {
    // 1. The probe, retried while the new key is not yet known everywhere (403), within settleMs.
    const started = Date.now();
    let attempts = 0;
    for (let wait = FIRST_RETRY_MS; ; wait *= 2) {
      attempts++;
      try {
        await probeOnce(session, own, scope, label);
        break;
      } catch (error) {
        const status = httpStatus((error as { cause?: unknown }).cause);
        const left = settleMs - (Date.now() - started);
        if (status !== 403 || left <= 0 || signal.aborted) {
          if (!(error instanceof StorageError)) throw error;
          const seconds = Math.round((Date.now() - started) / 100) / 10;
          throw new StorageError(
            `storage keys: the ${label} of ${scope.tenant} does not work on ${where}` +
              `${attempts > 1 ? ` (${attempts} attempts over ${seconds} s)` : ''}` +
              `; ${error.message}`,
            error.fix,
            { cause: error },
          );
        }
        await sleep(Math.min(wait, left), signal);
      }
    }

    // 2. The refusals: one request each, never retried.
    const { s3, client, deadline } = session;
    const check = async (operation: string, s: StorageSettings, command: object): Promise<Verdict> => {
      const abortSignal = deadline();
      try {
        await client.send(command as never, { abortSignal });
        return 'reached';
      } catch (error) {
        const e = error as { name?: string; Code?: string };
        const code = e.Code ?? e.name ?? '';
        const status = httpStatus(error);
        if (status === 403 && (code === 'AccessDenied' || code === 'Unknown' || code === '')) return 'refused';
        if (status === 404 && code === 'NoSuchBucket') return 'absent';
        throw s3Failure(whyAborted(abortSignal, error), operation, s, account);
      }
    };
    const outside: Array<{ what: string; verdict: Verdict; cleanup?: () => Promise<unknown> }> = [];
    const listBuckets = await check('ListBuckets', own, new s3.ListBucketsCommand({}));
    if (scope.mode === 'prefix') {
      const neighbour = `superfasttt-probe-${hex()}/`;
      const planted = `${neighbour}.superfasttt-key-probe`;
      const put = await check(
        'PutObject',
        settings(scope.bucket, neighbour),
        new s3.PutObjectCommand({ Bucket: scope.bucket, Key: planted, Body: new Uint8Array(1), ContentLength: 1 }),
      );
      outside.push({
        what: `PutObject ${scope.bucket}/${planted}`,
        verdict: put,
        cleanup: () => client.send(new s3.DeleteObjectCommand({ Bucket: scope.bucket, Key: planted })),
      });
      const listNeighbour = await check(
        'ListObjectsV2',
        settings(scope.bucket, neighbour),
        new s3.ListObjectsV2Command({ Bucket: scope.bucket, Prefix: neighbour }),
      );
      outside.push({ what: `ListObjectsV2 ${scope.bucket}/${neighbour}`, verdict: listNeighbour });
      const listRoot = await check(
        'ListObjectsV2',
        settings(scope.bucket, null),
        new s3.ListObjectsV2Command({ Bucket: scope.bucket }),
      );
      outside.push({ what: `ListObjectsV2 of the root of ${scope.bucket}`, verdict: listRoot });
    } else {
      const other = target.neighbourBucket ?? `${scope.bucket.slice(0, 53)}-neighbour`;
      const planted = `.superfasttt-key-probe-${hex()}`;
      const list = await check('ListObjectsV2', settings(other, null), new s3.ListObjectsV2Command({ Bucket: other }));
      outside.push({ what: `ListObjectsV2 of bucket ${other}`, verdict: list });
      const put = await check(
        'PutObject',
        settings(other, null),
        new s3.PutObjectCommand({ Bucket: other, Key: planted, Body: new Uint8Array(1), ContentLength: 1 }),
      );
      outside.push({
        what: `PutObject ${other}/${planted}`,
        verdict: put,
        cleanup: () => client.send(new s3.DeleteObjectCommand({ Bucket: other, Key: planted })),
      });
    }
    outside.push({ what: 'ListBuckets', verdict: listBuckets });

    const reached = outside.filter((o) => o.verdict === 'reached');
    if (reached.length > 0) {
      for (const o of reached) await o.cleanup?.().catch(() => {});
      throw new StorageError(
        `storage keys: the ${label} of ${scope.tenant} reaches outside ${where}: ` +
          `${reached.map((o) => o.what).join(', ')} allowed; refusing to give it to the instance`,
        `the identity of ${scope.tenant} must hold only provision's policy: remove any other policy, group or ` +
          'permission boundary that widens it (and any bucket policy granting it more), then run provision again',
      );
    }
    const absent = outside.filter((o) => o.verdict === 'absent').map((o) => o.what);
    return (
      `${label} ${key.accessKeyId} of ${scope.tenant}: probe written, read back and deleted in ${where}` +
      `${attempts > 1 ? ` (after ${attempts} attempts)` : ''}; refused outside it ` +
      `(${outside
        .filter((o) => o.verdict === 'refused')
        .map((o) => o.what)
        .join(', ')})` +
      (absent.length ? `; not proven: ${absent.join(', ')} (no such bucket)` : '')
    );
  } finally {
    session.client.destroy();
  }
}
