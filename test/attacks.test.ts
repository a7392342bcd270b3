// Hostile tenants and unlucky operators, against real servers: storage that maps onto another
// tenant's, deprovision of what provision did not make, .env files that disagree with the database,
// lock keys a tenant can take, tables an app holds, SIGTERM while a statement is blocked.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { assertExit, assertNoSecrets, runCli, spawnCli, type Env, type RunResult } from './harness/cli.js';
import { instanceEnv, setupState, users } from './harness/instance.js';
import { tempDir } from './harness/net.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';
import { readEnvFile, tenantClient } from './harness/provisioned.js';
import { startS3, type S3Server } from './harness/s3.js';

let pg: PgServer;
let s3: S3Server;
/** Superuser clients on the two databases the deployer owns (two deployments sharing one S3). */
const dbs: Record<string, postgres.Sql> = {};
const DEPLOYER_PASSWORD = 'Deployer-Password-43';
const outputs: RunResult[] = [];

before(async () => {
  [pg, s3] = await Promise.all([startPostgres({ tls: true }), startS3()]);
  await s3.createBucket('shared-tenants');
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  for (const name of ['first', 'second']) {
    await pg.admin.unsafe(`create database ${name} owner deployer`);
    dbs[name] = postgres(pg.url(pg.superuser, pg.superpassword, { database: name }), { max: 2, onnotice: () => {}, ssl: { rejectUnauthorized: false } });
  }
});
after(async () => {
  for (const db of Object.values(dbs)) await db.end();
  await Promise.all([pg?.stop(), s3?.stop()]);
  const secrets = [DEPLOYER_PASSWORD, s3?.admin.secretAccessKey];
  for (const r of outputs) assertNoSecrets(r, secrets);
});

function deployerEnv(database = 'first'): Env {
  return {
    PROVISION_DATABASE_URL: pg.url('deployer', DEPLOYER_PASSWORD, { database, sslmode: 'require' }),
    PROVISION_STORAGE_ENDPOINT: s3.httpsEndpoint,
    PROVISION_STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: s3.admin.secretAccessKey,
    PROVISION_STORAGE_BUCKET: 'shared-tenants',
    NODE_EXTRA_CA_CERTS: s3.caFile,
  };
}

async function cli(command: 'provision' | 'deprovision', args: string[], database = 'first', extra: Env = {}): Promise<RunResult> {
  const r = await runCli({ ...deployerEnv(database), ...extra }, { args: [command, ...args] });
  outputs.push(r);
  return r;
}

/** The same without storage: PostgreSQL and the .env only. */
async function dbOnly(command: 'provision' | 'deprovision', args: string[]): Promise<RunResult> {
  const r = await runCli({ PROVISION_DATABASE_URL: deployerEnv().PROVISION_DATABASE_URL }, { args: [command, ...args] });
  outputs.push(r);
  return r;
}

async function roleExists(role: string): Promise<boolean> {
  return (await pg.admin`select 1 from pg_roles where rolname = ${role}`).length > 0;
}

async function bucketKeys(bucket: string): Promise<string[] | undefined> {
  return s3.listObjects(bucket).then((objects) => [...objects.keys()].sort(), () => undefined);
}

