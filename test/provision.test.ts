// provision / deprovision against a real PostgreSQL, with a deployer that is NOT a superuser:
// least privilege, idempotency, isolation between tenants, .env files an instance boots from.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { startPostgres, type PgServer } from './harness/postgres.js';
import { assertIsolated, readEnvFile, tenantClient } from './harness/provisioned.js';
import { startS3, type S3Server } from './harness/s3.js';
import { tempDir } from './harness/net.js';

let pg: PgServer;
/** Superuser client on the tenants' database (pg.admin is on the harness's own database). */
let tenantsDb: postgres.Sql;
let deployerUrl: string;
const DEPLOYER_PASSWORD = 'Deployer-Password-42';
const outputs: RunResult[] = [];

before(async () => {
  pg = await startPostgres({ tls: true });
  // The deployment machine's role: CREATEROLE and the owner of the tenants' database, not a superuser.
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  await pg.admin.unsafe('create database tenants owner deployer');
  deployerUrl = pg.url('deployer', DEPLOYER_PASSWORD, { database: 'tenants', sslmode: 'require' });
  tenantsDb = postgres(pg.url(pg.superuser, pg.superpassword, { database: 'tenants' }), {
    max: 1,
    onnotice: () => {},
    ssl: { rejectUnauthorized: false },
  });
});
after(async () => {
  await tenantsDb?.end();
  await pg?.stop();
});

async function provision(args: string[], env: Env = {}): Promise<RunResult> {
  const r = await runCli({ PROVISION_DATABASE_URL: deployerUrl, ...env }, { args: ['provision', ...args] });
  outputs.push(r);
  return r;
}

describe('provision a batch from a file, then bootstrap each instance from its .env alone', () => {
  const out = tempDir('sf-provision-');
  const file = join(out, 'tenants.csv');
  const envs: Record<string, Record<string, string>> = {};

  before(async () => {
    writeFileSync(
      file,
      'name,email,first_name,last_name,phone\n' +
        'alpha,admin@alpha.example,Alice,Martin,+33612345678\n' +
        'beta,admin@beta.example,Bob,Durand,\n',
    );
    const r = await provision(['--tenants', file, '--out-dir', join(out, 'envs')]);
    assertExit(
      r,
      0,
      /alpha: created, role, schema and grants created/,
      /beta: created/,
      /provision: 2 tenant\(s\): 2 created/,
    );
    for (const name of ['alpha', 'beta']) envs[name] = readEnvFile(join(out, 'envs', `${name}.env`));
  });

  it('writes one .env per tenant, mode 0600, with everything the instance needs', () => {
    for (const name of ['alpha', 'beta']) {
      assert.equal(statSync(join(out, 'envs', `${name}.env`)).mode & 0o777, 0o600);
      const env = envs[name]!;
      assert.equal(env.SKIP_SETUP, 'true');
      assert.equal(env.DATABASE_SCHEMA, `tenant_${name}`);
      assert.match(
        env.DATABASE_URL!,
        new RegExp(`^postgres://tenant_${name}:[\\w-]+@127\\.0\\.0\\.1:\\d+/tenants\\?sslmode=require$`),
      );
      assert.ok(env.AUTO_SUPERADMIN_PASSWORD!.length >= 20);
    }
  });

  it('each instance bootstraps with nothing but its .env', async () => {
    for (const name of ['alpha', 'beta']) {
      const r = await runCli(envs[name]!);
      outputs.push(r);
      assertExit(r, 0, new RegExp(`super admin admin@${name}\\.example created`));
    }
  });

  it(
    "the role has exactly the seed's rights: " +
      'no superuser, no createrole/createdb, a connection limit, search_path',
    async () => {
      const [role] = await tenantsDb<
        { rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolconnlimit: number; rolconfig: string[] }[]
      >`
      select rolsuper, rolcreaterole, rolcreatedb, rolconnlimit, rolconfig
      from pg_roles where rolname = 'tenant_alpha'`;
      assert.deepEqual(
        { ...role },
        {
          rolsuper: false,
          rolcreaterole: false,
          rolcreatedb: false,
          rolconnlimit: 20,
          rolconfig: ['search_path=tenant_alpha'],
        },
      );
      const [schema] = await tenantsDb<
        { owner: string }[]
      >`select pg_get_userbyid(nspowner) as owner from pg_namespace where nspname = 'tenant_alpha'`;
      assert.equal(schema?.owner, 'deployer', 'the deployer owns the schema: the tenant cannot drop it');
    },
  );

  for (const [me, other] of [
    ['alpha', 'beta'],
    ['beta', 'alpha'],
  ] as const) {
    it(`isolation: tenant ${me} cannot touch ${other}, public, or its own schema's existence`, async () => {
      await assertIsolated(envs[me]!, envs[other]!, tenantsDb);
    });
  }

  it('a re-run changes nothing and keeps the .env files', async () => {
    const before = readFileSync(join(out, 'envs', 'alpha.env'), 'utf8');
    const r = await provision(['--tenants', file, '--out-dir', join(out, 'envs')]);
    assertExit(r, 0, /provision: 2 tenant\(s\): 0 created, 2 unchanged/);
    assert.equal(readFileSync(join(out, 'envs', 'alpha.env'), 'utf8'), before);
  });

  it('--rotate-password sets a new password and rewrites the .env; the old one no longer works', async () => {
    const old = envs.beta!;
    const r = await provision(['--tenant', 'beta', '--out-dir', join(out, 'envs'), '--rotate-password']);
    assertExit(r, 0, /beta: rotated/);
    const fresh = readEnvFile(join(out, 'envs', 'beta.env'));
    assert.notEqual(fresh.DATABASE_URL, old.DATABASE_URL);
    const stale = tenantClient(old);
    await assert.rejects(stale`select 1`, /password authentication failed/);
    await stale.end();
    const ok = tenantClient(fresh);
    await ok`select 1`;
    await ok.end();
    envs.beta = fresh;
  });

  it('no password appears in the text output', () => {
    const secrets = [
      DEPLOYER_PASSWORD,
      ...Object.values(envs).flatMap((e) => [new URL(e.DATABASE_URL!).password, e.AUTO_SUPERADMIN_PASSWORD]),
    ];
    for (const r of outputs) assertNoSecrets(r, secrets);
  });
});

