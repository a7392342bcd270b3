/**
 * Turns an AWS SDK error into a StorageError that names the variable to check. Classified by S3
 * error code when the answer has a body, by HTTP status when not (HEAD answers have none), and by
 * socket error code when nothing was answered.
 */
import { StorageError } from '../errors.js';
import type { S3Account, StorageSettings } from '../config/targets.js';
import { isTlsFailure } from '../tls-failure.js';

/** The IAM permission each operation needs, for "access denied" messages. */
export const PERMISSION: Record<string, string> = {
  HeadBucket: 's3:ListBucket',
  PutObject: 's3:PutObject',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  DeleteObject: 's3:DeleteObject',
};

/** What a permission is granted on: the bucket itself for s3:ListBucket, its objects (under the prefix) otherwise. */
function resourceOf(operation: string, s: StorageSettings): string {
  return PERMISSION[operation] === 's3:ListBucket'
    ? `arn:aws:s3:::${s.bucket}${s.prefix ? ` (s3:prefix ${s.prefix})` : ''}`
    : `arn:aws:s3:::${s.bucket}/${s.prefix ?? ''}*`;
}

/** What the AWS SDK's errors carry (S3's and IAM's alike). */
export interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $response?: unknown;
}

const MAX_ATTEMPTS_TEXT = 3;

