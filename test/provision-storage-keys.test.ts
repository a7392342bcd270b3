// Per-tenant storage keys through `provision` (issue 14), end to end with real servers: PostgreSQL, the local IAM
// (test/harness/iam.ts) and the S3 front that enforces its policies with AWS's evaluation logic
// (test/harness/s3-policy.ts). The built CLI runs as an operator runs it; every key it writes is then tried
// directly against the front, and the instances bootstrap from their .env with those keys.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { deployerIamPolicy, deployerS3Policy } from '../src/provision/storage-keys/policy.js';
import { assertExit, assertNoSecrets, type Env, runCli, type RunResult } from './harness/cli.js';
import { type IamServer, startIam } from './harness/iam.js';
import { writeIamKeyCommand } from './harness/key-command.js';
import { tempDir } from './harness/net.js';
import { type PgServer, startPostgres } from './harness/postgres.js';
import { type EnvFile, readEnvFile } from './harness/provisioned.js';
import { type PolicyS3Server, startPolicyS3 } from './harness/s3-policy.js';

const SHARED = 'superfasttt-central';
const DEPLOYER_PASSWORD = 'Deployer-Keys-Password-7';

let pg: PgServer;
let iam: IamServer;
let s3: PolicyS3Server;
let admin: S3Client;
let base: Env;
const dir = tempDir('sf-keys-');
const outDir = join(dir, 'envs');
const outputs: RunResult[] = [];
const clients: S3Client[] = [];

before(async () => {
  pg = await startPostgres({ tls: false });
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  await pg.admin.unsafe('create database tenants owner deployer');
  iam = await startIam();
  s3 = await startPolicyS3(iam);
  admin = client(iam.admin);
  await admin.send(new CreateBucketCommand({ Bucket: SHARED }));
  base = {
    PROVISION_DATABASE_URL: pg.url('deployer', DEPLOYER_PASSWORD, { database: 'tenants' }),
    PROVISION_STORAGE_ACCESS_KEY: iam.admin.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: iam.admin.secretAccessKey,
    PROVISION_STORAGE_ENDPOINT: s3.httpEndpoint,
    PROVISION_STORAGE_REGION: s3.region,
    PROVISION_STORAGE_BUCKET: SHARED,
    PROVISION_STORAGE_IAM_ENDPOINT: iam.url,
    PROVISION_STORAGE_KEY_SETTLE: '1',
  };
});

after(async () => {
  // No output of any run holds a secret: the deployer's, a tenant's key or password.
  const secrets = [DEPLOYER_PASSWORD, iam.admin.secretAccessKey];
  for (const user of iam.users()) for (const key of user.keys) secrets.push(key.secretAccessKey);
  for (const r of outputs) assertNoSecrets(r, secrets);
  for (const c of clients) c.destroy();
  await s3?.stop();
  await iam?.stop();
  await pg?.stop();
});

function client(key: { accessKeyId: string; secretAccessKey: string }): S3Client {
  const c = new S3Client({
    region: s3.region,
    endpoint: s3.httpEndpoint,
    forcePathStyle: true,
    credentials: key,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  clients.push(c);
  return c;
}

async function provision(args: string[], env: Env = {}): Promise<RunResult> {
  const r = await runCli({ ...base, ...env }, { args: ['provision', '--out-dir', outDir, ...args] });
  outputs.push(r);
  return r;
}

const envOf = (name: string): EnvFile => readEnvFile(join(outDir, `${name}.env`));
const keyOf = (env: EnvFile) => ({
  accessKeyId: env.STORAGE_ACCESS_KEY ?? '',
  secretAccessKey: env.STORAGE_SECRET_KEY ?? '',
});
const creates = () => iam.requests.filter((r) => r.action === 'CreateAccessKey' && r.status === 200).length;

/** A tenants file of `names`, each with a super admin so that its instance can bootstrap. */
function tenantsFile(file: string, names: string[]): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    `name,email,first_name,last_name\n${names.map((n) => `${n},admin@${n}.example,Ada,Lovelace`).join('\n')}\n`,
  );
  return path;
}

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
async function refused(call: Promise<unknown>, what: string) {
  await assert.rejects(call, (e) => status(e) === 403, `${what}: not refused`);
}

