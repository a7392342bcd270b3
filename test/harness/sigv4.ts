/**
 * SigV4 verification for the test servers that play AWS (test/harness/iam.ts, test/harness/s3-policy.ts): the
 * Authorization header is parsed, then the signature is recomputed from the request with the secret of the key it
 * names (@smithy/signature-v4, the SDK's own signer) and compared, as AWS does. Header signatures only (no
 * presigned URLs). Loopback test servers only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SignedBy {
  accessKeyId: string;
  region: string;
  service: string;
}

export type Verdict =
  | { ok: true; by: SignedBy }
  | { ok: false; code: string; message: string; accessKeyId?: string | undefined };

const AUTH = new RegExp(
  '^AWS4-HMAC-SHA256 Credential=([^/]+)\\/(\\d{8})\\/([^/]+)\\/([^/]+)\\/aws4_request' +
    ', ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$',
);

/** The access key id the request claims, if it carries a SigV4 Authorization header. */
export function claimedKey(req: http.IncomingMessage): string | undefined {
  return AUTH.exec(String(req.headers.authorization ?? ''))?.[1];
}

function amzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/**
 * Checks the request's SigV4 header signature for `service`. `secretOf` answers the secret of a key id, or undefined
 * for a key AWS would not know (then the verdict is `unknownKeyCode`). The body is the request's full body.
 */
export async function verifySigV4(
  req: http.IncomingMessage,
  body: Buffer,
  service: string,
  secretOf: (accessKeyId: string) => string | undefined,
  unknownKeyCode: { code: string; message: string },
): Promise<Verdict> {
  const match = AUTH.exec(String(req.headers.authorization ?? ''));
  if (!match)
    return { ok: false, code: 'MissingAuthenticationToken', message: 'Request is missing Authentication Token' };
  const [, accessKeyId = '', day = '', region = '', signedService = '', signedHeaders = '', signature = ''] = match;
  const secret = secretOf(accessKeyId);
  if (secret === undefined) return { ok: false, ...unknownKeyCode, accessKeyId };
  const mismatch = {
    ok: false as const,
    code: 'SignatureDoesNotMatch',
    message: 'The request signature we calculated does not match the signature you provided.',
    accessKeyId,
  };
  if (signedService !== service) return mismatch;
  const date = amzDate(String(req.headers['x-amz-date'] ?? ''));
  if (!date || !String(req.headers['x-amz-date']).startsWith(day)) return mismatch;
  if (Math.abs(Date.now() - date.getTime()) > 15 * 60_000) {
    return { ok: false, code: 'RequestTimeTooSkewed', message: 'Signature expired or not yet valid.', accessKeyId };
  }
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return mismatch;
  // A declared payload hash must be the body's (S3 checks it: XAmzContentSHA256Mismatch).
  const declared = req.headers['x-amz-content-sha256'];
  if (typeof declared === 'string' && /^[0-9a-f]{64}$/.test(declared)) {
    if (createHash('sha256').update(body).digest('hex') !== declared) {
      return {
        ok: false,
        code: 'XAmzContentSHA256Mismatch',
        message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
        accessKeyId,
      };
    }
  }
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = req.headers[name];
    headers[name] = Array.isArray(value) ? value.join(',') : String(value ?? '');
  }
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: secret },
    region,
    service,
    sha256: Sha256,
    // S3 signs the path as sent; the other services encode it once more (the path here is '/').
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  const signed = await signer.sign(
    {
      method: req.method ?? 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      path: url.pathname,
      query,
      headers,
      body: body.length > 0 ? body : undefined,
    },
    { signingDate: date },
  );
  const got = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  if (got.length !== signature.length || !timingSafeEqual(Buffer.from(got), Buffer.from(signature))) return mismatch;
  return { ok: true, by: { accessKeyId, region, service } };
}

export async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
