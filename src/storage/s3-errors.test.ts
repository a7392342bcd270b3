// SDK errors to StorageError (exit 6): classified by S3 code, by HTTP status when the answer had no
// body, by socket error when there was no answer; each message names the operation and the target,
// each fix the variable to check (test/storage.test.ts meets the same errors from a real endpoint).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../errors.js';
import {
  DEPLOYER_STORAGE_VARIABLES,
  INSTANCE_STORAGE_VARIABLES,
  type S3Account,
  type StorageSettings,
} from '../config/targets.js';
import { OperationDeadline, ResponseTooLarge } from './client.js';
import { httpStatus, PERMISSION, s3Failure } from './s3-errors.js';

interface Target {
  endpoint?: string | null;
  bucket?: string;
  region?: string;
  prefix?: string | null;
  /** The deployment machine's account (PROVISION_STORAGE_*, no timeout variable), not the instance's. */
  deployer?: boolean;
  timeoutSec?: number;
}

/** The only place that knows s3Failure's signature and the shape of its storage input. */
function classify(error: unknown, operation: string, t: Target = {}): StorageError {
  const settings: StorageSettings = {
    provider: 's3',
    endpoint: t.endpoint === undefined ? 'https://s3.example.test' : t.endpoint,
    bucket: t.bucket ?? 'superfasttt-acme',
    region: t.region ?? 'fr-par',
    prefix: t.prefix === undefined ? 'tenant_acme' : t.prefix,
    force_path_style: true,
  };
  const account: Pick<S3Account, 'timeoutSec' | 'vars'> = {
    timeoutSec: t.timeoutSec ?? 10,
    vars: t.deployer ? DEPLOYER_STORAGE_VARIABLES : INSTANCE_STORAGE_VARIABLES,
  };
  const result = s3Failure(error, operation, settings, account);
  assert.ok(result instanceof StorageError);
  assert.equal(result.exitCode, 6);
  assert.equal(result.cause, error, 'the original error is kept as the cause');
  return result;
}

const fixOf = (error: StorageError): string => error.fix ?? '';

/** An SDK service exception: name and Code from the answer's body, the HTTP status in $metadata. */
function sdk(name: string, status: number | undefined, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(extra.message === undefined ? `${name} message` : String(extra.message)), {
    name,
    ...(name !== 'Unknown' && { Code: name }),
    $metadata: { httpStatusCode: status, attempts: extra.attempts ?? 1 },
    ...extra,
  });
}

/** A socket error as Node raises it: a code (errno) and no answer. */
const socket = (code: string, message = `connect ${code} 10.0.0.1:443`) => Object.assign(new Error(message), { code });

describe('s3Failure: what the message says', () => {
  it('names the operation, the bucket/prefix and the endpoint', () => {
    const error = classify(sdk('NoSuchBucket', 404), 'PutObject');
    assert.match(
      error.message,
      /^storage: PutObject on superfasttt-acme\/tenant_acme at https:\/\/s3\.example\.test: /,
    );
  });

  it('without a prefix, the bucket alone; without an endpoint, AWS S3 and the region', () => {
    const error = classify(sdk('NoSuchBucket', 404), 'HeadBucket', {
      prefix: null,
      endpoint: null,
      region: 'eu-west-3',
    });
    assert.match(error.message, /^storage: HeadBucket on superfasttt-acme at AWS S3 \(eu-west-3\): /);
  });
});

