// Storage verification against a real S3-compatible server (s3rver) behind a front that checks
// SigV4 signatures and per-key policies, over HTTP and HTTPS. Every failure: exit 6, a message
// naming the variable, nothing marked done, no secret printed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { ADMIN, instanceEnv, setupState, users } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';
import { startS3, type S3Key, type S3Server } from './harness/s3.js';

let pg: PgServer;
let s3: S3Server;
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];
let bucketCounter = 0;

before(async () => {
  [pg, s3] = await Promise.all([startPostgres({ tls: false }), startS3()]);
  secrets.push(s3.admin.secretAccessKey);
});
after(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

async function freshBucket(): Promise<string> {
  const name = `superfasttt-b${++bucketCounter}`;
  await s3.createBucket(name);
  return name;
}

function storageEnv(bucket: string, key: S3Key = s3.admin, overrides: Env = {}): Env {
  return {
    STORAGE_PROVIDER: 's3',
    STORAGE_ENDPOINT: s3.httpsEndpoint,
    STORAGE_BUCKET: bucket,
    STORAGE_REGION: s3.region,
    STORAGE_ACCESS_KEY: key.accessKeyId,
    STORAGE_SECRET_KEY: key.secretAccessKey,
    NODE_EXTRA_CA_CERTS: s3.caFile,
    STORAGE_TIMEOUT: '5',
    ...overrides,
  };
}

async function bootstrap(storage: Env) {
  const tenant = await createTenant(pg);
  secrets.push(tenant.password);
  const result = await runCli(instanceEnv(tenant, storage));
  outputs.push(result);
  return { tenant, result };
}

async function assertNotDone(schema: string) {
  assert.equal((await setupState(pg, schema))?.completed, false, 'must not be marked done');
  assert.equal((await users(pg, schema)).length, 0, 'the admin must not be created');
}

describe('storage verified', () => {
  it('over HTTPS: probe written, read back, deleted; settings recorded without keys', async () => {
    const bucket = await freshBucket();
    await s3.putObject(bucket, 'existing.txt', 'keep me');
    const { tenant, result } = await bootstrap(storageEnv(bucket));
    assertExit(
      result,
      0,
      /\[storage\] superfasttt-b\d+ at https:\/\/127\.0\.0\.1:\d+: probe written, read back and deleted/,
    );
    assert.doesNotMatch(
      result.output,
      /AWS SDK|NodeVersionSupportWarning/,
      "the SDK's Node version warning is noise for the operator",
    );
    const objects = await s3.listObjects(bucket);
    assert.deepEqual([...objects.keys()], ['existing.txt'], 'only the existing object remains');
    assert.equal(objects.get('existing.txt')?.toString(), 'keep me');
    const [row] = await pg.admin<
      { value: Record<string, unknown> }[]
    >`select value from ${pg.admin(tenant.schema)}.instance_settings where key = 'storage'`;
    assert.deepEqual(row?.value, {
      provider: 's3',
      endpoint: s3.httpsEndpoint,
      bucket,
      region: s3.region,
      prefix: null,
      force_path_style: true,
    });
    assert.ok(
      !JSON.stringify(row).includes(s3.admin.secretAccessKey) && !JSON.stringify(row).includes(s3.admin.accessKeyId),
    );
  });

  it('over HTTP with STORAGE_SECURE=false', async () => {
    const bucket = await freshBucket();
    const { result } = await bootstrap(
      storageEnv(bucket, s3.admin, { STORAGE_ENDPOINT: s3.httpEndpoint, STORAGE_SECURE: 'false' }),
    );
    assertExit(result, 0, /probe written, read back and deleted/);
  });

  it('creates the prefix folder marker once, and never touches existing objects in it', async () => {
    const bucket = await freshBucket();
    await s3.putObject(bucket, 'tenant_a/report.pdf', 'data');
    const first = await bootstrap(storageEnv(bucket, s3.admin, { STORAGE_PREFIX: 'tenant_a', LOG_FORMAT: 'json' }));
    assertExit(first.result, 0, /folder tenant_a\/ created/);
    // Nothing a library prints escapes the log format: every line is one JSON object, no warning.
    const lines = first.result.output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { level: string; step: string });
    assert.deepEqual(
      lines.filter((l) => l.level !== 'info'),
      [],
    );
    const again = await runCli(
      instanceEnv(first.tenant, storageEnv(bucket, s3.admin, { STORAGE_PREFIX: 'tenant_a/' })),
    );
    outputs.push(again);
    assertExit(again, 0, /folder tenant_a\/ present/);
    const objects = await s3.listObjects(bucket);
    assert.deepEqual([...objects.keys()].sort(), ['tenant_a/', 'tenant_a/report.pdf']);
    assert.equal(objects.get('tenant_a/report.pdf')?.toString(), 'data');
    assert.equal(objects.get('tenant_a/')?.length, 0);
  });

  it('a key limited to the prefix (HeadBucket denied): the probe decides', async () => {
    const bucket = await freshBucket();
    const key = s3.prefixKey(bucket, 'tenant_b/');
    secrets.push(key.secretAccessKey);
    const { result } = await bootstrap(storageEnv(bucket, key, { STORAGE_PREFIX: 'tenant_b/' }));
    assertExit(
      result,
      0,
      /HeadBucket denied \(key limited to the prefix\?\), the probe decided/,
      /folder tenant_b\/ created/,
    );
  });
});