describe('provision options and refusals', () => {
  it('a tenant whose bucket would be PROVISION_STORAGE_BUCKET is refused, storage keys or not (exit 2)', async () => {
    const r = await provision(['--tenant', 'shared_tenants', '--storage-mode', 'bucket'], {
      PROVISION_STORAGE_BUCKET: 'superfasttt-shared-tenants',
    });
    assertExit(r, 2, /its bucket superfasttt-shared-tenants is PROVISION_STORAGE_BUCKET/);
  });

  it("copies the deployer's email settings into the .env; keeps an existing .env unless --force", async () => {
    const out = tempDir('sf-provision-');
    const email = {
      EMAIL_PROVIDER: 'smtp',
      EMAIL_FROM: 'noreply@example.com',
      SMTP_HOST: 'smtp.example.com',
      SMTP_USERNAME: 'mailer',
      SMTP_PASSWORD: 'Smtp-Password-42',
    };
    assertExit(await provision(['--tenant', 'mailing', '--out-dir', out], email), 0);
    const env = readEnvFile(join(out, 'mailing.env'));
    for (const [k, v] of Object.entries(email)) assert.equal(env[k], v);
    writeFileSync(join(out, 'mailing.env'), 'edited by hand\n', { mode: 0o600 });
    assertExit(await provision(['--tenant', 'mailing', '--out-dir', out, '--rotate-password']), 0, /rotated/);
    assert.notEqual(
      readFileSync(join(out, 'mailing.env'), 'utf8'),
      'edited by hand\n',
      '--rotate-password rewrites the .env',
    );
    // A .env for a role that does not exist holds no usable password: refused before anything is created.
    writeFileSync(join(out, 'other.env'), 'edited by hand\n', { mode: 0o644 });
    assertExit(
      await provision(['--tenant', 'other', '--out-dir', out]),
      4,
      /other: failed, .*other\.env exists but role tenant_other does not/,
      /--force/,
    );
    assert.equal(readFileSync(join(out, 'other.env'), 'utf8'), 'edited by hand\n');
    assert.equal(
      (await tenantsDb`select 1 from pg_roles where rolname = 'tenant_other'`).length,
      0,
      'nothing was created',
    );
    assertExit(
      await provision(['--tenant', 'other', '--out-dir', out, '--force']),
      0,
      /other\.env written, its login verified/,
    );
    assert.equal(statSync(join(out, 'other.env')).mode & 0o777, 0o600, 'an overwritten file gets mode 0600 too');
  });

  it("--format json: one document with each tenant's environment, for pipelines", async () => {
    const r = await provision(['--tenant', 'gamma', '--format', 'json']);
    assertExit(r, 0);
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      tenants: Array<{ name: string; status: string; env: Record<string, string> }>;
    };
    assert.equal(doc.ok, true);
    assert.equal(doc.tenants[0]?.status, 'created');
    assert.match(doc.tenants[0]!.env.DATABASE_URL!, /^postgres:\/\/tenant_gamma:/);
  });

  it('invalid tenant names are refused with the reason, before anything is done (exit 2)', async () => {
    const r = await provision(['--tenant', 'Client-A', '--tenant', 'x'.repeat(60), '--tenant', '9lives']);
    assertExit(r, 2, /"Client-A".*lowercase/, /must be at most 56 characters/, /"9lives"/);
    const [row] = await pg.admin<
      { n: number }[]
    >`select count(*)::int as n from pg_roles where rolname like 'tenant_client%'`;
    assert.equal(row?.n, 0);
  });

  it('an --out-dir inside a git work tree must be ignored by git', async () => {
    const repo = tempDir('sf-repo-');
    execFileSync('git', ['init', '-q', repo]);
    const r = await provision(['--tenant', 'delta', '--out-dir', join(repo, 'envs')]);
    assertExit(r, 2, /inside a git work tree and its \.env files are not ignored/, /\.gitignore/);
    writeFileSync(join(repo, '.gitignore'), 'envs/\n');
    assertExit(await provision(['--tenant', 'delta', '--out-dir', join(repo, 'envs')]), 0, /delta: created/);
  });

  it('a schema that belongs to someone else is refused; the other tenants still succeed', async () => {
    await tenantsDb.unsafe('create schema tenant_owned_elsewhere');
    const r = await provision(['--tenant', 'owned_elsewhere', '--tenant', 'zeta']);
    assertExit(
      r,
      4,
      /owned_elsewhere: failed, schema tenant_owned_elsewhere exists and belongs to postgres/,
      /zeta: created/,
    );
  });

  it('a deployer without CREATEROLE is told what to grant (exit 4)', async () => {
    await pg.admin.unsafe(`create role weak login password '${DEPLOYER_PASSWORD}'`);
    await pg.admin.unsafe('grant connect on database tenants to weak');
    const r = await runCli(
      { PROVISION_DATABASE_URL: pg.url('weak', DEPLOYER_PASSWORD, { database: 'tenants', sslmode: 'require' }) },
      { args: ['provision', '--tenant', 'eta'] },
    );
    outputs.push(r);
    assertExit(
      r,
      4,
      /the deployer role weak lacks CREATEROLE and CREATE on database tenants/,
      /ALTER ROLE "weak" CREATEROLE; GRANT CREATE ON DATABASE "tenants" TO "weak"/,
    );
  });

  it('12 tenants at once with --concurrency 6 all succeed', async () => {
    const args = Array.from({ length: 12 }, (_, i) => ['--tenant', `many_${i}`]).flat();
    assertExit(await provision([...args, '--concurrency', '6']), 0, /12 created/);
  });
});