describe('storage identity: one tenant, one bucket or folder, proven', () => {
  it('bucket mode: names whose bucket would be cut, trimmed or reserved are refused before anything is created (exit 2)', async () => {
    assertExit(await cli('provision', ['--tenant', 'bk1', '--storage-mode', 'bucket']), 0, /bucket superfasttt-bk1 created/, /proof of ownership written/);
    const long = 'l'.repeat(51);
    const r = await cli('provision', ['--tenant', 'bk1_', '--tenant', `${long}_a`, '--tenant', 'a__x_s3', '--storage-mode', 'bucket']);
    assertExit(r, 2, /"bk1_": with --storage-mode bucket, the name ends with _/, /longer than 51 characters/, /"a__x_s3".*holds __/);
    for (const role of ['tenant_bk1_', `tenant_${long}_a`, 'tenant_a__x_s3']) assert.equal(await roleExists(role), false, `${role} was created`);
    assert.deepEqual(await bucketKeys('superfasttt-bk1'), ['.superfasttt-tenant']);
    // The same names are fine in prefix mode: their folders cannot collide.
    assertExit(await cli('provision', ['--tenant', 'bk1_']), 0, /folder tenant_bk1_\/ created/);
  });

  it('a name that looks like an --opaque-names identifier is refused (it could be another tenant\'s hash)', async () => {
    assertExit(await cli('provision', ['--tenant', 'abcdef0123456789abcd']), 2, /looks like an --opaque-names identifier/);
  });

  for (const mode of ['bucket', 'prefix'] as const) {
    it(`${mode} mode: another deployment's tenant of the same name owns the storage: refused (exit 2), nothing created`, async () => {
      const name = `twin_${mode}`;
      assertExit(await cli('provision', ['--tenant', name, '--storage-mode', mode], 'first'), 0);
      const r = await cli('provision', ['--tenant', name, '--storage-mode', mode], 'second');
      assertExit(r, 2, new RegExp(`${name}: failed, .* belongs to tenant id [0-9a-f-]{36} \\(schema tenant_${name} in database first\\): it is not this tenant's storage, and nothing was created`));
      assert.equal((await dbs.second!`select 1 from pg_namespace where nspname = ${`tenant_${name}`}`).length, 0);
      // Deprovisioning it from the second deployment cannot purge the first one's storage.
      const purge = await cli('deprovision', ['--tenant', name, '--storage-mode', mode, '--purge-storage', '--yes'], 'second');
      assertExit(purge, 4, new RegExp(`has no schema tenant_${name} in database second: its storage was left alone, nothing was removed`));
      const [row] = await dbs.first!`select obj_description(oid, 'pg_namespace') as comment from pg_namespace where nspname = ${`tenant_${name}`}`;
      assert.match(String(row?.comment), /^superfasttt tenant [0-9a-f-]{36}$/);
    });
  }

  it('storage left behind by a deprovisioned tenant is not claimed by a new tenant of the same name (exit 2)', async () => {
    assertExit(await cli('provision', ['--tenant', 'reborn']), 0);
    assertExit(await cli('deprovision', ['--tenant', 'reborn', '--yes']), 0, /storage left alone|1 removed/);
    assertExit(await cli('provision', ['--tenant', 'reborn']), 2, /folder shared-tenants\/tenant_reborn\/ belongs to tenant id/, /deprovision --purge-storage/);
    assert.equal(await roleExists('tenant_reborn'), false);
  });

  it('a folder that already holds data with no proof is not claimed by a new tenant (exit 2)', async () => {
    await s3.putObject('shared-tenants', 'tenant_squat/photo.jpg', 'someone else\'s');
    assertExit(await cli('provision', ['--tenant', 'squat']), 2, /folder shared-tenants\/tenant_squat\/ already holds 1 object\(s\) and no proof of whose they are/);
    assert.equal(await roleExists('tenant_squat'), false);
  });

  it('deprovision --purge-storage of a name never provisioned (foo_) leaves the live tenant foo alone (exit 4 / exit 2)', async () => {
    assertExit(await cli('provision', ['--tenant', 'foo', '--storage-mode', 'bucket']), 0);
    await s3.putObject('superfasttt-foo', 'invoice.pdf', 'customer data');
    assertExit(await cli('provision', ['--tenant', 'foo']), 0); // and a folder in the shared bucket
    await s3.putObject('shared-tenants', 'tenant_foo/invoice.pdf', 'customer data');
    assertExit(await cli('deprovision', ['--tenant', 'foo_', '--storage-mode', 'bucket', '--purge-storage', '--yes']), 2, /ends with _/);
    assertExit(await cli('deprovision', ['--tenant', 'foo_', '--purge-storage', '--yes']), 4, /tenant foo_ does not exist/);
    assert.deepEqual(await bucketKeys('superfasttt-foo'), ['.superfasttt-tenant', 'invoice.pdf']);
    assert.ok((await bucketKeys('shared-tenants'))!.includes('tenant_foo/invoice.pdf'));
    assert.equal(await roleExists('tenant_foo'), true);
  });

  it('deprovision refuses storage whose proof names another tenant, and removes nothing', async () => {
    assertExit(await cli('provision', ['--tenant', 'forged', '--storage-mode', 'bucket']), 0);
    // A tenant with keys to its own bucket rewrites its proof (here: claims another tenant id).
    await s3.putObject('superfasttt-forged', '.superfasttt-tenant', JSON.stringify({ tenant_id: '00000000-0000-4000-8000-000000000000', schema: 'tenant_other', database: 'first' }));
    await s3.putObject('superfasttt-forged', 'data.bin', 'x');
    const r = await cli('deprovision', ['--tenant', 'forged', '--storage-mode', 'bucket', '--purge-storage', '--yes']);
    assertExit(r, 4, /bucket superfasttt-forged belongs to tenant id 00000000-0000-4000-8000-000000000000 .*, not to this tenant .*; nothing was removed/);
    assert.equal(await roleExists('tenant_forged'), true);
    assert.deepEqual(await bucketKeys('superfasttt-forged'), ['.superfasttt-tenant', 'data.bin']);
  });

  it('deprovision --purge-storage of a proven tenant removes its bucket, schema and role; a second run finds nothing', async () => {
    assertExit(await cli('provision', ['--tenant', 'leaving', '--storage-mode', 'bucket']), 0);
    await s3.putObject('superfasttt-leaving', 'a/b.txt', 'bye');
    const r = await cli('deprovision', ['--tenant', 'leaving', '--storage-mode', 'bucket', '--purge-storage', '--yes']);
    assertExit(r, 0, /1 object\(s\) and the proof of ownership deleted from superfasttt-leaving\/, bucket superfasttt-leaving deleted/, /1 removed/);
    assert.equal(await bucketKeys('superfasttt-leaving'), undefined);
    assert.equal(await roleExists('tenant_leaving'), false);
    assertExit(await cli('deprovision', ['--tenant', 'leaving', '--yes']), 0, /nothing to remove/);
  });
});

