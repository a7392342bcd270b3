/**
 * An S3 for the tests that enforces the IAM policies of the local IAM (test/harness/iam.ts): a real s3rver behind an
 * HTTP and HTTPS front (path-style addressing, as the rest of the harness) that, for every request:
 *
 * 1. names the access key from the SigV4 Authorization header (none: 403 AccessDenied; a key the IAM does not
 *    know, deleted or inactive: 403 InvalidAccessKeyId);
 * 2. recomputes the signature with that key's secret (test/harness/sigv4.ts; wrong secret: 403
 *    SignatureDoesNotMatch; skewed clock: RequestTimeTooSkewed; a body that is not the declared
 *    x-amz-content-sha256: XAmzContentSHA256Mismatch). The IAM's admin key is the account's root: it may do
 *    everything, as in AWS, and no policy is evaluated for it;
 * 3. maps the request to S3's IAM action(s) and resource ARN(s) (`authorizations` below): ListObjects(V2) and
 *    HeadBucket → s3:ListBucket on arn:aws:s3:::BUCKET with the `prefix`, `delimiter` and `max-keys` query values as
 *    the s3:prefix, s3:delimiter and s3:max-keys condition keys (absent when not sent, so a policy conditioned on
 *    s3:prefix refuses a listing without prefix, as AWS does); GetObject / HeadObject → s3:GetObject;
 *    PutObject and multipart uploads → s3:PutObject (a copy also needs s3:GetObject on its source); DeleteObject
 *    → s3:DeleteObject; DeleteObjects → s3:DeleteObject on each key of its body; CreateBucket, DeleteBucket,
 *    ListAllMyBuckets, GetBucketLocation; anything else is refused for an IAM user's key;
 * 4. evaluates the user's inline policies (as the IAM holds them at that moment) for each action with
 *    @cloud-copilot/iam-simulate's runSimulation (AWS's evaluation logic: explicit deny, allow, implicit deny,
 *    wildcards, policy variables and condition operators), and answers S3's AccessDenied XML with 403 (an empty
 *    403 to HEAD, like S3) unless every one is Allowed;
 * 5. forwards the request to s3rver unchanged: same method, path, query, headers and body.
 *
 * s3rver and signatures: s3rver does not verify V4 signatures at all; it only checks that the access key id is in
 * its account registry (s3rver/lib/models/account.js, the same registry test/harness/s3.ts fills). So the front
 * does not re-sign: once a request is authorised, its key id is registered there (with its secret) and the
 * request goes through byte for byte. The front is the only check, which is why it verifies every signature
 * itself. s3rver listens on 127.0.0.1 on a port only the front uses.
 */
import { createRequire } from 'node:module';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import S3rver from 's3rver';
import { type IamServer, policiesAllow, xml } from './iam.js';
import { freePort, listenHttpAndHttps } from './net.js';
import { claimedKey, readBody, verifySigV4 } from './sigv4.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const { DUMMY_ACCOUNT } = createRequire(import.meta.url)('s3rver/lib/models/account.js') as {
  DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void };
};

export interface Authorization {
  action: string;
  resource: string;
  context: Record<string, string>;
}

export interface PolicyS3Server {
  httpEndpoint: string;
  httpsEndpoint: string;
  caFile: string;
  region: string;
  iam: IamServer;
  /** Every request: what it was mapped to, the key, and the answer (status, and S3 error code if any). */
  requests: Array<{
    method: string;
    path: string;
    accessKeyId: string | undefined;
    authorizations: Authorization[];
    status: number;
    code?: string;
  }>;
  stop(): Promise<void>;
}

