/**
 * The S3 client as every part of the program uses it: loaded lazily, settings that S3-compatible
 * providers need, bounded requests, and one `send` that classifies failures (exit 6).
 */
import { Transform, type Readable } from 'node:stream';
import type { S3Account, StorageSettings } from '../config/targets.js';
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
/**
 * The most the program keeps of one S3 answer's body: a page of ListObjectsV2 (1,000 keys of up to
 * 1,024 bytes) stays under it, an error's XML is a few hundred bytes. More is cut (exit 6), so a
 * hostile or broken endpoint that streams without end cannot fill the memory.
 */
export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

/** The whole of one operation, all its attempts: 3 × timeout + 2 s. */
export function operationDeadlineMs(timeoutSec: number): number {
  return timeoutSec * 1000 * MAX_ATTEMPTS + 2000;
}

/** The reason an operation's signal is aborted with when its deadline passes. */
export class OperationDeadline extends Error {
  override name = 'OperationDeadline';
  constructor(readonly ms: number) {
    super(`the operation did not complete within ${ms / 1000} s`);
  }
}

/** An answer's body went past what it may be: the stream is cut there. */
export class ResponseTooLarge extends Error {
  override name = 'ResponseTooLarge';
  readonly code = 'ERESPONSETOOLARGE';
  constructor(readonly limit: number) {
    super(`the answer's body is longer than ${limit} bytes`);
  }
}

/** The deadline when it is what ended the operation (the SDK's AbortError loses the reason). */
export function whyAborted(signal: AbortSignal, error: unknown): unknown {
  return signal.aborted && signal.reason instanceof OperationDeadline ? signal.reason : error;
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return Object.assign(new Error('Request aborted'), { name: 'AbortError', cause: reason });
}

/**
 * The body as the SDK then reads it: at most `limit` bytes (then the response is destroyed and the
 * reader gets ResponseTooLarge), and ended by the operation's signal even after the headers came,
 * which the SDK's requestTimeout (cleared by the headers) and socketTimeout (idle) do not bound.
 */
function boundedBody(body: Readable, limit: number, signal: AbortSignal | undefined): Readable {
  let seen = 0;
  const declared = Number((body as { headers?: Record<string, string> }).headers?.['content-length']);
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) return callback(new ResponseTooLarge(limit));
      callback(null, chunk);
    },
  });
  const onAbort = () => out.destroy(signal && abortReason(signal));
  const stop = () => {
    signal?.removeEventListener('abort', onAbort);
    body.destroy();
  };
  body.on('error', (error) => out.destroy(error));
  out.on('close', stop);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  // A Content-Length already past the limit is refused before a byte is read.
  if (Number.isFinite(declared) && declared > limit) process.nextTick(() => out.destroy(new ResponseTooLarge(limit)));
  else body.pipe(out);
  return out;
}

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

/** The signal of one operation: the run's, or its deadline passing (aborted with OperationDeadline). */
export function operationSignal(signal: AbortSignal, deadlineMs: number): AbortSignal {
  const timer = new AbortController();
  setTimeout(() => timer.abort(new OperationDeadline(deadlineMs)), deadlineMs).unref();
  return AbortSignal.any([signal, timer.signal]);
}

/** A session of `account` (its keys, timeout and variables), whose failures name `s`'s bucket and folder. */
export async function openS3(s: StorageSettings, account: S3Account, signal: AbortSignal): Promise<S3Session> {
  const { timeoutSec } = account;
  const s3 = await loadS3();
  const timeoutMs = timeoutSec * 1000;
  const client = new s3.S3Client({
    region: s.region,
    ...(s.endpoint && { endpoint: s.endpoint }),
    forcePathStyle: s.force_path_style,
    credentials: account.credentials,
    // S3-compatible providers store the CRC32 framing of aws-chunked bodies as data otherwise.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: MAX_ATTEMPTS,
    // socketTimeout: no byte for that long; requestTimeout: the whole request. Without
    // throwOnRequestTimeout the SDK only prints a warning and waits on.
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  // Every answer's body is bounded in size and by the operation's deadline.
  const handler = client.config.requestHandler as unknown as {
    handle(request: unknown, options?: { abortSignal?: AbortSignal }): Promise<{ response: { body?: unknown } }>;
  };
  const handle = handler.handle.bind(handler);
  handler.handle = async (request, options) => {
    const out = await handle(request, options);
    const body = out.response.body as Readable | undefined;
    if (body && typeof body.pipe === 'function')
      out.response.body = boundedBody(body, MAX_RESPONSE_BYTES, options?.abortSignal);
    return out;
  };
  // The whole of one operation (all its attempts, and reading its answer) has a deadline of its
  // own: requestTimeout ends when the headers come and socketTimeout is an idle timeout, so an
  // endpoint sending one byte a second would trip neither.
  const deadlineMs = operationDeadlineMs(timeoutSec);
  const deadline = () => operationSignal(signal, deadlineMs);
  // The SDK's per-command generics add nothing here.
  const sendFor =
    (target: StorageSettings): Send =>
    async <T>(operation: string, command: object): Promise<T> => {
      const abortSignal = deadline();
      try {
        return (await client.send(command as never, { abortSignal })) as T;
      } catch (error) {
        throw s3Failure(whyAborted(abortSignal, error), operation, target, account);
      }
    };
  return { s3, client, send: sendFor(s), sendFor, deadline };
}

/** A folder in a bucket: its marker is the empty object named after it (`tenant_a/`). */
export interface Folder {
  bucket: string;
  prefix: string;
}

/** Whether the folder's marker object is there. */
export async function folderExists(folder: Folder, send: Send, s3: S3Module): Promise<boolean> {
  try {
    await send('HeadObject', new s3.HeadObjectCommand({ Bucket: folder.bucket, Key: folder.prefix }));
    return true;
  } catch (error) {
    if (!(error instanceof StorageError) || httpStatus((error as { cause?: unknown }).cause) !== 404) throw error;
    return false;
  }
}

/** Creates the folder's marker when missing; says which. */
export async function ensureFolder(folder: Folder, send: Send, s3: S3Module): Promise<string> {
  if (await folderExists(folder, send, s3)) return `folder ${folder.prefix} present`;
  // An explicit empty body and length: the SDK warns about "a stream of unknown length" otherwise.
  await send(
    'PutObject',
    new s3.PutObjectCommand({ Bucket: folder.bucket, Key: folder.prefix, Body: new Uint8Array(0), ContentLength: 0 }),
  );
  return `folder ${folder.prefix} created`;
}

/** check: the folder as the bootstrap would find it (it creates a missing one). */
export async function reportFolder(folder: Folder, send: Send, s3: S3Module): Promise<string> {
  const present = await folderExists(folder, send, s3);
  return present ? `folder ${folder.prefix} present` : `folder ${folder.prefix} missing (the bootstrap creates it)`;
}

/** Reads a body until its end or `max` bytes, then stops reading (the rest is never received). */
export async function readAtMost(
  body: (AsyncIterable<Uint8Array> & { destroy?(): void }) | undefined,
  max: number,
): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk));
      length += chunk.length;
      if (length >= max) break;
    }
  } finally {
    body.destroy?.();
  }
  return Buffer.concat(chunks).subarray(0, max);
}