describe('deprovision refuses what provision did not make, or what is still in use (exit 4)', () => {
  it('a tenant_* schema the deployer does not own: the owner named, nothing dropped', async () => {
    await dbs.first!.unsafe('create schema tenant_notmine');
    await pg.admin.unsafe(`create role tenant_notmine login password 'Not-Mine-Password-1'`);
    const r = await cli('deprovision', ['--tenant', 'notmine', '--yes']);
    assertExit(r, 4, /schema tenant_notmine belongs to postgres, not to the deployer deployer: provision did not make it, and nothing was removed/, /ALTER SCHEMA "tenant_notmine" OWNER TO "deployer"/);
    assert.equal((await dbs.first!`select 1 from pg_namespace where nspname = 'tenant_notmine'`).length, 1);
    assert.equal(await roleExists('tenant_notmine'), true);
  });

  it('a tenant still connected: its sessions named, nothing removed', async () => {
    const out = tempDir('sf-attacks-');
    assertExit(await cli('provision', ['--tenant', 'busy', '--out-dir', out]), 0);
    const app = tenantClient(readEnvFile(join(out, 'busy.env')));
    try {
      await app`select 1`;
      assertExit(await cli('deprovision', ['--tenant', 'busy', '--yes']), 4, /tenant busy is still connected \(pid \d+/, /stop its instance first/);
      assert.equal(await roleExists('tenant_busy'), true);
    } finally {
      await app.end();
    }
    assertExit(await cli('deprovision', ['--tenant', 'busy', '--yes']), 0, /1 removed/);
  });
});

describe('provision never reports a tenant ready that cannot boot', () => {
  it('provision, deprovision, provision: the stale .env is refused (exit 4) unless --force, which rewrites it; it boots', async () => {
    const out = tempDir('sf-attacks-');
    assertExit(await dbOnly('provision', ['--tenant', 'again', '--out-dir', out]), 0, /its login verified/);
    assertExit(await dbOnly('deprovision', ['--tenant', 'again', '--yes']), 0, /1 removed/);
    const r = await dbOnly('provision', ['--tenant', 'again', '--out-dir', out]);
    assertExit(r, 4, /again\.env exists but role tenant_again does not/, /--force/);
    assert.equal(await roleExists('tenant_again'), false, 'nothing was created');
    assertExit(await dbOnly('provision', ['--tenant', 'again', '--out-dir', out, '--force']), 0, /again\.env written, its login verified/);
    const env = readEnvFile(join(out, 'again.env'));
    const boot = await runCli({ ...env, AUTO_SUPERADMIN_EMAIL: 'admin@again.example', AUTO_SUPERADMIN_FIRSTNAME: 'A', AUTO_SUPERADMIN_LASTNAME: 'B' });
    outputs.push(boot);
    assertExit(boot, 0, /setup marked as completed/);
  });

  it('a .env whose password no longer works fails the re-run (exit 4) with the fix; --rotate-password repairs it', async () => {
    const out = tempDir('sf-attacks-');
    assertExit(await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]), 0);
    await pg.admin.unsafe(`alter role tenant_drifted password 'Changed-Behind-Its-Back-1'`);
    const r = await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]);
    assertExit(r, 4, /drifted\.env does not boot the tenant: logging in with its DATABASE_URL failed: .*refused the password/, /--rotate-password/);
    assertExit(await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out, '--rotate-password']), 0, /rotated, password rotated; .*drifted\.env written, its login verified/);
    assertExit(await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]), 0, /unchanged, .*kept, its login verified/);
  });
});

