/**
 * The S3 client as every part of the program uses it: loaded lazily, settings that S3-compatible
 * providers need, bounded requests, and one `send` that classifies failures (exit 6).
 */
import type { StorageSettings } from '../settings.js';
import { StorageError } from '../errors.js';
import { httpStatus, s3Failure } from './s3-errors.js';

export type S3Module = typeof import('@aws-sdk/client-s3');
export type Send = <T = unknown>(operation: string, command: object) => Promise<T>;

let s3Module: Promise<S3Module> | undefined;

/** Loaded once, on first need (≈70 ms of start-up that runs without storage never pay). */
export function loadS3(): Promise<S3Module> {
  s3Module ??= import('@aws-sdk/client-s3').then((mod) => (mod as S3Module & { default?: S3Module }).default ?? mod);
  return s3Module;
}

export const MAX_ATTEMPTS = 3;

export interface S3Session {
  s3: S3Module;
  client: InstanceType<S3Module['S3Client']>;
  /** Sends one command and turns a failure into a StorageError naming what to check. */
  send: Send;
  /** The same, with failures naming another bucket or prefix (one session, many tenants). */
  sendFor(target: StorageSettings): Send;
  /** The signal of one operation: the run's, or the end of all its attempts. */
  deadline(): AbortSignal;
}

export async function openS3(
  s: StorageSettings,
  keys: { accessKeyId: string; secretAccessKey: string },
  timeoutSec: number,
  signal: AbortSignal,
  /** The variables failures name: the instance's STORAGE_*, or the deployer's PROVISION_STORAGE_*. */
  vars = 'STORAGE',
): Promise<S3Session> {
  const s3 = await loadS3();
  const timeoutMs = timeoutSec * 1000;
  const client = new s3.S3Client({
    region: s.region,
    ...(s.endpoint && { endpoint: s.endpoint }),
    forcePathStyle: s.force_path_style,
    credentials: keys,
    // S3-compatible providers store the CRC32 framing of aws-chunked bodies as data otherwise.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: MAX_ATTEMPTS,
    // socketTimeout: no byte for that long; requestTimeout: the whole request. Without
    // throwOnRequestTimeout the SDK only prints a warning and waits on.
    requestHandler: { connectionTimeout: timeoutMs, socketTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true },
  });
  // Belt and braces: whatever the SDK does, one operation never outlives all its attempts.
  const deadline = () => AbortSignal.any([signal, AbortSignal.timeout(timeoutMs * MAX_ATTEMPTS + 2000)]);
  // The SDK's per-command generics add nothing here.
  const sendFor = (target: StorageSettings): Send => async <T>(operation: string, command: object): Promise<T> => {
    try {
      return (await client.send(command as never, { abortSignal: deadline() })) as T;
    } catch (error) {
      throw s3Failure(error, operation, target, timeoutSec, vars);
    }
  };
  return { s3, client, send: sendFor(s), sendFor, deadline };
}

/** The prefix's folder marker: reports it, and creates it when missing if `create`. */
export async function folderMarker(s: StorageSettings, send: Send, s3: S3Module, create: boolean): Promise<string> {
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
