/**
 * A real S3-compatible server for the tests: s3rver, behind a small HTTP and HTTPS front that
 * does what s3rver does not: verify SigV4 signatures (s3rver accepts any secret), refuse skewed
 * clocks, and apply per-key policies (a prefix-scoped tenant key, a read-only key) the way IAM
 * would answer. It can also inject faults (5xx answers, or silence) for bounded-retry tests.
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import S3rver from 's3rver';
import { freePort, listenHttpAndHttps } from './net.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface S3Key {
  accessKeyId: string;
  secretAccessKey: string;
}

type Policy =
  | { kind: 'admin' }
  | { kind: 'prefix'; bucket: string; prefix: string }
  | { kind: 'read-only'; bucket: string };

export interface S3Server {
  httpEndpoint: string;
  httpsEndpoint: string;
  caFile: string;
  region: string;
  admin: S3Key;
  prefixKey(bucket: string, prefix: string): S3Key;
  readOnlyKey(bucket: string): S3Key;
  createBucket(name: string): Promise<void>;
  listObjects(bucket: string): Promise<Map<string, Buffer>>;
  putObject(bucket: string, key: string, body: string | Buffer): Promise<void>;
  /** The server's clock runs this many ms ahead of the machine's (its Date headers and its skew check). */
  setClockSkew(ms: number): void;
  /** The next `count` requests answer `status` with an S3 error, or are never answered ('hang'). */
  failNext(count: number, status: number | 'hang'): void;
  requests: Array<{ method: string; path: string; accessKeyId: string | undefined; status: number }>;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
// s3rver's account registry: it checks that a V4 access key id exists there, nothing more.
const { DUMMY_ACCOUNT } = createRequire(import.meta.url)('s3rver/lib/models/account.js') as {
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void };
};

function newKey(): S3Key {
  return {
    accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
}

let skewMs = 0;
const serverDate = () => new Date(Date.now() + skewMs).toUTCString();

function s3Error(res: http.ServerResponse, method: string, status: number, code: string, message: string) {
  // The Date header is how clients learn the server's clock (the AWS SDK corrects its own from it).
  res.writeHead(status, { 'content-type': 'application/xml', date: serverDate() });
  // HEAD answers carry no body, as in real S3: clients see only the status.
  res.end(
    method === 'HEAD'
      ? undefined
      : '<?xml version="1.0" encoding="UTF-8"?>' +
          `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>test</RequestId></Error>`,
  );
}

const AUTH = new RegExp(
  '^AWS4-HMAC-SHA256 Credential=([^/]+)\\/(\\d{8})\\/([^/]+)\\/s3\\/aws4_request' +
    ', ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$',
);

/** Recomputes the SigV4 signature of the request with the key's secret. */
async function signatureMatches(
  req: http.IncomingMessage,
  url: URL,
  secret: string,
  accessKeyId: string,
  region: string,
  signedHeaders: string[],
  signature: string,
): Promise<boolean> {
  const amzDate = String(req.headers['x-amz-date']);
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}` +
      `T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(req.headers[name] ?? '');
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: secret },
    region,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: req.method!, protocol: 'http:', hostname: url.hostname, path: url.pathname, query, headers },
    { signingDate },
  );
  const got = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization))?.[1];
  return got === signature;
}

/** What a per-key policy allows, like IAM: true, or the status to answer (403, empty for HEAD). */
function allowed(policy: Policy, method: string, bucket: string, key: string, url: URL): boolean {
  if (policy.kind === 'admin') return true;
  if (bucket !== policy.bucket) return false;
  if (policy.kind === 'read-only') return method === 'GET' || method === 'HEAD';
  if (!key) return method === 'GET' && (url.searchParams.get('prefix') ?? '').startsWith(policy.prefix);
  return key.startsWith(policy.prefix);
}