describe('locks no tenant can take', () => {
  it('a tenant holding the old advisory keys, or trying to lock our tables, blocks neither provisioning nor another tenant\'s bootstrap', async () => {
    const out = tempDir('sf-attacks-');
    assertExit(await cli('provision', ['--tenant', 'attacker', '--tenant', 'victim', '--out-dir', out]), 0);
    const [attacker, victim] = [readEnvFile(join(out, 'attacker.env')), readEnvFile(join(out, 'victim.env'))];
    const evil = tenantClient(attacker);
    try {
      // Every advisory key this program ever used: provisioning's, and the victim's bootstrap key.
      await evil`select pg_advisory_lock(${0x5f_b0_07}, 0), pg_advisory_lock(${0x5f_b0_07}, hashtext('tenant_victim'))`;
      const tryLock = (table: string) => evil.begin((tx) => tx.unsafe(`lock table ${table} in access share mode`));
      await assert.rejects(tryLock('superfasttt_deployer.provision_lock'), /permission denied/);
      await assert.rejects(tryLock('tenant_victim.superfasttt_lock'), /permission denied/);
      assertExit(await cli('provision', ['--tenant', 'newcomer'], 'first', { PROVISION_LOCK_TIMEOUT: '3' }), 0, /newcomer: created/);
      const boot = await runCli({ ...victim, NODE_EXTRA_CA_CERTS: s3.caFile, AUTO_SUPERADMIN_EMAIL: 'admin@victim.example', AUTO_SUPERADMIN_FIRSTNAME: 'V', AUTO_SUPERADMIN_LASTNAME: 'W', DATABASE_LOCK_TIMEOUT: '3' });
      outputs.push(boot);
      assertExit(boot, 0, /acquired the bootstrap lock/);
      // Once the victim has its lock table, the attacker still cannot reach it.
      await assert.rejects(tryLock('tenant_victim.superfasttt_lock'), /permission denied/);
    } finally {
      await evil.end();
    }
  });
});

describe('provisioning waits for another run only within PROVISION_LOCK_TIMEOUT', () => {
  it('a provisioning run holding the lock: the tenant fails (exit 4) naming the holder; nothing created; then it succeeds', async () => {
    // Another run of the deployer, stuck inside its transaction.
    const stuck = postgres(deployerEnv().PROVISION_DATABASE_URL!, { max: 1, onnotice: () => {}, ssl: { rejectUnauthorized: false }, connection: { application_name: 'stuck-provision' } });
    try {
      const [me] = await stuck<{ pid: number }[]>`select pg_backend_pid() as pid`;
      await stuck`begin`;
      await stuck`lock table superfasttt_deployer.provision_lock in exclusive mode`;
      const r = await cli('provision', ['--tenant', 'patient'], 'first', { PROVISION_LOCK_TIMEOUT: '1' });
      assertExit(r, 4, new RegExp(`provisioning tenant patient waited 1 s \\(PROVISION_LOCK_TIMEOUT\\) .* table provision_lock: ExclusiveLock held by PostgreSQL backend pid ${me!.pid} \\(role deployer, stuck-provision`), /nothing was changed for it/);
      assert.equal(await roleExists('tenant_patient'), false);
    } finally {
      await stuck.end({ timeout: 1 });
    }
    assertExit(await cli('provision', ['--tenant', 'patient']), 0, /patient: created/);
  });
});