/** The IAM action(s) and resource(s) S3 authorises a path-style request with; undefined when not mapped. */
export function authorizations(method: string, url: URL, headers: http.IncomingHttpHeaders, body: Buffer) {
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const q = url.searchParams;
  const one = (action: string, resource: string, context: Record<string, string> = {}): Authorization[] => [
    { action, resource, context },
  ];
  if (!bucket) return method === 'GET' ? one('s3:ListAllMyBuckets', '*') : undefined;
  const bucketArn = `arn:aws:s3:::${decodeURIComponent(bucket)}`;
  if (!key) {
    const subresources = [...q.keys()].filter((k) => !['prefix', 'delimiter', 'max-keys', 'marker'].includes(k));
    const listing = ['list-type', 'continuation-token', 'start-after', 'fetch-owner', 'encoding-type'];
    if (method === 'GET' && subresources.every((k) => listing.includes(k))) {
      const context: Record<string, string> = {};
      for (const name of ['prefix', 'delimiter', 'max-keys']) {
        const value = q.get(name);
        if (value !== null) context[`s3:${name}`] = value;
      }
      return one('s3:ListBucket', bucketArn, context);
    }
    if (method === 'HEAD' && subresources.length === 0) return one('s3:ListBucket', bucketArn);
    if (method === 'GET' && q.has('location')) return one('s3:GetBucketLocation', bucketArn);
    if (method === 'PUT' && subresources.length === 0) return one('s3:CreateBucket', bucketArn);
    if (method === 'DELETE' && subresources.length === 0) return one('s3:DeleteBucket', bucketArn);
    if (method === 'POST' && q.has('delete')) {
      const keys = [...body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) =>
        (m[1] ?? '')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&quot;/g, '"')
          .replace(/&apos;/g, "'")
          .replace(/&amp;/g, '&'),
      );
      if (keys.length === 0) return undefined;
      return keys.map((k) => ({ action: 's3:DeleteObject', resource: `${bucketArn}/${k}`, context: {} }));
    }
    return undefined;
  }
  const objectArn = `${bucketArn}/${key}`;
  const sub = [...q.keys()].filter((k) => !k.startsWith('response-') && k !== 'versionId' && k !== 'x-id');
  if ((method === 'GET' || method === 'HEAD') && sub.length === 0) return one('s3:GetObject', objectArn);
  if (method === 'GET' && sub.length === 1 && sub[0] === 'uploadId')
    return one('s3:ListMultipartUploadParts', objectArn);
  if (method === 'PUT' && (sub.length === 0 || (q.has('partNumber') && q.has('uploadId')))) {
    const put = one('s3:PutObject', objectArn);
    const source = headers['x-amz-copy-source'];
    if (typeof source === 'string') {
      const path = decodeURIComponent(source.split('?')[0] ?? '').replace(/^\//, '');
      put.push({ action: 's3:GetObject', resource: `arn:aws:s3:::${path}`, context: {} });
    }
    return put;
  }
  if (method === 'POST' && (q.has('uploads') || q.has('uploadId'))) return one('s3:PutObject', objectArn);
  if (method === 'DELETE' && sub.length === 0) return one('s3:DeleteObject', objectArn);
  if (method === 'DELETE' && q.has('uploadId')) return one('s3:AbortMultipartUpload', objectArn);
  return undefined;
}

export async function startPolicyS3(iam: IamServer): Promise<PolicyS3Server> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-s3p-'));
  const backendPort = await freePort();
  const backend = new S3rver({ port: backendPort, address: '127.0.0.1', silent: true, directory: dir });
  await backend.run();
  const requests: PolicyS3Server['requests'] = [];

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const record: PolicyS3Server['requests'][number] = {
      method,
      path: url.pathname + url.search,
      accessKeyId: claimedKey(req),
      authorizations: [],
      status: 0,
    };
    requests.push(record);
    const refuse = (status: number, code: string, message: string) => {
      record.status = status;
      record.code = code;
      res.writeHead(status, { 'content-type': 'application/xml' });
      // HEAD answers carry no body, as in real S3: clients see only the status.
      res.end(
        method === 'HEAD'
          ? undefined
          : '<?xml version="1.0" encoding="UTF-8"?>' +
              `<Error><Code>${code}</Code><Message>${xml(message)}</Message><RequestId>test</RequestId></Error>`,
      );
    };

    if (!req.headers.authorization) return refuse(403, 'AccessDenied', 'Anonymous access is not allowed');
    const verdict = await verifySigV4(
      req,
      body,
      's3',
      (id) => {
        const owner = iam.keyOf(id);
        if (!owner) return undefined;
        if (owner.kind === 'admin') return owner.secret;
        return owner.key.status === 'Active' ? owner.key.secretAccessKey : undefined;
      },
      { code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' },
    );
    if (!verdict.ok) {
      const code = verdict.code === 'MissingAuthenticationToken' ? 'AccessDenied' : verdict.code;
      return refuse(code === 'XAmzContentSHA256Mismatch' ? 400 : 403, code, verdict.message);
    }
    const owner = iam.keyOf(verdict.by.accessKeyId);
    if (!owner) return refuse(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist.');
    if (owner.kind === 'user') {
      const asked = authorizations(method, url, req.headers, body);
      if (!asked) return refuse(403, 'AccessDenied', 'Access Denied');
      record.authorizations = asked;
      for (const { action, resource, context } of asked) {
        const allowed = await policiesAllow(owner.user, iam.accountId, action, resource, {
          'aws:SecureTransport': String(req.socket instanceof TLSSocket),
          ...context,
        });
        if (!allowed) return refuse(403, 'AccessDenied', 'Access Denied');
      }
      DUMMY_ACCOUNT.createKeyPair(owner.key.accessKeyId, owner.key.secretAccessKey);
    } else {
      DUMMY_ACCOUNT.createKeyPair(verdict.by.accessKeyId, owner.secret);
    }

    const forward = http.request(
      {
        host: '127.0.0.1',
        port: backendPort,
        method,
        path: req.url,
        // The body was read whole: sent with its length (a chunked request arrives the same, unchunked).
        headers: Object.fromEntries(
          Object.entries({ ...req.headers, 'content-length': String(body.length) }).filter(
            ([name]) => name !== 'transfer-encoding',
          ),
        ),
      },
      (answer) => {
        record.status = answer.statusCode ?? 500;
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => refuse(502, 'InternalError', 'backend unavailable'));
    forward.end(body);
  };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InternalError</Code><Message>front error</Message></Error>');
    });
  };

  const server = await listenHttpAndHttps(onRequest);
  let stopped = false;
  return {
    httpEndpoint: server.httpUrl,
    httpsEndpoint: server.httpsUrl,
    caFile: server.caFile,
    region: iam.region,
    iam,
    requests,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
