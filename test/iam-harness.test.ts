// Self-test of the harness for issue 14 (per-tenant IAM users): the local IAM (test/harness/iam.ts), driven with
// @aws-sdk/client-iam, and the S3 front that enforces its policies (test/harness/s3-policy.ts), driven with
// @aws-sdk/client-s3. Real servers on loopback, no mocks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  GetUserCommand,
  GetUserPolicyCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUserPoliciesCommand,
  ListUsersCommand,
  PutUserPolicyCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { type AwsKey, type IamServer, startIam } from './harness/iam.js';
import { type PolicyS3Server, startPolicyS3 } from './harness/s3-policy.js';

let iamServer: IamServer;
let s3Server: PolicyS3Server;
let iam: IAMClient;
let admin: S3Client;
const clients: Array<{ destroy(): void }> = [];

const SHARED = 'superfasttt-shared';
const OTHER = 'superfasttt-other';
const OWN_A = 'superfasttt-tenant-a';
const OWN_B = 'superfasttt-tenant-b';

const tlsHandler = () => ({ httpsAgent: new https.Agent({ ca: readFileSync(iamServer.caFile) }) });

function iamClient(key: AwsKey, endpoint = iamServer.url): IAMClient {
  const client = new IAMClient({
    region: 'us-east-1',
    endpoint,
    credentials: key,
    maxAttempts: 1,
    requestHandler: tlsHandler(),
  });
  clients.push(client);
  return client;
}

function s3Client(key: AwsKey, endpoint = s3Server.httpEndpoint): S3Client {
  const client = new S3Client({
    region: s3Server.region,
    endpoint,
    requestHandler: tlsHandler(),
    forcePathStyle: true,
    credentials: key,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  clients.push(client);
  return client;
}

/** The error an AWS SDK call fails with: its code (name) and HTTP status. */
async function failure(call: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await call;
  } catch (error) {
    // IAM's modeled errors are named NoSuchEntityException and so on; Code is the code IAM answered.
    const e = error as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return { code: e.Code ?? e.name, status: e.$metadata?.httpStatusCode };
  }
  assert.fail('the call succeeded');
}

async function denied(call: Promise<unknown>, code = 'AccessDenied') {
  const got = await failure(call);
  assert.equal(got.status, 403, `expected 403, got ${JSON.stringify(got)}`);
  // HEAD answers have no body: the SDK cannot know the code (it says Forbidden or Unknown).
  if (got.code !== 'Forbidden' && got.code !== 'Unknown') assert.equal(got.code, code);
}

function prefixPolicy(bucket: string, prefix: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ListOwnPrefix',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: `arn:aws:s3:::${bucket}`,
        Condition: { StringLike: { 's3:prefix': [`${prefix}*`, prefix] } },
      },
      {
        Sid: 'OwnObjects',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        Resource: `arn:aws:s3:::${bucket}/${prefix}*`,
      },
    ],
  };
}

function bucketPolicy(bucket: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        Resource: `arn:aws:s3:::${bucket}/*`,
      },
    ],
  };
}

/** A tenant's user under /superfasttt/, with one inline policy and one key, as provision will make it. */
async function tenantUser(name: string, policy: object): Promise<AwsKey> {
  await iam.send(
    new CreateUserCommand({
      UserName: name,
      Path: '/superfasttt/',
      Tags: [{ Key: 'superfasttt:tenant', Value: name }],
    }),
  );
  await iam.send(
    new PutUserPolicyCommand({ UserName: name, PolicyName: 'storage', PolicyDocument: JSON.stringify(policy) }),
  );
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  assert.ok(AccessKey?.AccessKeyId && AccessKey.SecretAccessKey);
  return { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey };
}

const put = (client: S3Client, Bucket: string, Key: string, Body = 'x') =>
  client.send(new PutObjectCommand({ Bucket, Key, Body }));
const get = async (client: S3Client, Bucket: string, Key: string) =>
  (await client.send(new GetObjectCommand({ Bucket, Key }))).Body?.transformToString();