/** The first error in the chain of causes with this name (the SDK wraps what it was given). */
export function causeNamed(error: unknown, name: string): (Error & { limit?: number; ms?: number }) | undefined {
  for (
    let e = error as { name?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 8;
    e = e.cause as typeof e, depth++
  ) {
    if (e.name === name) return e as Error;
  }
  return undefined;
}

export function httpStatus(error: unknown): number | undefined {
  return (error as SdkError | null)?.$metadata?.httpStatusCode;
}

/**
 * A failed S3 operation as one message naming the operation, the bucket and folder, and the fix in
 * the variables of the account that made it (the instance's STORAGE_*, or the deployer's).
 */
export function s3Failure(
  error: unknown,
  operation: string,
  s: StorageSettings,
  account: Pick<S3Account, 'timeoutSec' | 'vars'>,
): StorageError {
  const { timeoutSec, vars } = account;
  // The deployment machine's requests have a fixed timeout: no variable to raise.
  const timeout = vars.timeout ? `${vars.timeout}=${timeoutSec} s` : `${timeoutSec} s`;
  const raiseTimeout = vars.timeout ? `; raise ${vars.timeout} only for a provider known to be that slow` : '';
  const e = (error ?? {}) as SdkError;
  // HEAD answers have no body: the SDK then names the error 'Unknown', which says nothing.
  // Cut: what the endpoint says could be as long as its answer.
  const code = ([e.Code, e.name].find((c) => c && c !== 'Unknown') ?? '').slice(0, 100);
  const errno = e.code ?? '';
  const status = httpStatus(error);
  const where = s.endpoint ?? `AWS S3 (${s.region})`;
  const target = `${s.bucket}${s.prefix ? `/${s.prefix}` : ''}`;
  const fail = (message: string, fix: string) =>
    new StorageError(`storage: ${operation} on ${target} at ${where}: ${message}`, fix, { cause: error });

  const deadline = causeNamed(error, 'OperationDeadline');
  if (deadline) {
    return fail(
      `did not complete within ${MAX_ATTEMPTS_TEXT} × ${timeout} + 2 s` +
        (deadline.ms === undefined ? '' : ` = ${deadline.ms / 1000} s`) +
        ' (the endpoint answers too slowly, or never finishes its answer)',
      `check ${vars.endpoint} and the network to it${raiseTimeout}`,
    );
  }
  const tooLarge = causeNamed(error, 'ResponseTooLarge');
  if (tooLarge) {
    return fail(
      `the endpoint's answer is longer than ${tooLarge.limit} ` +
        `bytes, more than any answer this program expects: cut there`,
      `check ${vars.endpoint}: it is not an S3 service, or not a well-behaved one`,
    );
  }
  if (errno.startsWith('HPE_')) {
    return fail(
      `the endpoint's answer is not valid HTTP (${errno}: ${(e.message ?? '').slice(0, 100)})`,
      `check ${vars.endpoint}: it is not an S3 service, or not a well-behaved one`,
    );
  }
  switch (code) {
    case 'InvalidAccessKeyId':
      return fail(
        'the access key id is unknown to the provider',
        `check ${vars.accessKey} (and that ${vars.endpoint} is the provider that issued it)`,
      );
    case 'SignatureDoesNotMatch':
      return fail(
        'the request signature does not match: the secret key is wrong for this access key',
        `check ${vars.secretKey} (copied whole, no extra spaces or newline)`,
      );
    case 'RequestTimeTooSkewed':
      return fail(
        "this machine's clock differs too much from the provider's",
        'synchronise the clock of the node (NTP)',
      );
    case 'NoSuchBucket':
      return fail(
        `bucket ${s.bucket} does not exist`,
        `create the bucket (deployment machine) or correct ${vars.bucket}`,
      );
    case 'AccessDenied':
      return fail(
        `access denied: the key lacks ${PERMISSION[operation] ?? operation}`,
        `grant ${PERMISSION[operation] ?? operation} on ${resourceOf(operation, s)} to this key ` +
          `(per-tenant policies: s3:PutObject, s3:GetObject, s3:DeleteObject on arn:aws:s3:::${s.bucket}/` +
          `${s.prefix ?? ''}*, s3:ListBucket on arn:aws:s3:::${s.bucket} with the prefix condition)`,
      );
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return fail(
        `the bucket is in another region than ${s.region} (${code})`,
        `set ${vars.region} to the region of the bucket (and ${vars.endpoint} to that region's endpoint)`,
      );
  }
  if (status === 404 && operation === 'HeadBucket') {
    return fail(
      `bucket ${s.bucket} does not exist`,
      `create the bucket (deployment machine) or correct ${vars.bucket}`,
    );
  }
  if (status === 403) {
    return fail(
      `access denied (HTTP 403${code ? `, ${code}` : ''})`,
      `check ${vars.accessKey} and ${vars.secretKey}, and that the ` +
        `key has ${PERMISSION[operation] ?? operation} on ${resourceOf(operation, s)}`,
    );
  }
  if (status === 301) {
    return fail(
      'the provider redirects: the bucket is in another region',
      `set ${vars.region} (and ${vars.endpoint}) to the region of the bucket`,
    );
  }
  if (status !== undefined && status >= 500) {
    return fail(
      `the provider answered HTTP ${status} (${code || 'server error'}) ` +
        `after ${e.$metadata?.attempts ?? 'several'} attempt(s)`,
      `the provider has an outage or ${vars.endpoint} points at the wrong service; retry later`,
    );
  }
  if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') {
    return fail(`the endpoint host name does not resolve (DNS, ${errno})`, `check ${vars.endpoint}`);
  }
  if (isTlsFailure(errno, e.message)) {
    return fail(
      `TLS failed: ${(e.message ?? '').slice(0, 300)}`,
      `check ${vars.endpoint} (https host name) and that its ` +
        `certificate is trusted (NODE_EXTRA_CA_CERTS for a private CA)`,
    );
  }
  if (
    code === 'TimeoutError' ||
    code === 'AbortError' ||
    code === 'RequestTimeout' ||
    errno === 'ETIMEDOUT' ||
    /timed? ?out/i.test(e.message ?? '')
  ) {
    return fail(
      `no answer within ${timeout}`,
      `check ${vars.endpoint} and that the network lets this container reach it`,
    );
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE'].includes(errno)) {
    return fail(
      `the endpoint is unreachable (${errno})`,
      `check ${vars.endpoint} (scheme, host, port) and that the network lets this container reach it`,
    );
  }
  // What the endpoint said is cut: a hostile one could make it as long as it likes.
  const said = (e.message ?? String(error)).slice(0, 300);
  return fail(
    `${code || errno || 'error'}: ${said}${status ? ` (HTTP ${status})` : ''}`,
    `check ${vars.endpoint}, ${vars.bucket}, ${vars.accessKey} and ${vars.secretKey}`,
  );
}