describe('s3Failure: answers with an S3 error code', () => {
  it('InvalidAccessKeyId: the access key (and the endpoint that issued it)', () => {
    const error = classify(sdk('InvalidAccessKeyId', 403), 'HeadBucket');
    assert.match(error.message, /the access key id is unknown to the provider$/);
    assert.equal(error.fix, 'check STORAGE_ACCESS_KEY (and that STORAGE_ENDPOINT is the provider that issued it)');
  });

  it('SignatureDoesNotMatch: the secret key', () => {
    const error = classify(sdk('SignatureDoesNotMatch', 403), 'PutObject');
    assert.match(error.message, /the secret key is wrong for this access key/);
    assert.match(fixOf(error), /^check STORAGE_SECRET_KEY /);
  });

  it('RequestTimeTooSkewed: the clock, not a variable', () => {
    const error = classify(sdk('RequestTimeTooSkewed', 403), 'PutObject');
    assert.match(error.message, /clock differs/);
    assert.match(fixOf(error), /NTP/);
  });

  it('NoSuchBucket: the bucket, named', () => {
    const error = classify(sdk('NoSuchBucket', 404), 'GetObject');
    assert.match(error.message, /bucket superfasttt-acme does not exist$/);
    assert.match(fixOf(error), /correct STORAGE_BUCKET$/);
  });

  it('AccessDenied: the permission the operation needs, and where', () => {
    for (const [operation, permission] of Object.entries(PERMISSION)) {
      const error = classify(sdk('AccessDenied', 403), operation);
      assert.match(error.message, new RegExp(`access denied: the key lacks ${permission}$`), operation);
      assert.match(fixOf(error), new RegExp(`^grant ${permission} on arn:aws:s3:::superfasttt-acme`), operation);
    }
    assert.deepEqual(PERMISSION, {
      HeadBucket: 's3:ListBucket',
      PutObject: 's3:PutObject',
      GetObject: 's3:GetObject',
      HeadObject: 's3:GetObject',
      DeleteObject: 's3:DeleteObject',
    });
    // An operation without a known permission is named itself.
    assert.match(classify(sdk('AccessDenied', 403), 'ListObjectsV2').message, /the key lacks ListObjectsV2$/);
  });

  it('the region errors: STORAGE_REGION (and its endpoint)', () => {
    for (const code of ['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']) {
      const error = classify(sdk(code, code === 'PermanentRedirect' ? 301 : 400), 'HeadBucket');
      assert.match(error.message, new RegExp(`the bucket is in another region than fr-par \\(${code}\\)$`));
      assert.equal(
        error.fix,
        "set STORAGE_REGION to the region of the bucket (and STORAGE_ENDPOINT to that region's endpoint)",
      );
    }
  });

  it('the code is read from Code when the SDK names the exception otherwise', () => {
    const error = classify(
      Object.assign(new Error('x'), {
        name: 'S3ServiceException',
        Code: 'NoSuchBucket',
        $metadata: { httpStatusCode: 404 },
      }),
      'GetObject',
    );
    assert.match(error.message, /does not exist$/);
  });
});

describe('s3Failure: answers without a body (HEAD), by HTTP status', () => {
  it('404 on HeadBucket: the bucket does not exist; on another operation, not said so', () => {
    assert.match(classify(sdk('Unknown', 404), 'HeadBucket').message, /bucket superfasttt-acme does not exist$/);
    assert.match(classify(sdk('NotFound', 404), 'HeadBucket').message, /bucket superfasttt-acme does not exist$/);
    const other = classify(sdk('NotFound', 404), 'HeadObject');
    assert.doesNotMatch(other.message, /does not exist/);
    assert.match(other.message, /NotFound: NotFound message \(HTTP 404\)$/);
    assert.match(fixOf(other), /STORAGE_ENDPOINT.*STORAGE_BUCKET/);
  });

  it('403: access denied, the keys and the permission on the target', () => {
    const bare = classify(sdk('Unknown', 403), 'HeadBucket');
    assert.match(bare.message, /access denied \(HTTP 403\)$/);
    assert.equal(
      bare.fix,
      // s3:ListBucket is granted on the bucket (with a prefix condition), not on its objects.
      'check STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY, and that the key has s3:ListBucket on ' +
        'arn:aws:s3:::superfasttt-acme (s3:prefix tenant_acme)',
    );
    assert.match(classify(sdk('Forbidden', 403), 'HeadObject').message, /access denied \(HTTP 403, Forbidden\)$/);
    assert.match(fixOf(classify(sdk('Forbidden', 403), 'HeadObject')), /arn:aws:s3:::superfasttt-acme\/tenant_acme\*$/);
  });

  it("the provider's error code is cut at 100 characters in every branch (an endpoint chooses its length)", () => {
    const long = 'X'.repeat(100_000);
    for (const status of [403, 503, 418]) {
      const error = classify(sdk(long, status), 'GetObject');
      assert.ok(error.message.length < 1000, `HTTP ${status}: ${error.message.length} characters`);
    }
  });

  it('301 without a code: another region', () => {
    const error = classify(sdk('Unknown', 301), 'HeadBucket');
    assert.match(error.message, /the provider redirects: the bucket is in another region$/);
    assert.match(fixOf(error), /^set STORAGE_REGION \(and STORAGE_ENDPOINT\)/);
  });

  it('5xx: an outage, with the attempts the SDK made', () => {
    assert.match(
      classify(sdk('InternalError', 500, { attempts: 3 }), 'PutObject').message,
      /answered HTTP 500 \(InternalError\) after 3 attempt\(s\)$/,
    );
    const bare = Object.assign(new Error(''), { name: 'Unknown', $metadata: { httpStatusCode: 503 } });
    const error = classify(bare, 'PutObject');
    assert.match(error.message, /answered HTTP 503 \(server error\) after several attempt\(s\)$/);
    assert.match(fixOf(error), /STORAGE_ENDPOINT points at the wrong service/);
  });

  it('httpStatus reads $metadata, and nothing from other values', () => {
    assert.equal(httpStatus(sdk('NoSuchBucket', 404)), 404);
    assert.equal(httpStatus(new Error('x')), undefined);
    assert.equal(httpStatus(null), undefined);
    assert.equal(httpStatus(undefined), undefined);
  });
});