export async function startS3(): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-s3-'));
  const backendPort = await freePort();
  const backend = new S3rver({ port: backendPort, address: '127.0.0.1', silent: true, directory: dir });
  await backend.run();

  const keys = new Map<string, { secret: string; policy: Policy }>();
  const addKey = (policy: Policy): S3Key => {
    const key = newKey();
    keys.set(key.accessKeyId, { secret: key.secretAccessKey, policy });
    DUMMY_ACCOUNT.createKeyPair(key.accessKeyId, key.secretAccessKey);
    return key;
  };
  const admin = addKey({ kind: 'admin' });
  const requests: S3Server['requests'] = [];
  let faults: { count: number; status: number | 'hang' } = { count: 0, status: 500 };
  const hanging = new Set<http.ServerResponse>();

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const match = AUTH.exec(String(req.headers.authorization ?? ''));
    const record = { method, path: url.pathname + url.search, accessKeyId: match?.[1], status: 0 };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);

    if (faults.count > 0) {
      faults.count--;
      if (faults.status === 'hang') {
        hanging.add(res);
        return;
      }
      return s3Error(
        res,
        method,
        faults.status,
        faults.status === 503 ? 'SlowDown' : 'InternalError',
        'Injected fault',
      );
    }
    if (!match) return s3Error(res, method, 403, 'AccessDenied', 'Anonymous access is not allowed');
    const [, accessKeyId, , region, signed, signature] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const key = keys.get(accessKeyId);
    if (!key)
      return s3Error(
        res,
        method,
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const when = Date.parse(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}` +
        `T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    if (!Number.isFinite(when) || Math.abs(Date.now() + skewMs - when) > 15 * 60_000) {
      return s3Error(
        res,
        method,
        403,
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    }
    if (!(await signatureMatches(req, url, key.secret, accessKeyId, region, signed.split(';'), signature))) {
      return s3Error(
        res,
        method,
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      );
    }
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const objectKey = decodeURIComponent(rest.join('/'));
    if (!allowed(key.policy, method, bucket, objectKey, url)) {
      // A prefix-scoped key gets an empty 403 on HeadBucket, like AWS (ListBucket without prefix).
      return s3Error(res, method, 403, 'AccessDenied', 'Access Denied');
    }

    const forward = http.request(
      {
        host: '127.0.0.1',
        port: backendPort,
        method,
        path: req.url,
        headers: { ...req.headers, 'content-length': String(body.length) },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 500, { ...answer.headers, date: serverDate() });
        answer.pipe(res);
      },
    );
    forward.on('error', () => s3Error(res, method, 502, 'InternalError', 'backend unavailable'));
    forward.end(body);
  };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handler(req, res).catch(() => s3Error(res, req.method ?? 'GET', 500, 'InternalError', 'front error'));
  };

  const server = await listenHttpAndHttps(onRequest);
  const httpEndpoint = server.httpUrl;

  const { S3Client, CreateBucketCommand, PutObjectCommand, ListObjectsV2Command, GetObjectCommand } = await import(
    '@aws-sdk/client-s3'
  );
  const client = new S3Client({
    region: REGION,
    endpoint: httpEndpoint,
    forcePathStyle: true,
    credentials: admin,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

  let stopped = false;
  return {
    httpEndpoint,
    httpsEndpoint: server.httpsUrl,
    caFile: server.caFile,
    region: REGION,
    admin,
    prefixKey: (bucket, prefix) => addKey({ kind: 'prefix', bucket, prefix }),
    readOnlyKey: (bucket) => addKey({ kind: 'read-only', bucket }),
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putObject(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async listObjects(bucket) {
      const out = new Map<string, Buffer>();
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const { Key } of list.Contents ?? []) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: Key! }));
        out.set(Key!, Buffer.from((await got.Body?.transformToByteArray()) ?? []));
      }
      return out;
    },
    failNext(count, status) {
      faults = { count, status };
    },
    setClockSkew(ms) {
      skewMs = ms;
    },
    requests,
    async stop() {
      if (stopped) return;
      stopped = true;
      skewMs = 0;
      client.destroy();
      for (const res of hanging) res.destroy();
      await server.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