describe('storage failures (exit 6, nothing marked done)', () => {
  const cases: Array<[string, () => Promise<Env>, RegExp, RegExp]> = [
    [
      'missing bucket',
      async () => storageEnv('superfasttt-missing'),
      /bucket superfasttt-missing does not exist/,
      /STORAGE_BUCKET/,
    ],
    [
      'unknown access key',
      async () =>
        storageEnv(await freshBucket(), { accessKeyId: 'AKIAUNKNOWN0000', secretAccessKey: s3.admin.secretAccessKey }),
      /access key id is unknown/,
      /STORAGE_ACCESS_KEY/,
    ],
    [
      'wrong secret key',
      async () =>
        storageEnv(await freshBucket(), {
          accessKeyId: s3.admin.accessKeyId,
          secretAccessKey: 'Wrong-Secret-Key-0000000000',
        }),
      /secret key is wrong/,
      /STORAGE_SECRET_KEY/,
    ],
    [
      'a key limited to another prefix',
      async () => {
        const bucket = await freshBucket();
        return storageEnv(bucket, s3.prefixKey(bucket, 'tenant_other/'), { STORAGE_PREFIX: 'tenant_c/' });
      },
      /access denied: the key lacks s3:PutObject/,
      /grant s3:PutObject on arn:aws:s3:::superfasttt-b\d+\/tenant_c\/\*/,
    ],
    [
      'a read-only key',
      async () => {
        const bucket = await freshBucket();
        return storageEnv(bucket, s3.readOnlyKey(bucket));
      },
      /access denied: the key lacks s3:PutObject/,
      /grant s3:PutObject/,
    ],
    [
      'endpoint unreachable',
      async () => storageEnv(await freshBucket(), s3.admin, { STORAGE_ENDPOINT: 'https://127.0.0.1:9' }),
      /endpoint is unreachable \(ECONNREFUSED\)/,
      /STORAGE_ENDPOINT/,
    ],
    [
      'DNS',
      async () => storageEnv(await freshBucket(), s3.admin, { STORAGE_ENDPOINT: 'https://s3.invalid' }),
      /does not resolve/,
      /STORAGE_ENDPOINT/,
    ],
    [
      'untrusted TLS certificate',
      async () => storageEnv(await freshBucket(), s3.admin, { NODE_EXTRA_CA_CERTS: undefined }),
      /TLS failed/,
      /NODE_EXTRA_CA_CERTS/,
    ],
  ];
  for (const [name, makeEnv, message, fix] of cases) {
    it(name, async () => {
      const env = await makeEnv();
      if (env.STORAGE_SECRET_KEY) secrets.push(env.STORAGE_SECRET_KEY);
      const { tenant, result } = await bootstrap(env);
      assertExit(result, 6, message, fix);
      await assertNotDone(tenant.schema);
    });
  }

  it('clock skew: reported even though the SDK corrects its own clock', async () => {
    const bucket = await freshBucket();
    s3.setClockSkew(60 * 60_000);
    try {
      const { tenant, result } = await bootstrap(storageEnv(bucket));
      assertExit(result, 6, /clock differs (too much )?from the (S3 )?provider's/, /NTP/);
      await assertNotDone(tenant.schema);
    } finally {
      s3.setClockSkew(0);
    }
  });

  it('a provider answering 503 is retried a bounded number of times, then exit 6', async () => {
    const bucket = await freshBucket();
    s3.failNext(10, 503);
    const { tenant, result } = await bootstrap(storageEnv(bucket));
    assertExit(result, 6, /answered HTTP 503/);
    await assertNotDone(tenant.schema);
    s3.failNext(0, 503);
  });

  it('storage and email both failing (verified together): both reported, exit 6 (storage comes first)', async () => {
    const env = {
      ...storageEnv('superfasttt-missing'),
      EMAIL_PROVIDER: 'smtp',
      EMAIL_FROM: 'noreply@client.example',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '9',
      SMTP_USERNAME: 'mailer',
      SMTP_PASSWORD: 'Smtp-Password-0001',
    };
    const { tenant, result } = await bootstrap(env);
    assertExit(result, 6, /bucket superfasttt-missing does not exist/, /email: SMTP 127\.0\.0\.1:9 .*unreachable/);
    await assertNotDone(tenant.schema);
  });

  it('database and storage both failing: both reported, exit 3 (the database chain comes first)', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.password = 'Wrong-Password-123';
    const r = await runCli(instanceEnv(tenant, { ...storageEnv('superfasttt-missing'), DATABASE_URL: url.toString() }));
    outputs.push(r);
    assertExit(r, 3, /refused the password/, /bucket superfasttt-missing does not exist/);
  });

  it('an endpoint that accepts and never answers: bounded by STORAGE_TIMEOUT and 3 attempts, exit 6', async () => {
    const bucket = await freshBucket();
    s3.failNext(3, 'hang');
    try {
      const { tenant, result } = await bootstrap(storageEnv(bucket, s3.admin, { STORAGE_TIMEOUT: '1' }));
      assertExit(result, 6, /no answer within STORAGE_TIMEOUT=1 s/, /STORAGE_ENDPOINT/);
      await assertNotDone(tenant.schema);
    } finally {
      s3.failNext(0, 500);
    }
  });

  it('a provider that recovers within the retries is fine', async () => {
    const bucket = await freshBucket();
    s3.failNext(1, 503);
    const { result } = await bootstrap(storageEnv(bucket));
    assertExit(result, 0, /probe written/);
  });
});

describe('secrets', () => {
  it('no key or password appears in any output', () => {
    assert.ok(outputs.length >= 10);
    for (const output of outputs) assertNoSecrets(output, secrets);
  });
});
