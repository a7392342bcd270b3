// Per-tenant storage keys through IAM (issue 14): src/provision/storage-keys/iam.ts against the local IAM
// (test/harness/iam.ts) and the keys it issues proven by src/provision/storage-keys/prove.ts against the S3 front
// that enforces the IAM's policies (test/harness/s3-policy.ts). Real servers on loopback, no mocks.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { DEPLOYER_STORAGE_VARIABLES, type DeployerStorage } from '../src/config/targets.js';
import { StorageError } from '../src/errors.js';
import { type IamAccount, iamProvider } from '../src/provision/storage-keys/iam.js';
import { POLICY_NAME, tenantPolicy } from '../src/provision/storage-keys/policy.js';
import { type ProveTarget, proveKey } from '../src/provision/storage-keys/prove.js';
import type { IssuedKey, KeyScope } from '../src/provision/storage-keys/provider.js';
import { type IamServer, startIam } from './harness/iam.js';
import { type PolicyS3Server, startPolicyS3 } from './harness/s3-policy.js';

const SHARED = 'superfasttt-shared';
const OWN_A = 'superfasttt-tenant-a';
const OWN_B = 'superfasttt-tenant-b';

let iamServer: IamServer;
let s3Server: PolicyS3Server;
let account: IamAccount;
let target: ProveTarget;
const providers: Array<{ close(): void }> = [];
/** Every secret seen: none may appear in an error message. */
const secrets: string[] = [];

const signal = () => AbortSignal.timeout(60_000);
const FAST = { timeoutSec: 5, settleMs: 600 };

function provider(over: Partial<IamAccount> = {}) {
  const p = iamProvider({ ...account, ...over });
  providers.push(p);
  return p;
}

const prefixScope = (tenant: string): KeyScope => ({ tenant, mode: 'prefix', bucket: SHARED, prefix: `${tenant}/` });
const bucketScope = (tenant: string, bucket: string): KeyScope => ({ tenant, mode: 'bucket', bucket, prefix: '' });

/** The StorageError `call` fails with; its message and fix hold no secret. */
async function storageError(call: Promise<unknown>, pattern?: RegExp): Promise<StorageError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    assert.equal(error.exitCode, 6);
    const text = `${error.message}\n${error.fix ?? ''}`;
    for (const secret of secrets) assert.ok(!text.includes(secret), `a secret in: ${text}`);
    if (pattern) assert.match(text, pattern);
    return error;
  }
  assert.fail('the call succeeded');
}

async function created(key: Promise<IssuedKey>): Promise<IssuedKey> {
  const k = await key;
  secrets.push(k.secretAccessKey);
  assert.match(k.accessKeyId, /^AKIA/);
  assert.ok(k.createdAt && !Number.isNaN(Date.parse(k.createdAt)));
  return k;
}

before(async () => {
  iamServer = await startIam();
  s3Server = await startPolicyS3(iamServer);
  secrets.push(iamServer.admin.secretAccessKey);
  const deployer: DeployerStorage = {
    credentials: iamServer.admin,
    timeoutSec: 5,
    vars: DEPLOYER_STORAGE_VARIABLES,
    endpoint: s3Server.httpEndpoint,
    region: s3Server.region,
    forcePathStyle: true,
  };
  account = { ...deployer, iamEndpoint: iamServer.url };
  target = { endpoint: s3Server.httpEndpoint, region: s3Server.region, forcePathStyle: true, neighbourBucket: SHARED };
  const admin = new S3Client({
    region: s3Server.region,
    endpoint: s3Server.httpEndpoint,
    forcePathStyle: true,
    credentials: iamServer.admin,
  });
  for (const Bucket of [SHARED, OWN_A, OWN_B]) await admin.send(new CreateBucketCommand({ Bucket }));
  await admin.send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_b/secret.txt', Body: 'b' }));
  admin.destroy();
});

after(async () => {
  for (const p of providers) p.close();
  await s3Server?.stop();
  await iamServer?.stop();
});