/** What `key` may do on the folder `own/` of SHARED, and that it reaches nothing of `other/` nor the root. */
async function assertReachesOnlyFolder(key: ReturnType<typeof keyOf>, own: string, other: string) {
  const c = client(key);
  await c.send(new PutObjectCommand({ Bucket: SHARED, Key: `${own}/file.txt`, Body: 'mine' }));
  const got = await c.send(new GetObjectCommand({ Bucket: SHARED, Key: `${own}/file.txt` }));
  assert.equal(await got.Body?.transformToString(), 'mine');
  const listed = await c.send(new ListObjectsV2Command({ Bucket: SHARED, Prefix: `${own}/` }));
  assert.ok(listed.Contents?.some((o) => o.Key === `${own}/file.txt`));
  await c.send(new DeleteObjectCommand({ Bucket: SHARED, Key: `${own}/file.txt` }));

  await admin.send(new PutObjectCommand({ Bucket: SHARED, Key: `${other}/secret.txt`, Body: 'theirs' }));
  await refused(c.send(new ListObjectsV2Command({ Bucket: SHARED, Prefix: `${other}/` })), 'list the neighbour');
  await refused(c.send(new GetObjectCommand({ Bucket: SHARED, Key: `${other}/secret.txt` })), 'read the neighbour');
  await refused(c.send(new PutObjectCommand({ Bucket: SHARED, Key: `${other}/x`, Body: 'x' })), 'write the neighbour');
  await refused(c.send(new DeleteObjectCommand({ Bucket: SHARED, Key: `${other}/secret.txt` })), 'delete theirs');
  await refused(c.send(new ListObjectsV2Command({ Bucket: SHARED })), 'list the root');
  await refused(c.send(new PutObjectCommand({ Bucket: SHARED, Key: 'root.txt', Body: 'x' })), 'write the root');
  await refused(c.send(new ListBucketsCommand({})), 'list the buckets');
  // A prefix that merely starts like its own (tenant_alpha → tenant_alphabet/) is not its own.
  await refused(c.send(new PutObjectCommand({ Bucket: SHARED, Key: `${own}bet/x`, Body: 'x' })), 'a longer name');
  const theirs = await admin.send(new GetObjectCommand({ Bucket: SHARED, Key: `${other}/secret.txt` }));
  assert.equal(await theirs.Body?.transformToString(), 'theirs');
}