describe('storage provisioning', () => {
  let s3: S3Server;
  before(async () => {
    s3 = await startS3();
    await s3.createBucket('superfasttt-shared');
  });
  after(async () => {
    await s3?.stop();
  });
  const storageEnv = (): Env => ({
    PROVISION_STORAGE_ENDPOINT: s3.httpsEndpoint,
    PROVISION_STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: s3.admin.secretAccessKey,
    PROVISION_STORAGE_BUCKET: 'superfasttt-shared',
    NODE_EXTRA_CA_CERTS: s3.caFile,
  });

  it(
    'prefix mode (default): ' +
      'the folder marker in the shared bucket, the storage settings in the .env, and the instance boots',
    async () => {
      const out = tempDir('sf-provision-');
      const r = await provision(['--tenant', 'store_a', '--out-dir', out], storageEnv());
      assertExit(
        r,
        0,
        /store_a: created, role, schema and grants created; folder tenant_store_a\/ created/,
        /shared S3 keys/,
      );
      assert.ok((await s3.listObjects('superfasttt-shared')).has('tenant_store_a/'));
      const env = readEnvFile(join(out, 'store_a.env'));
      assert.equal(env.STORAGE_PREFIX, 'tenant_store_a/');
      assert.equal(env.STORAGE_BUCKET, 'superfasttt-shared');
      const boot = await runCli({
        ...env,
        AUTO_SUPERADMIN_EMAIL: 'admin@store-a.example',
        AUTO_SUPERADMIN_FIRSTNAME: 'A',
        AUTO_SUPERADMIN_LASTNAME: 'B',
        NODE_EXTRA_CA_CERTS: s3.caFile,
      });
      outputs.push(boot);
      assertExit(boot, 0, /folder tenant_store_a\/ present/);
      const again = await provision(['--tenant', 'store_a', '--out-dir', out], storageEnv());
      assertExit(again, 0, /store_a: unchanged, role and schema in place; folder tenant_store_a\/ present/);
    },
  );

  it('bucket mode: a bucket per tenant, named validly (no _), and per-tenant keys from the tenants file', async () => {
    const out = tempDir('sf-provision-');
    const file = join(out, 'tenants.jsonl');
    const key = s3.prefixKey('superfasttt-store-b', '');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'store_b',
        email: 'admin@store-b.example',
        s3_access_key: key.accessKeyId,
        s3_secret_key: key.secretAccessKey,
      }) + '\n',
    );
    const r = await provision(
      ['--tenants', file, '--out-dir', join(out, 'envs'), '--storage-mode', 'bucket'],
      storageEnv(),
    );
    assertExit(
      r,
      0,
      /bucket superfasttt-store-b created \(bucket names allow no _ nor uppercase: store_b -> superfasttt-store-b\)/,
    );
    assert.doesNotMatch(r.output, /shared S3 keys/);
    const env = readEnvFile(join(out, 'envs', 'store_b.env'));
    assert.equal(env.STORAGE_BUCKET, 'superfasttt-store-b');
    assert.equal(env.STORAGE_ACCESS_KEY, key.accessKeyId);
    assert.equal(env.STORAGE_PREFIX, undefined);
  });

  it(
    '--opaque-names: schema and role from a stable hash; ' +
      'the customer name only in the .env file name and the report',
    async () => {
      const r = await provision(['--tenant', 'secret_customer', '--opaque-names', '--format', 'json'], storageEnv());
      assertExit(r, 0);
      const doc = JSON.parse(r.stdout) as {
        tenants: Array<{ schema: string; role: string; env: Record<string, string> }>;
      };
      const t = doc.tenants[0]!;
      assert.match(t.schema, /^tenant_[0-9a-f]{20}$/);
      assert.equal(t.role, t.schema);
      assert.ok(!t.env.DATABASE_URL!.includes('secret_customer') && !t.env.STORAGE_PREFIX!.includes('secret_customer'));
      const again = await provision(['--tenant', 'secret_customer', '--opaque-names'], storageEnv());
      assertExit(again, 0, /unchanged/);
    },
  );

  it("deprovision --purge-storage deletes the tenant's folder only; without it, storage is left alone", async () => {
    assertExit(await provision(['--tenant', 'store_p'], storageEnv()), 0);
    await s3.putObject('superfasttt-shared', 'tenant_store_p/file.txt', 'data');
    await s3.putObject('superfasttt-shared', 'tenant_store_px/other.txt', 'keep');
    const dry = await runCli(
      { PROVISION_DATABASE_URL: deployerUrl, ...storageEnv() },
      { args: ['deprovision', '--tenant', 'store_p', '--purge-storage'] },
    );
    assertExit(
      dry,
      0,
      new RegExp(
        "folder superfasttt-shared\\/tenant_store_p\\/: every object deleted, if it carries this tenant's proof " +
          'of ownership',
      ),
    );
    assert.ok((await s3.listObjects('superfasttt-shared')).has('tenant_store_p/file.txt'));
    const r = await runCli(
      { PROVISION_DATABASE_URL: deployerUrl, ...storageEnv() },
      { args: ['deprovision', '--tenant', 'store_p', '--purge-storage', '--yes'] },
    );
    outputs.push(r);
    assertExit(r, 0, /2 object\(s\) and the proof of ownership deleted from superfasttt-shared\/tenant_store_p\//);
    const left = [...(await s3.listObjects('superfasttt-shared')).keys()];
    assert.ok(!left.some((k) => k.startsWith('tenant_store_p/')));
    assert.ok(left.includes('tenant_store_px/other.txt'), 'the trailing / keeps tenant_store_px out of it');
  });

  it('a wrong storage admin key fails the tenant with exit 6, before anything is created in PostgreSQL', async () => {
    const r = await provision(['--tenant', 'store_c'], {
      ...storageEnv(),
      PROVISION_STORAGE_SECRET_KEY: 'Wrong-Secret-Key-000000000000',
    });
    // The shared bucket is read first (is it a tenant's own bucket?): the run stops there.
    assertExit(
      r,
      6,
      /storage: GetObject on superfasttt-shared .*(secret key is wrong|access denied)/,
      /PROVISION_STORAGE_SECRET_KEY/,
    );
    assert.equal((await tenantsDb`select 1 from pg_roles where rolname = 'tenant_store_c'`).length, 0);
  });
});

describe('deprovision', () => {
  it('without --yes prints the plan and changes nothing; with --yes removes schema and role', async () => {
    assertExit(await provision(['--tenant', 'gone']), 0);
    const dry = await runCli({ PROVISION_DATABASE_URL: deployerUrl }, { args: ['deprovision', '--tenant', 'gone'] });
    assertExit(dry, 0, /dry run/, /DROP SCHEMA IF EXISTS "tenant_gone" CASCADE/, /DROP ROLE IF EXISTS "tenant_gone"/);
    const exists = async () =>
      (await pg.admin<{ n: number }[]>`select count(*)::int as n from pg_roles where rolname = 'tenant_gone'`)[0]!.n;
    assert.equal(await exists(), 1);
    assertExit(
      await runCli({ PROVISION_DATABASE_URL: deployerUrl }, { args: ['deprovision', '--tenant', 'gone', '--yes'] }),
      0,
      /1 tenant\(s\): 1 removed/,
    );
    assert.equal(await exists(), 0);
  });
});