describe('s3Failure: no answer', () => {
  it('DNS: the endpoint host name does not resolve', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
      const error = classify(socket(code, `getaddrinfo ${code} s3.example.test`), 'HeadBucket');
      assert.match(error.message, new RegExp(`the endpoint host name does not resolve \\(DNS, ${code}\\)$`));
      assert.equal(error.fix, 'check STORAGE_ENDPOINT');
    }
  });

  it('connection errors: unreachable, naming the errno', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']) {
      const error = classify(socket(code), 'HeadBucket');
      assert.match(error.message, new RegExp(`the endpoint is unreachable \\(${code}\\)$`), code);
      assert.match(fixOf(error), /^check STORAGE_ENDPOINT \(scheme, host, port\)/);
    }
  });

  it('TLS: certificate errors, by code or by message', () => {
    for (const code of [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_HAS_EXPIRED',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'EPROTO',
    ]) {
      const error = classify(socket(code, `${code}: the handshake failed`), 'HeadBucket');
      assert.match(error.message, /TLS failed: .*the handshake failed$/, code);
      assert.match(fixOf(error), /NODE_EXTRA_CA_CERTS/);
    }
    assert.match(classify(new Error('unable to get local issuer certificate'), 'PutObject').message, /TLS failed/);
  });

  it('time-outs: no answer within STORAGE_TIMEOUT, with its value', () => {
    for (const error of [
      socket('ETIMEDOUT'),
      sdk('TimeoutError', undefined, { message: 'Connection timed out after 10000 ms' }),
      sdk('RequestTimeout', 400),
      Object.assign(new Error('Request aborted'), { name: 'AbortError' }),
      new Error('socket timeout'),
    ]) {
      const result = classify(error, 'PutObject', { timeoutSec: 7 });
      assert.match(result.message, /no answer within STORAGE_TIMEOUT=7 s$/, String(error));
      // The deployment machine's requests have a fixed timeout: no variable named.
      assert.match(classify(error, 'PutObject', { timeoutSec: 7, deployer: true }).message, /no answer within 7 s$/);
    }
  });

  it('the whole operation past its deadline (OperationDeadline among the causes)', () => {
    const aborted = Object.assign(new Error('Request aborted'), {
      name: 'AbortError',
      cause: new OperationDeadline(32_000),
    });
    for (const error of [new OperationDeadline(32_000), aborted, new Error('wrapped', { cause: aborted })]) {
      const result = classify(error, 'GetObject');
      assert.match(result.message, /did not complete within 3 × STORAGE_TIMEOUT=10 s \+ 2 s = 32 s/);
      assert.match(fixOf(result), /^check STORAGE_ENDPOINT and the network to it; raise STORAGE_TIMEOUT only/);
    }
    const deployer = classify(new OperationDeadline(32_000), 'GetObject', { deployer: true });
    assert.match(deployer.message, /did not complete within 3 × 10 s \+ 2 s = 32 s/);
    assert.equal(fixOf(deployer), 'check PROVISION_STORAGE_ENDPOINT and the network to it');
  });

  it('an answer longer than the limit (ResponseTooLarge among the causes)', () => {
    const error = classify(new Error('stream failed', { cause: new ResponseTooLarge(2_097_152) }), 'GetObject');
    assert.match(error.message, /the endpoint's answer is longer than 2097152 bytes/);
    assert.match(fixOf(error), /^check STORAGE_ENDPOINT: it is not an S3 service/);
  });

  it('invalid HTTP (HPE_ parser errors), the parser message cut', () => {
    const error = classify(socket('HPE_INVALID_CONSTANT', `Expected HTTP/${'x'.repeat(500)}`), 'HeadBucket');
    assert.match(error.message, /not valid HTTP \(HPE_INVALID_CONSTANT: Expected HTTP\/x+\)$/);
    assert.ok(error.message.length < 300, error.message);
    assert.match(fixOf(error), /^check STORAGE_ENDPOINT: it is not an S3 service/);
  });

  it('the deadline and the parser error win over what else the error says', () => {
    const deadline = Object.assign(sdk('AccessDenied', 403), { cause: new OperationDeadline(5000) });
    assert.match(classify(deadline, 'PutObject').message, /did not complete within/);
    const parser = Object.assign(sdk('NoSuchBucket', 404), { code: 'HPE_HEADER_OVERFLOW' });
    assert.match(classify(parser, 'PutObject').message, /not valid HTTP/);
  });
});