for (const mode of ['prefix', 'bucket'] as const) {
  describe(`IAM provider, ${mode} mode`, () => {
    const a = mode === 'prefix' ? prefixScope(`tenant_${mode}_a`) : bucketScope(`tenant_${mode}_a`, OWN_A);
    const b = mode === 'prefix' ? prefixScope(`tenant_${mode}_b`) : bucketScope(`tenant_${mode}_b`, OWN_B);

    it('creates the identity once, its policy rewritten when the scope changes; keys proven and limited', async () => {
      const p = provider();
      assert.deepEqual(await p.ensureIdentity(a, signal()), { created: true });
      assert.deepEqual(await p.ensureIdentity(a, signal()), { created: false });
      const user = iamServer.user(a.tenant);
      assert.equal(user?.path, '/superfasttt/');
      assert.deepEqual(user?.tags, [{ Key: 'superfasttt:tenant', Value: a.tenant }]);
      assert.deepEqual([...(user?.policies.keys() ?? [])], [POLICY_NAME]);
      assert.deepEqual(JSON.parse(user?.policies.get(POLICY_NAME) ?? ''), tenantPolicy(a));

      // The same policy is not put again; another scope rewrites it, and back.
      const puts = () => iamServer.requests.filter((r) => r.action === 'PutUserPolicy').length;
      const before = puts();
      await p.ensureIdentity(a, signal());
      assert.equal(puts(), before);
      const moved: KeyScope = mode === 'prefix' ? { ...a, bucket: OWN_B } : { ...a, bucket: OWN_B };
      await p.ensureIdentity(moved, signal());
      assert.equal(puts(), before + 1);
      assert.deepEqual(JSON.parse(iamServer.user(a.tenant)?.policies.get(POLICY_NAME) ?? ''), tenantPolicy(moved));
      await p.ensureIdentity(a, signal());
      assert.equal(puts(), before + 2);

      const first = await created(p.createKey(a, signal()));
      assert.match(await proveKey(first, a, target, signal(), FAST), /probe written, read back and deleted.*refused/);

      // Tenant A's key does not reach tenant B.
      await p.ensureIdentity(b, signal());
      await storageError(proveKey(first, b, target, signal(), FAST), /new key of tenant_\w+_b does not work/);

      const second = await created(p.createKey(a, signal()));
      await proveKey(second, a, target, signal(), FAST);
      assert.deepEqual(
        (await p.listKeys(a, signal())).map((k) => [k.accessKeyId, k.active]),
        [
          [first.accessKeyId, true],
          [second.accessKeyId, true],
        ],
      );
      await storageError(p.createKey(a, signal()), /two access keys.*--revoke-old-storage-keys/s);

      await p.deleteKey(a, first.accessKeyId, signal());
      await p.deleteKey(a, first.accessKeyId, signal()); // gone already: fine
      await storageError(proveKey(first, a, target, signal(), FAST), /access key id is unknown/);
      await proveKey(second, a, target, signal(), FAST);
      assert.deepEqual(
        (await p.listKeys(a, signal())).map((k) => k.accessKeyId),
        [second.accessKeyId],
      );

      await p.deleteIdentity(a, signal());
      assert.equal(iamServer.user(a.tenant), undefined);
      await storageError(proveKey(second, a, target, signal(), FAST));
      await p.deleteIdentity(a, signal()); // gone already: fine
      assert.deepEqual(await p.listKeys(a, signal()), []);
      await p.deleteKey(a, second.accessKeyId, signal());
      await p.deleteIdentity(b, signal());
    });
  });
}