const list = async (client: S3Client, Bucket: string, Prefix?: string) =>
  ((await client.send(new ListObjectsV2Command({ Bucket, Prefix }))).Contents ?? []).map((o) => o.Key);
const del = (client: S3Client, Bucket: string, Key: string) => client.send(new DeleteObjectCommand({ Bucket, Key }));

before(async () => {
  iamServer = await startIam();
  s3Server = await startPolicyS3(iamServer);
  iam = iamClient(iamServer.admin);
  admin = s3Client(iamServer.admin);
  for (const bucket of [SHARED, OTHER, OWN_A, OWN_B]) await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  await put(admin, SHARED, 'tenant_b/secret.txt', 'tenant b');
  await put(admin, OTHER, 'tenant_a/elsewhere.txt', 'other bucket');
  await put(admin, OWN_B, 'b.txt', 'bucket b');
});

after(async () => {
  for (const client of clients) client.destroy();
  await s3Server?.stop();
  await iamServer?.stop();
});

describe('local IAM', () => {
  it('creates a user under a path, with tags, an inline policy and keys; lists and reads them back', async () => {
    const key = await tenantUser('tenant_iam', prefixPolicy(SHARED, 'tenant_iam/'));
    assert.match(key.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
    assert.equal(key.secretAccessKey.length, 40);

    const { User } = await iam.send(new GetUserCommand({ UserName: 'tenant_iam' }));
    assert.equal(User?.Path, '/superfasttt/');
    assert.equal(User?.Arn, `arn:aws:iam::${iamServer.accountId}:user/superfasttt/tenant_iam`);
    assert.match(User?.UserId ?? '', /^AIDA/);
    assert.ok(User?.CreateDate instanceof Date);
    assert.deepEqual(User?.Tags, [{ Key: 'superfasttt:tenant', Value: 'tenant_iam' }]);

    await iam.send(new CreateUserCommand({ UserName: 'outsider' }));
    const scoped = await iam.send(new ListUsersCommand({ PathPrefix: '/superfasttt/' }));
    assert.ok(scoped.Users?.some((u) => u.UserName === 'tenant_iam'));
    assert.ok(!scoped.Users?.some((u) => u.UserName === 'outsider'));
    const all = await iam.send(new ListUsersCommand({}));
    assert.ok(all.Users?.some((u) => u.UserName === 'outsider'));

    const names = await iam.send(new ListUserPoliciesCommand({ UserName: 'tenant_iam' }));
    assert.deepEqual(names.PolicyNames, ['storage']);
    const doc = await iam.send(new GetUserPolicyCommand({ UserName: 'tenant_iam', PolicyName: 'storage' }));
    // IAM answers the document URL-encoded, as AWS does.
    assert.deepEqual(JSON.parse(decodeURIComponent(doc.PolicyDocument ?? '')), prefixPolicy(SHARED, 'tenant_iam/'));

    const keys = await iam.send(new ListAccessKeysCommand({ UserName: 'tenant_iam' }));
    assert.deepEqual(
      keys.AccessKeyMetadata?.map((k) => [k.AccessKeyId, k.Status]),
      [[key.accessKeyId, 'Active']],
    );
    assert.equal(iamServer.user('tenant_iam')?.keys.length, 1);
  });

  it("answers AWS's errors: EntityAlreadyExists, NoSuchEntity, LimitExceeded, DeleteConflict...", async () => {
    await tenantUser('tenant_err', bucketPolicy(OWN_A));
    assert.deepEqual(await failure(iam.send(new CreateUserCommand({ UserName: 'tenant_err' }))), {
      code: 'EntityAlreadyExists',
      status: 409,
    });
    assert.deepEqual(await failure(iam.send(new GetUserCommand({ UserName: 'nobody' }))), {
      code: 'NoSuchEntity',
      status: 404,
    });
    assert.equal((await failure(iam.send(new CreateAccessKeyCommand({ UserName: 'nobody' })))).code, 'NoSuchEntity');
    await iam.send(new CreateAccessKeyCommand({ UserName: 'tenant_err' }));
    assert.deepEqual(await failure(iam.send(new CreateAccessKeyCommand({ UserName: 'tenant_err' }))), {
      code: 'LimitExceeded',
      status: 409,
    });
    assert.equal((await failure(iam.send(new DeleteUserCommand({ UserName: 'tenant_err' })))).code, 'DeleteConflict');
    const bad = await failure(
      iam.send(
        new PutUserPolicyCommand({ UserName: 'tenant_err', PolicyName: 'bad', PolicyDocument: '{"Statement": 3}' }),
      ),
    );
    assert.deepEqual(bad, { code: 'MalformedPolicyDocument', status: 400 });
    assert.equal(
      (await failure(iam.send(new GetUserPolicyCommand({ UserName: 'tenant_err', PolicyName: 'nope' })))).code,
      'NoSuchEntity',
    );
    assert.equal((await failure(iam.send(new CreateUserCommand({ UserName: 'bad/name' })))).code, 'ValidationError');

    // Cleaned up in AWS's order, the user goes.
    const { AccessKeyMetadata = [] } = await iam.send(new ListAccessKeysCommand({ UserName: 'tenant_err' }));
    for (const { AccessKeyId } of AccessKeyMetadata) {
      await iam.send(new DeleteAccessKeyCommand({ UserName: 'tenant_err', AccessKeyId }));
    }
    assert.equal((await failure(iam.send(new DeleteUserCommand({ UserName: 'tenant_err' })))).code, 'DeleteConflict');
    await iam.send(new DeleteUserPolicyCommand({ UserName: 'tenant_err', PolicyName: 'storage' }));
    await iam.send(new DeleteUserCommand({ UserName: 'tenant_err' }));
    assert.equal((await failure(iam.send(new GetUserCommand({ UserName: 'tenant_err' })))).code, 'NoSuchEntity');
  });

  it('refuses a wrong admin key: unknown id, wrong secret; and a tenant key without IAM rights', async () => {
    const unknown = iamClient({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'x'.repeat(40) });
    assert.deepEqual(await failure(unknown.send(new ListUsersCommand({}))), {
      code: 'InvalidClientTokenId',
      status: 403,
    });
    const wrongSecret = iamClient({ ...iamServer.admin, secretAccessKey: 'y'.repeat(40) });
    assert.deepEqual(await failure(wrongSecret.send(new ListUsersCommand({}))), {
      code: 'SignatureDoesNotMatch',
      status: 403,
    });
    const tenant = iamClient(await tenantUser('tenant_noiam', bucketPolicy(OWN_A)));
    assert.deepEqual(await failure(tenant.send(new CreateUserCommand({ UserName: 'escalate' }))), {
      code: 'AccessDenied',
      status: 403,
    });
    assert.equal(iamServer.user('escalate'), undefined);
    // Over HTTPS too (the harness's certificate).
    const overTls = iamClient(iamServer.admin, iamServer.httpsUrl);
    assert.equal((await overTls.send(new GetUserCommand({ UserName: 'tenant_noiam' }))).User?.Path, '/superfasttt/');
  });
});

describe('S3 front enforcing the IAM policies', () => {
  it('prefix mode: own prefix allowed; the neighbour, the bucket root and other buckets refused', async () => {
    const key = await tenantUser('tenant_a', prefixPolicy(SHARED, 'tenant_a/'));
    const a = s3Client(key);

    await put(a, SHARED, 'tenant_a/probe.txt', 'hello');
    assert.equal(await get(a, SHARED, 'tenant_a/probe.txt'), 'hello');
    await a.send(new HeadObjectCommand({ Bucket: SHARED, Key: 'tenant_a/probe.txt' }));
    assert.deepEqual(await list(a, SHARED, 'tenant_a/'), ['tenant_a/probe.txt']);
    await del(a, SHARED, 'tenant_a/probe.txt');
    assert.deepEqual(await list(a, SHARED, 'tenant_a/'), []);

    await denied(get(a, SHARED, 'tenant_b/secret.txt'));
    await denied(put(a, SHARED, 'tenant_b/planted.txt'));
    await denied(del(a, SHARED, 'tenant_b/secret.txt'));
    await denied(list(a, SHARED, 'tenant_b/'));
    await denied(list(a, SHARED, 'tenant_'));
    await denied(list(a, SHARED));
    await denied(a.send(new HeadBucketCommand({ Bucket: SHARED })));
    await denied(put(a, SHARED, 'elsewhere.txt'));
    await denied(
      a.send(
        new DeleteObjectsCommand({
          Bucket: SHARED,
          Delete: { Objects: [{ Key: 'tenant_a/x' }, { Key: 'tenant_b/secret.txt' }] },
        }),
      ),
    );
    await denied(get(a, OTHER, 'tenant_a/elsewhere.txt'));
    await denied(put(a, OTHER, 'tenant_a/x.txt'));
    await denied(list(a, OTHER, 'tenant_a/'));
    await denied(a.send(new CreateBucketCommand({ Bucket: 'superfasttt-mine' })));
    await denied(a.send(new DeleteBucketCommand({ Bucket: OWN_B })));

    // Nothing of the neighbour's moved.
    assert.equal(await get(admin, SHARED, 'tenant_b/secret.txt'), 'tenant b');
    assert.deepEqual(await list(admin, SHARED), ['tenant_b/secret.txt']);
    const refused = s3Server.requests.filter((r) => r.accessKeyId === key.accessKeyId && r.status === 403);
    assert.ok(refused.length >= 12);
    assert.deepEqual(
      s3Server.requests.find((r) => r.accessKeyId === key.accessKeyId && r.path.includes('prefix=tenant_b'))
        ?.authorizations,
      [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${SHARED}`, context: { 's3:prefix': 'tenant_b/' } }],
    );
  });

  it('bucket mode: the whole own bucket allowed, every other bucket refused', async () => {
    const a = s3Client(await tenantUser('tenant_own_a', bucketPolicy(OWN_A)));
    await put(a, OWN_A, 'a.txt', 'mine');
    await put(a, OWN_A, 'deep/b.txt', 'mine too');
    assert.deepEqual(await list(a, OWN_A), ['a.txt', 'deep/b.txt']);
    assert.deepEqual(await list(a, OWN_A, 'deep/'), ['deep/b.txt']);
    await a.send(new HeadBucketCommand({ Bucket: OWN_A }));
    assert.equal(await get(a, OWN_A, 'a.txt'), 'mine');
    await a.send(new DeleteObjectsCommand({ Bucket: OWN_A, Delete: { Objects: [{ Key: 'deep/b.txt' }] } }));
    await del(a, OWN_A, 'a.txt');
    assert.deepEqual(await list(a, OWN_A), []);

    await denied(list(a, OWN_B));
    await denied(get(a, OWN_B, 'b.txt'));
    await denied(put(a, OWN_B, 'planted.txt'));
    await denied(del(a, OWN_B, 'b.txt'));
    await denied(a.send(new HeadBucketCommand({ Bucket: OWN_B })));
    await denied(list(a, SHARED, 'tenant_b/'));
    await denied(a.send(new DeleteBucketCommand({ Bucket: OWN_A })));
    assert.deepEqual(await list(admin, OWN_B), ['b.txt']);
  });

  it('the admin key may do everything', async () => {
    await admin.send(new CreateBucketCommand({ Bucket: 'superfasttt-admin' }));
    await put(admin, 'superfasttt-admin', 'x.txt', 'admin');
    await put(admin, SHARED, 'tenant_b/by-admin.txt', 'admin');
    assert.deepEqual(await list(admin, SHARED, 'tenant_b/'), ['tenant_b/by-admin.txt', 'tenant_b/secret.txt']);
    await del(admin, SHARED, 'tenant_b/by-admin.txt');
    await del(admin, 'superfasttt-admin', 'x.txt');
    await admin.send(new HeadBucketCommand({ Bucket: OTHER }));
    await admin.send(new DeleteBucketCommand({ Bucket: 'superfasttt-admin' }));
  });

  it('refuses a wrong secret, an unknown key, an inactive key and a deleted key; a second key works', async () => {
    const key = await tenantUser('tenant_keys', prefixPolicy(SHARED, 'tenant_keys/'));
    await put(s3Client(key), SHARED, 'tenant_keys/ok.txt');

    await denied(
      put(s3Client({ ...key, secretAccessKey: 'z'.repeat(40) }), SHARED, 'tenant_keys/x'),
      'SignatureDoesNotMatch',
    );
    await denied(
      put(s3Client({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'z'.repeat(40) }), SHARED, 'tenant_keys/x'),
      'InvalidAccessKeyId',
    );

    await iam.send(
      new UpdateAccessKeyCommand({ UserName: 'tenant_keys', AccessKeyId: key.accessKeyId, Status: 'Inactive' }),
    );
    await denied(get(s3Client(key), SHARED, 'tenant_keys/ok.txt'), 'InvalidAccessKeyId');
    await iam.send(
      new UpdateAccessKeyCommand({ UserName: 'tenant_keys', AccessKeyId: key.accessKeyId, Status: 'Active' }),
    );
    assert.equal(await get(s3Client(key), SHARED, 'tenant_keys/ok.txt'), 'x');

    // Rotation: a second key, then the first deleted.
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: 'tenant_keys' }));
    const second = { accessKeyId: AccessKey?.AccessKeyId ?? '', secretAccessKey: AccessKey?.SecretAccessKey ?? '' };
    assert.deepEqual(await failure(iam.send(new CreateAccessKeyCommand({ UserName: 'tenant_keys' }))), {
      code: 'LimitExceeded',
      status: 409,
    });
    await iam.send(new DeleteAccessKeyCommand({ UserName: 'tenant_keys', AccessKeyId: key.accessKeyId }));
    await denied(get(s3Client(key), SHARED, 'tenant_keys/ok.txt'), 'InvalidAccessKeyId');
    assert.equal(await get(s3Client(second), SHARED, 'tenant_keys/ok.txt'), 'x');
    await denied(get(s3Client(second), SHARED, 'tenant_b/secret.txt'));

    // A policy removed takes effect at once.
    await iam.send(new DeleteUserPolicyCommand({ UserName: 'tenant_keys', PolicyName: 'storage' }));
    await denied(get(s3Client(second), SHARED, 'tenant_keys/ok.txt'));
  });

  it('evaluates explicit denies and policy variables like AWS', async () => {
    const key = await tenantUser('tenant_var', {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 's3:*', Resource: `arn:aws:s3:::${SHARED}/\${aws:username}/*` },
        { Effect: 'Deny', Action: 's3:DeleteObject', Resource: '*' },
      ],
    });
    const v = s3Client(key);
    await put(v, SHARED, 'tenant_var/a.txt');
    await denied(put(v, SHARED, 'tenant_a/a.txt'));
    await denied(del(v, SHARED, 'tenant_var/a.txt'));
    assert.equal(await get(v, SHARED, 'tenant_var/a.txt'), 'x');
  });

  it('sets aws:SecureTransport from the connection: a TLS-only policy refuses plain HTTP', async () => {
    const key = await tenantUser('tenant_tls', {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: `arn:aws:s3:::${OWN_A}/tls/*` },
        {
          Effect: 'Deny',
          Action: 's3:*',
          Resource: '*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
      ],
    });
    await denied(put(s3Client(key), OWN_A, 'tls/a.txt'));
    const overTls = s3Client(key, s3Server.httpsEndpoint);
    await put(overTls, OWN_A, 'tls/a.txt', 'secure');
    assert.equal(await get(overTls, OWN_A, 'tls/a.txt'), 'secure');
    await del(admin, OWN_A, 'tls/a.txt');
  });
});