describe('s3Failure: anything else', () => {
  it('names the code, what was said (cut) and the status; the fix points at the variables', () => {
    const hostile = sdk(`Weird${'C'.repeat(500)}`, 418, { message: 'm'.repeat(5000) });
    const error = classify(hostile, 'PutObject');
    assert.ok(error.message.length < 600, `${error.message.length} characters`);
    assert.match(error.message, /: WeirdC+: m+ \(HTTP 418\)$/);
    assert.match(fixOf(error), /^check STORAGE_ENDPOINT, STORAGE_BUCKET, STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY$/);
  });

  it('a value that is not an error still gives a StorageError', () => {
    assert.match(classify(null, 'HeadBucket').message, /: error: null$/);
    assert.match(classify(undefined, 'HeadBucket').message, /: error: undefined$/);
    assert.match(classify('boom', 'HeadBucket').message, /: error: boom$/);
  });
});

describe('s3Failure: the deployer’s variables', () => {
  it('every fix names the variables given (PROVISION_STORAGE_...), never STORAGE_... alone', () => {
    const cases: Array<[unknown, string]> = [
      [sdk('InvalidAccessKeyId', 403), 'PROVISION_STORAGE_ACCESS_KEY'],
      [sdk('SignatureDoesNotMatch', 403), 'PROVISION_STORAGE_SECRET_KEY'],
      [sdk('NoSuchBucket', 404), 'PROVISION_STORAGE_BUCKET'],
      [sdk('PermanentRedirect', 301), 'PROVISION_STORAGE_REGION'],
      [sdk('Unknown', 301), 'PROVISION_STORAGE_REGION'],
      [sdk('Unknown', 403), 'PROVISION_STORAGE_ACCESS_KEY'],
      [sdk('Unknown', 404), 'PROVISION_STORAGE_BUCKET'],
      [sdk('InternalError', 502), 'PROVISION_STORAGE_ENDPOINT'],
      [socket('ENOTFOUND'), 'PROVISION_STORAGE_ENDPOINT'],
      [socket('ECONNREFUSED'), 'PROVISION_STORAGE_ENDPOINT'],
      [socket('CERT_HAS_EXPIRED'), 'PROVISION_STORAGE_ENDPOINT'],
      [socket('ETIMEDOUT'), 'PROVISION_STORAGE_ENDPOINT'],
      [socket('HPE_INVALID_CONSTANT'), 'PROVISION_STORAGE_ENDPOINT'],
      [new OperationDeadline(32_000), 'PROVISION_STORAGE_ENDPOINT'],
      [new ResponseTooLarge(1024), 'PROVISION_STORAGE_ENDPOINT'],
      [sdk('Teapot', 418), 'PROVISION_STORAGE_ACCESS_KEY'],
    ];
    for (const [error, variable] of cases) {
      const result = classify(error, 'HeadBucket', { deployer: true });
      assert.ok(fixOf(result).includes(variable), `${result.fix} does not name ${variable}`);
      assert.doesNotMatch(`${result.message} ${result.fix}`, /(^|[^_])STORAGE_/, result.fix);
    }
  });
});