describe('IAM provider refusals', () => {
  it('never takes over a user outside /superfasttt/, or tagged for another tenant', async () => {
    const iam = new IAMClient({ region: 'us-east-1', endpoint: iamServer.url, credentials: iamServer.admin });
    await iam.send(new CreateUserCommand({ UserName: 'tenant_outsider' }));
    await iam.send(
      new CreateUserCommand({
        UserName: 'tenant_tagged',
        Path: '/superfasttt/',
        Tags: [{ Key: 'superfasttt:tenant', Value: 'tenant_other' }],
      }),
    );
    iam.destroy();
    const p = provider();
    for (const tenant of ['tenant_outsider', 'tenant_tagged']) {
      const scope = prefixScope(tenant);
      for (const call of [
        () => p.ensureIdentity(scope, signal()),
        () => p.createKey(scope, signal()),
        () => p.deleteKey(scope, 'AKIAAAAAAAAAAAAAAAAA', signal()),
        () => p.deleteIdentity(scope, signal()),
      ]) {
        await storageError(call(), new RegExp(`IAM user ${tenant} .*left untouched`));
      }
      assert.equal(iamServer.user(tenant)?.policies.size, 0);
      assert.equal(iamServer.user(tenant)?.keys.length, 0);
    }
  });

  it('refuses a key reaching outside its scope (proveKey), a foreign inline policy (ensureIdentity)', async () => {
    const iam = new IAMClient({ region: 'us-east-1', endpoint: iamServer.url, credentials: iamServer.admin });
    const wide = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] };
    const tenant = 'tenant_wide';
    await iam.send(
      new CreateUserCommand({
        UserName: tenant,
        Path: '/superfasttt/',
        Tags: [{ Key: 'superfasttt:tenant', Value: tenant }],
      }),
    );
    await iam.send(
      new PutUserPolicyCommand({ UserName: tenant, PolicyName: 'extra', PolicyDocument: JSON.stringify(wide) }),
    );
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: tenant }));
    iam.destroy();
    const key = { accessKeyId: AccessKey?.AccessKeyId ?? '', secretAccessKey: AccessKey?.SecretAccessKey ?? '' };
    secrets.push(key.secretAccessKey);
    await storageError(
      proveKey(key, prefixScope(tenant), target, signal(), FAST),
      /reaches outside superfasttt-shared\/tenant_wide\/: PutObject .*ListBuckets allowed; refusing to give it/,
    );
    await storageError(proveKey(key, bucketScope(tenant, OWN_A), target, signal(), FAST), /reaches outside bucket/);
    // Nothing planted stays behind.
    const admin = new S3Client({
      region: s3Server.region,
      endpoint: s3Server.httpEndpoint,
      forcePathStyle: true,
      credentials: iamServer.admin,
    });
    for (const Bucket of [SHARED, OWN_A]) {
      const listed = await admin.send(new ListObjectsV2Command({ Bucket }));
      assert.deepEqual(
        (listed.Contents ?? []).map((o) => o.Key).filter((k) => k?.includes('superfasttt-')),
        [],
      );
    }
    admin.destroy();
    const p = provider();
    await storageError(
      p.ensureIdentity(prefixScope(tenant), signal()),
      /inline policies provision did not give it \(extra\)/,
    );
    await p.deleteIdentity(prefixScope(tenant), signal());
    assert.equal(iamServer.user(tenant), undefined);
  });

  it('a wrong deployer key: a clear StorageError naming the variable, no secret', async () => {
    const scope = prefixScope('tenant_wrong');
    const unknown = provider({ credentials: { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'q'.repeat(40) } });
    secrets.push('q'.repeat(40));
    await storageError(unknown.ensureIdentity(scope, signal()), /unknown to IAM[\s\S]*PROVISION_STORAGE_ACCESS_KEY/);
    const wrong = provider({ credentials: { ...iamServer.admin, secretAccessKey: 'w'.repeat(40) } });
    secrets.push('w'.repeat(40));
    await storageError(wrong.ensureIdentity(scope, signal()), /signature[\s\S]*PROVISION_STORAGE_SECRET_KEY/);
    assert.equal(iamServer.user('tenant_wrong'), undefined);
  });

  it('a deployer without IAM rights, and an unreachable IAM: named', async () => {
    const p = provider();
    const scope = prefixScope('tenant_weak');
    await p.ensureIdentity(scope, signal());
    const tenantKey = await created(p.createKey(scope, signal()));
    const weak = provider({ credentials: tenantKey });
    await storageError(
      weak.ensureIdentity(prefixScope('tenant_escalate'), signal()),
      /lacks iam:GetUser[\s\S]*superfasttt/,
    );
    const down = provider({ iamEndpoint: 'http://127.0.0.1:1' });
    await storageError(down.ensureIdentity(scope, signal()), /unreachable \(ECONNREFUSED\)/);
    await p.deleteIdentity(scope, signal());
  });
});