describe('a table held by the app, and SIGTERM while blocked', () => {
  /** The app, as the tenant role, holding ACCESS EXCLUSIVE on users in an open transaction. */
  async function appLock(url: string, schema: string) {
    const app = postgres(url, { max: 1, onnotice: () => {}, ssl: { rejectUnauthorized: false }, connection: { application_name: 'the-app' } });
    const [me] = await app<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await app`begin`;
    await app`lock table ${app(schema)}.users in access exclusive mode`;
    return { pid: me!.pid, release: () => app.end({ timeout: 1 }) };
  }

  it('bootstrap and check give up after DATABASE_LOCK_TIMEOUT: exit 4 naming the table and the app\'s session', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(instanceEnv(tenant)), 0);
    const lock = await appLock(tenant.url, tenant.schema);
    try {
      const holder = new RegExp(`table users: AccessExclusiveLock held by PostgreSQL backend pid ${lock.pid} \\(role ${tenant.role}, the-app, idle in transaction since \\d{4}-`);
      const r = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '2' }));
      assertExit(r, 4, /the superadmin step waited 2 s \(DATABASE_LOCK_TIMEOUT\)/, holder, new RegExp(`pg_terminate_backend\\(${lock.pid}\\)`));
      const c = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '2' }), { args: ['check'] });
      assertExit(c, 4, holder);
    } finally {
      await lock.release();
    }
  });

  it('a role whose defaults say statement_timeout = 1 ms and lock_timeout = 0 still bootstraps: the program sets its own bounds', async () => {
    const tenant = await createTenant(pg);
    await pg.admin.unsafe(`alter role ${tenant.role} set statement_timeout = '1ms'`);
    await pg.admin.unsafe(`alter role ${tenant.role} set lock_timeout = 0`);
    assertExit(await runCli(instanceEnv(tenant)), 0, /setup marked as completed/);
  });

  it('SIGTERM while a statement is blocked: exit 143 at once, and its backend and transaction are gone from the server', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(instanceEnv(tenant)), 0);
    const lock = await appLock(tenant.url, tenant.schema);
    const ours = () => pg.admin<{ pid: number; wait: string | null }[]>`
      select pid, wait_event_type as wait from pg_stat_activity where usename = ${tenant.role} and application_name = 'superfasttt-bootstrap'`;
    try {
      const { child, result } = spawnCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '60' }));
      for (let i = 0; i < 100 && !(await ours()).some((s) => s.wait === 'Lock'); i++) await sleep(100);
      assert.ok((await ours()).some((s) => s.wait === 'Lock'), 'the bootstrap is blocked on the app\'s lock');
      child.kill('SIGTERM');
      const r = await result;
      outputs.push(r);
      assertExit(r, 143, /stopped by SIGTERM before completion/);
      assert.doesNotMatch(r.output, /did not stop within 5 s/);
      // client_connection_check_interval is 1 s: the backend notices the closed socket and rolls back.
      for (let i = 0; i < 50 && (await ours()).length > 0; i++) await sleep(100);
      assert.equal((await ours()).length, 0, 'no session of the bootstrap is left on the server');
    } finally {
      await lock.release();
    }
    assert.equal((await setupState(pg, tenant.schema))?.completed, true);
    assert.equal((await users(pg, tenant.schema)).length, 1);
  });
});

describe('refusals write nothing', () => {
  it('a tenants file naming two tenants that would share a bucket is refused whole (exit 2)', async () => {
    const dir = tempDir('sf-attacks-');
    const file = join(dir, 'tenants.csv');
    writeFileSync(file, 'name\nshare_a\nshare_a_\n');
    const r = await cli('provision', ['--tenants', file, '--storage-mode', 'bucket']);
    assertExit(r, 2, /"share_a_".*ends with _/);
    assert.equal(await roleExists('tenant_share_a'), false);
  });
});