describe('provision --storage-keys per-tenant (IAM)', () => {
  const file = () => tenantsFile('alpha-beta.csv', ['alpha', 'beta']);
  let first: Record<string, EnvFile>;

  before(async () => {
    const r = await provision(['--tenants', file(), '--storage-keys', 'per-tenant']);
    assertExit(
      r,
      0,
      /alpha: created, .*storage identity tenant_alpha created \(IAM at http:\/\/127\.0\.0\.1:\d+\); new key AKIA\w+/,
      /new key AKIA\w+ of tenant_alpha: probe written, read back and deleted in superfasttt-central\/tenant_alpha\//,
      /refused outside it \(PutObject superfasttt-central\/superfasttt-probe-\w+\/\.superfasttt-key-probe, /,
      /beta: created/,
    );
    first = { alpha: envOf('alpha'), beta: envOf('beta') };
  });

  it('gives each tenant its own IAM user under /superfasttt/ and its only key, written into its .env', () => {
    for (const name of ['alpha', 'beta']) {
      const env = first[name] as EnvFile;
      const user = iam.user(`tenant_${name}`);
      assert.equal(user?.path, '/superfasttt/');
      assert.deepEqual(
        user?.keys.map((k) => k.accessKeyId),
        [env.STORAGE_ACCESS_KEY],
      );
      assert.notEqual(env.STORAGE_ACCESS_KEY, iam.admin.accessKeyId);
      assert.equal(env.STORAGE_BUCKET, SHARED);
      assert.equal(env.STORAGE_PREFIX, `tenant_${name}/`);
    }
    assert.notEqual(first.alpha?.STORAGE_ACCESS_KEY, first.beta?.STORAGE_ACCESS_KEY);
  });

  it("A's key reaches A's folder and nothing else: B's folder, the bucket root, the bucket list", async () => {
    await assertReachesOnlyFolder(keyOf(first.alpha as EnvFile), 'tenant_alpha', 'tenant_beta');
    await assertReachesOnlyFolder(keyOf(first.beta as EnvFile), 'tenant_beta', 'tenant_alpha');
  });

  it('each instance bootstraps from its .env with its own key (the bootstrap storage probe passes)', async () => {
    const r = await runCli(first.alpha as EnvFile);
    outputs.push(r);
    assertExit(r, 0, /storage.*superfasttt-central\/tenant_alpha\//, /super admin admin@alpha\.example created/);
  });

  it('a second run keeps every working key: nothing created, the .env files byte for byte the same', async () => {
    const before = creates();
    const text = readFileSync(join(outDir, 'alpha.env'), 'utf8');
    const r = await provision(['--tenants', file(), '--storage-keys', 'per-tenant']);
    assertExit(r, 0, /alpha: unchanged, .*storage identity tenant_alpha in place; key AKIA\w+ of the \.env proven/);
    assert.equal(creates(), before);
    assert.equal(readFileSync(join(outDir, 'alpha.env'), 'utf8'), text);
  });

  it('rotation: a new proven key in the .env, the password kept, the old key valid until revoked', async () => {
    const old = first.alpha as EnvFile;
    const r = await provision(['--tenant', 'alpha', '--storage-keys', 'per-tenant', '--rotate-storage-key']);
    assertExit(
      r,
      0,
      new RegExp(
        `alpha: rotated, .*new key AKIA\\w+ of tenant_alpha: probe written.*; ${old.STORAGE_ACCESS_KEY} stays valid`,
      ),
      /rewritten with its new storage key, its login verified/,
    );
    const now = envOf('alpha');
    assert.notEqual(now.STORAGE_ACCESS_KEY, old.STORAGE_ACCESS_KEY);
    assert.equal(now.DATABASE_URL, old.DATABASE_URL);
    assert.equal(now.AUTO_SUPERADMIN_PASSWORD, old.AUTO_SUPERADMIN_PASSWORD);
    assert.equal(iam.user('tenant_alpha')?.keys.length, 2);
    // Running instances still hold the old key: it works, as does the new one.
    for (const key of [keyOf(old), keyOf(now)])
      await client(key).send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_alpha/still.txt', Body: 'x' }));

    // Interrupted and run again: the tenant is rotated already, nothing is made.
    const before = creates();
    const again = await provision(['--tenant', 'alpha', '--storage-keys', 'per-tenant', '--rotate-storage-key']);
    assertExit(again, 0, /alpha: unchanged, .*not rotated: rotated already \(the \.env holds its newest key/);
    assert.equal(creates(), before);
    assert.equal(envOf('alpha').STORAGE_ACCESS_KEY, now.STORAGE_ACCESS_KEY);

    // Revoked: the old key is deleted, the .env's one still works.
    const revoke = await provision(['--tenant', 'alpha', '--storage-keys', 'per-tenant', '--revoke-old-storage-keys']);
    assertExit(
      revoke,
      0,
      new RegExp(`key ${now.STORAGE_ACCESS_KEY} of the \\.env proven, revoked ${old.STORAGE_ACCESS_KEY}`),
    );
    assert.deepEqual(
      iam.user('tenant_alpha')?.keys.map((k) => k.accessKeyId),
      [now.STORAGE_ACCESS_KEY],
    );
    await refused(
      client(keyOf(old)).send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_alpha/x', Body: 'x' })),
      'the revoked key',
    );
    await client(keyOf(now)).send(new DeleteObjectCommand({ Bucket: SHARED, Key: 'tenant_alpha/still.txt' }));
  });

  it('revoking is refused, nothing deleted, when the key of the .env does not work', async () => {
    await provision(['--tenant', 'beta', '--storage-keys', 'per-tenant', '--rotate-storage-key']);
    const envPath = join(outDir, 'beta.env');
    const good = readFileSync(envPath, 'utf8');
    const held = envOf('beta');
    // Same key id, a wrong secret: the .env names a key of the identity that cannot sign.
    writeFileSync(
      envPath,
      good.replace(`STORAGE_SECRET_KEY=${held.STORAGE_SECRET_KEY}`, 'STORAGE_SECRET_KEY=WrongSecret00000'),
    );
    const keysBefore = iam.user('tenant_beta')?.keys.map((k) => k.accessKeyId);
    const r = await provision(['--tenant', 'beta', '--storage-keys', 'per-tenant', '--revoke-old-storage-keys']);
    assertExit(
      r,
      6,
      /beta: failed, .*the key of the \.env of tenant_beta does not work.*revoking refused, no key was revoked/,
    );
    assert.deepEqual(
      iam.user('tenant_beta')?.keys.map((k) => k.accessKeyId),
      keysBefore,
    );
    assert.equal(keysBefore?.length, 2);
    writeFileSync(envPath, good);
    chmodSync(envPath, 0o600);
  });

  it('an IAM user of that name made by someone else is never taken over: the tenant fails', async () => {
    const sdk = new IAMClient({ region: iam.region, endpoint: iam.url, credentials: iam.admin });
    await sdk.send(new CreateUserCommand({ UserName: 'tenant_gamma', Path: '/' }));
    sdk.destroy();
    const r = await provision(['--tenant', 'gamma', '--storage-keys', 'per-tenant']);
    assertExit(
      r,
      6,
      /gamma: failed, .*the IAM user tenant_gamma .*cannot be the storage identity of tenant_gamma/,
      /it exists outside \/superfasttt\//,
    );
    assert.equal(existsSync(join(outDir, 'gamma.env')), false);
    assert.equal(iam.user('tenant_gamma')?.keys.length, 0);
    assert.equal(iam.user('tenant_gamma')?.policies.size, 0);
  });

  it('deprovision --purge-storage deletes the identity and its keys with the storage', async () => {
    const key = keyOf(envOf('beta'));
    const r = await runCli(base, {
      args: ['deprovision', '--tenant', 'beta', '--yes', '--purge-storage', '--storage-keys', 'per-tenant'],
    });
    outputs.push(r);
    assertExit(
      r,
      0,
      /beta: schema tenant_beta and role tenant_beta removed; storage identity tenant_beta and its keys deleted/,
    );
    assert.equal(iam.user('tenant_beta'), undefined);
    await refused(
      client(key).send(new ListObjectsV2Command({ Bucket: SHARED, Prefix: 'tenant_beta/' })),
      'a deleted key',
    );
  });
});

describe('a deployer holding only the documented policies (an IAM user, not the account root)', () => {
  let deployer: Env;

  before(async () => {
    const sdk = new IAMClient({ region: iam.region, endpoint: iam.url, credentials: iam.admin });
    await sdk.send(new CreateUserCommand({ UserName: 'deployer', Path: '/ops/' }));
    for (const [PolicyName, doc] of [
      ['iam', deployerIamPolicy()],
      ['s3', deployerS3Policy(SHARED, true)],
    ] as const)
      await sdk.send(
        new PutUserPolicyCommand({ UserName: 'deployer', PolicyName, PolicyDocument: JSON.stringify(doc) }),
      );
    const { AccessKey } = await sdk.send(new CreateAccessKeyCommand({ UserName: 'deployer' }));
    sdk.destroy();
    deployer = {
      PROVISION_STORAGE_ACCESS_KEY: AccessKey?.AccessKeyId,
      PROVISION_STORAGE_SECRET_KEY: AccessKey?.SecretAccessKey,
    };
  });

  it('provisions, proves, rotates, revokes and deprovisions per-tenant keys, in both storage modes', async () => {
    const keys = ['--storage-keys', 'per-tenant'];
    assertExit(await provision(['--tenant', 'theta', ...keys], deployer), 0, /theta: created, .*new key AKIA\w+/);
    assertExit(
      await provision(['--tenant', 'iota', '--storage-mode', 'bucket', ...keys], deployer),
      0,
      /iota: created, .*bucket superfasttt-iota created.*new key AKIA\w+/,
    );
    assertExit(await provision(['--tenant', 'theta', ...keys, '--rotate-storage-key'], deployer), 0, /theta: rotated/);
    assertExit(await provision(['--tenant', 'theta', ...keys, '--revoke-old-storage-keys'], deployer), 0, /revoked/);
    for (const [name, mode] of [
      ['theta', 'prefix'],
      ['iota', 'bucket'],
    ] as const) {
      const args = ['deprovision', '--tenant', name, '--storage-mode', mode, '--yes', '--purge-storage', ...keys];
      const r = await runCli({ ...base, ...deployer }, { args });
      outputs.push(r);
      assertExit(r, 0, new RegExp(`storage identity tenant_${name} and its keys deleted`));
      assert.equal(iam.user(`tenant_${name}`), undefined);
    }
  });

  it('recognises a user of the same name elsewhere as not its own, and cannot touch it', async () => {
    const sdk = new IAMClient({ region: iam.region, endpoint: iam.url, credentials: iam.admin });
    await sdk.send(new CreateUserCommand({ UserName: 'tenant_kappa', Path: '/people/' }));
    sdk.destroy();
    const r = await provision(['--tenant', 'kappa', '--storage-keys', 'per-tenant'], deployer);
    assertExit(r, 6, /the IAM user tenant_kappa .*it exists outside \/superfasttt\/ \(path \/people\/\)/);
    assert.equal(iam.user('tenant_kappa')?.keys.length, 0);
    // Its rights stop there even if provision did not: no key can be made for that user.
    const own = new IAMClient({
      region: iam.region,
      endpoint: iam.url,
      credentials: {
        accessKeyId: deployer.PROVISION_STORAGE_ACCESS_KEY ?? '',
        secretAccessKey: deployer.PROVISION_STORAGE_SECRET_KEY ?? '',
      },
    });
    await assert.rejects(own.send(new CreateAccessKeyCommand({ UserName: 'tenant_kappa' })), /not authorized/);
    own.destroy();
  });
});

describe('the identity of a deprovisioned tenant', () => {
  it('deprovision without --purge-storage still deletes it; the storage stays, for the deployer only', async () => {
    assertExit(await provision(['--tenant', 'lambda', '--storage-keys', 'per-tenant']), 0, /lambda: created/);
    const key = keyOf(envOf('lambda'));
    const r = await runCli(base, {
      args: ['deprovision', '--tenant', 'lambda', '--yes', '--storage-keys', 'per-tenant'],
    });
    outputs.push(r);
    assertExit(r, 0, /lambda: schema tenant_lambda and role tenant_lambda removed; storage identity tenant_lambda/);
    assert.equal(iam.user('tenant_lambda'), undefined);
    await refused(client(key).send(new ListObjectsV2Command({ Bucket: SHARED, Prefix: 'tenant_lambda/' })), 'its key');
    // The storage itself was left alone.
    const kept = await admin.send(new ListObjectsV2Command({ Bucket: SHARED, Prefix: 'tenant_lambda/' }));
    assert.ok((kept.KeyCount ?? 0) > 0);
  });

  it("left behind (an earlier tenant's), its keys are deleted before a new tenant of that name gets one", async () => {
    // As an identity an older version left: ours (path and tag), with a key nobody's .env holds.
    const sdk = new IAMClient({ region: iam.region, endpoint: iam.url, credentials: iam.admin });
    await sdk.send(
      new CreateUserCommand({
        UserName: 'tenant_mu',
        Path: '/superfasttt/',
        Tags: [{ Key: 'superfasttt:tenant', Value: 'tenant_mu' }],
      }),
    );
    const { AccessKey: stale } = await sdk.send(new CreateAccessKeyCommand({ UserName: 'tenant_mu' }));
    sdk.destroy();
    const r = await provision(['--tenant', 'mu', '--storage-keys', 'per-tenant']);
    assertExit(r, 0, new RegExp(`mu: created, .*deleted ${stale?.AccessKeyId}, key\\(s\\) of the identity its \\.env`));
    assert.deepEqual(
      iam.user('tenant_mu')?.keys.map((k) => k.accessKeyId),
      [envOf('mu').STORAGE_ACCESS_KEY],
    );
  });
});

describe('moving a tenant from the shared keys to its own', () => {
  it('rewrites its .env with a key of its own, its database password kept, and it still boots', async () => {
    const file = tenantsFile('delta.csv', ['delta']);
    assertExit(await provision(['--tenants', file]), 0, /delta: created, .*the instance gets the shared S3 keys/);
    const shared = envOf('delta');
    assert.equal(shared.STORAGE_ACCESS_KEY, iam.admin.accessKeyId);

    const r = await provision(['--tenants', file], { PROVISION_STORAGE_KEYS: 'per-tenant' });
    assertExit(
      r,
      0,
      // The deployer's access key id is masked, as all its credentials are.
      /delta: rotated, .*it replaces the \.env's key \*\*\*, not one of the identity's/,
    );
    const own = envOf('delta');
    assert.notEqual(own.STORAGE_ACCESS_KEY, iam.admin.accessKeyId);
    assert.equal(own.DATABASE_URL, shared.DATABASE_URL);
    const boot = await runCli(own);
    outputs.push(boot);
    assertExit(boot, 0, /super admin admin@delta\.example created/);
  });
});

describe('--storage-mode bucket --storage-keys per-tenant', () => {
  it("the tenant's key reaches its own bucket, not the shared one nor another tenant's", async () => {
    await admin.send(new CreateBucketCommand({ Bucket: 'superfasttt-other' }));
    await admin.send(new PutObjectCommand({ Bucket: 'superfasttt-other', Key: 'secret.txt', Body: 'theirs' }));
    const r = await provision(['--tenant', 'epsilon', '--storage-mode', 'bucket', '--storage-keys', 'per-tenant']);
    assertExit(
      r,
      0,
      /epsilon: created, .*bucket superfasttt-epsilon created.*new key AKIA\w+ of tenant_epsilon: probe written/,
      /deleted in bucket superfasttt-epsilon; refused outside it \(ListObjectsV2 of bucket superfasttt-central/,
    );
    const c = client(keyOf(envOf('epsilon')));
    await c.send(new PutObjectCommand({ Bucket: 'superfasttt-epsilon', Key: 'a/b.txt', Body: 'mine' }));
    await c.send(new ListObjectsV2Command({ Bucket: 'superfasttt-epsilon' }));
    await c.send(new DeleteObjectCommand({ Bucket: 'superfasttt-epsilon', Key: 'a/b.txt' }));
    for (const Bucket of [SHARED, 'superfasttt-other']) {
      await refused(c.send(new ListObjectsV2Command({ Bucket })), `list ${Bucket}`);
      await refused(c.send(new PutObjectCommand({ Bucket, Key: 'x', Body: 'x' })), `write ${Bucket}`);
    }
    await refused(c.send(new GetObjectCommand({ Bucket: 'superfasttt-other', Key: 'secret.txt' })), 'read another');
    await refused(c.send(new ListBucketsCommand({})), 'list the buckets');
  });
});

describe('PROVISION_STORAGE_KEY_COMMAND through provision', () => {
  const bin = tempDir('sf-keys-bin-');
  const PATH = `${join(process.execPath, '..')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  const script = (name: string, text: string) => {
    const path = join(bin, name);
    writeFileSync(path, text);
    chmodSync(path, 0o755);
    return path;
  };

  it('a working command: the key it prints is proven and written', async () => {
    const command = JSON.stringify([writeIamKeyCommand(bin), iam.url]);
    const r = await provision(['--tenant', 'zeta', '--storage-keys', 'per-tenant'], {
      PATH,
      PROVISION_STORAGE_KEY_COMMAND: command,
    });
    assertExit(
      r,
      0,
      /zeta: created, .*storage identity tenant_zeta created \(PROVISION_STORAGE_KEY_COMMAND \(.*iam-keys\.mjs\)\)/,
      /new key AKIA\w+ of tenant_zeta: probe written/,
    );
    await assertReachesOnlyFolder(keyOf(envOf('zeta')), 'tenant_zeta', 'tenant_alpha');
  });

  for (const [what, text, pattern] of [
    ['hangs', '#!/bin/sh\nexec sleep 600\n', /did not finish within 1 s/],
    [
      'fails',
      '#!/bin/sh\necho "mc: <ERROR> Unable to create user: access denied" >&2\nexit 1\n',
      /exited with code 1.*access denied/,
    ],
    [
      'prints garbage',
      '#!/bin/sh\necho "Created user OK, key follows"\n',
      /printed something that is not the expected JSON/,
    ],
    [
      'returns a key that does not work',
      '#!/bin/sh\ncase "$1" in\n  ensure-identity) echo \'{"created": true}\';;\n' +
        '  list-keys) echo \'{"keys": []}\';;\n' +
        '  create-key) echo \'{"accessKeyId": "AKIAFORGED000000", "secretAccessKey": "ForgedSecret0000000000"}\';;\n' +
        "  *) echo '{}';;\nesac\n",
      /the new key of tenant_\w+ does not work on superfasttt-central\/tenant_\w+\//,
    ],
  ] as const) {
    it(`a command that ${what}: that tenant fails (exit 6), nothing written for it`, async () => {
      const name = `cmd_${what.replace(/\W+/g, '_')}`;
      const command = script(`${name}.sh`, text);
      const r = await provision(['--tenant', name, '--storage-keys', 'per-tenant'], {
        PATH,
        PROVISION_STORAGE_KEY_COMMAND: command,
        PROVISION_STORAGE_KEY_COMMAND_TIMEOUT: '1',
      });
      assertExit(r, 6, new RegExp(`${name}: failed, PostgreSQL and storage ready, storage key failed: .*`), pattern);
      assert.match(r.output, /--rotate-password/);
      assert.equal(existsSync(join(outDir, `${name}.env`)), false);
      assert.doesNotMatch(r.output, /ForgedSecret/);
    });
  }
});

describe('per-tenant keys: refused before anything is created', () => {
  const cases: Array<[string, string[], Env, RegExp]> = [
    [
      'storage that is not AWS, without a command nor an IAM endpoint',
      ['--storage-keys', 'per-tenant'],
      { PROVISION_STORAGE_IAM_ENDPOINT: undefined },
      /PROVISION_STORAGE_ENDPOINT \(http:\/\/127\.0\.0\.1:\d+\) is not AWS.*PROVISION_STORAGE_KEY_COMMAND/s,
    ],
    [
      'a deployer without a storage account',
      ['--storage-keys', 'per-tenant'],
      { PROVISION_STORAGE_ACCESS_KEY: undefined, PROVISION_STORAGE_SECRET_KEY: undefined },
      /per-tenant storage keys .*the deployer has no storage account/,
    ],
    ['rotation without per-tenant keys', ['--rotate-storage-key'], {}, /--rotate-storage-key needs per-tenant keys/],
    [
      'rotation and revocation together',
      ['--storage-keys', 'per-tenant', '--rotate-storage-key', '--revoke-old-storage-keys'],
      {},
      /cannot be given together/,
    ],
    ['an unknown mode', ['--storage-keys', 'mine'], {}, /--storage-keys must be shared or per-tenant/],
    [
      'an unknown variable value',
      [],
      { PROVISION_STORAGE_KEYS: 'own' },
      /PROVISION_STORAGE_KEYS: must be one of: shared, per-tenant/,
    ],
    [
      'a command that is not one',
      ['--storage-keys', 'per-tenant'],
      { PROVISION_STORAGE_KEY_COMMAND: '["/bin/true", 3]' },
      /PROVISION_STORAGE_KEY_COMMAND: PROVISION_STORAGE_KEY_COMMAND must be a JSON array of strings/,
    ],
  ];
  for (const [what, args, env, pattern] of cases) {
    it(what, async () => {
      const r = await provision(['--tenant', 'refused', ...args], env);
      assertExit(r, 2, pattern);
      assert.equal(iam.user('tenant_refused'), undefined);
      assert.equal(existsSync(join(outDir, 'refused.env')), false);
    });
  }

  it('without --out-dir in text mode: refused, the keys would be lost', async () => {
    const r = await runCli({ ...base }, { args: ['provision', '--tenant', 'refused', '--storage-keys', 'per-tenant'] });
    outputs.push(r);
    assertExit(r, 2, /per-tenant storage keys need the \.env files: --out-dir DIR \(or --format json/);
    assert.equal(iam.user('tenant_refused'), undefined);
  });
});
