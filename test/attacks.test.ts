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
/** A second PostgreSQL: another deployment, sharing the S3 storage with the first. */
let pg2: PgServer;
let s3: S3Server;
/** Superuser clients on the databases of the two deployments. */
const dbs: Record<string, postgres.Sql> = {};
const DEPLOYER_PASSWORD = 'Deployer-Password-43';
const outputs: RunResult[] = [];

before(async () => {
  [pg, pg2, s3] = await Promise.all([startPostgres({ tls: true }), startPostgres({ tls: true }), startS3()]);
  await s3.createBucket('shared-tenants');
  for (const [name, server] of [
    ['first', pg],
    ['second', pg2],
    ['third', pg],
  ] as const) {
    if (name === 'third') {
      await server.admin.unsafe(`create database ${name} owner deployer`);
      dbs[name] = postgres(server.url(server.superuser, server.superpassword, { database: name }), {
        max: 2,
        onnotice: () => {},
        ssl: { rejectUnauthorized: false },
      });
      continue;
    }
    await server.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
    await server.admin.unsafe(`create database ${name} owner deployer`);
    dbs[name] = postgres(server.url(server.superuser, server.superpassword, { database: name }), {
      max: 2,
      onnotice: () => {},
      ssl: { rejectUnauthorized: false },
    });
  }
});
after(async () => {
  for (const db of Object.values(dbs)) await db.end();
  await Promise.all([pg?.stop(), pg2?.stop(), s3?.stop()]);
  const secrets = [DEPLOYER_PASSWORD, s3?.admin.secretAccessKey];
  for (const r of outputs) assertNoSecrets(r, secrets);
});

function deployerEnv(database = 'first'): Env {
  return {
    PROVISION_DATABASE_URL: (database === 'second' ? pg2 : pg).url('deployer', DEPLOYER_PASSWORD, {
      database,
      sslmode: 'require',
    }),
    PROVISION_STORAGE_ENDPOINT: s3.httpsEndpoint,
    PROVISION_STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: s3.admin.secretAccessKey,
    PROVISION_STORAGE_BUCKET: 'shared-tenants',
    NODE_EXTRA_CA_CERTS: s3.caFile,
  };
}

async function cli(
  command: 'provision' | 'deprovision',
  args: string[],
  database = 'first',
  extra: Env = {},
): Promise<RunResult> {
  const r = await runCli({ ...deployerEnv(database), ...extra }, { args: [command, ...args] });
  outputs.push(r);
  return r;
}

/** The same without storage: PostgreSQL and the .env only. */
async function dbOnly(command: 'provision' | 'deprovision', args: string[]): Promise<RunResult> {
  const r = await runCli(
    { PROVISION_DATABASE_URL: deployerEnv().PROVISION_DATABASE_URL },
    { args: [command, ...args] },
  );
  outputs.push(r);
  return r;
}

async function roleExists(role: string): Promise<boolean> {
  return (await pg.admin`select 1 from pg_roles where rolname = ${role}`).length > 0;
}

async function bucketKeys(bucket: string): Promise<string[] | undefined> {
  return s3.listObjects(bucket).then(
    (objects) => [...objects.keys()].sort(),
    () => undefined,
  );
}

describe('storage identity: one tenant, one bucket or folder, proven', () => {
  it(
    'bucket mode: ' +
      'names whose bucket would be cut, trimmed or reserved are refused before anything is created (exit 2)',
    async () => {
      assertExit(
        await cli('provision', ['--tenant', 'bk1', '--storage-mode', 'bucket']),
        0,
        /bucket superfasttt-bk1 created/,
        /proof of ownership written/,
      );
      const long = 'l'.repeat(51);
      const r = await cli('provision', [
        '--tenant',
        'bk1_',
        '--tenant',
        `${long}_a`,
        '--tenant',
        'a__x_s3',
        '--storage-mode',
        'bucket',
      ]);
      assertExit(
        r,
        2,
        /"bk1_": with --storage-mode bucket, the name ends with _/,
        /longer than 51 characters/,
        /"a__x_s3".*holds __/,
      );
      for (const role of ['tenant_bk1_', `tenant_${long}_a`, 'tenant_a__x_s3'])
        assert.equal(await roleExists(role), false, `${role} was created`);
      assert.deepEqual(await bucketKeys('superfasttt-bk1'), ['.superfasttt-tenant']);
      // The same names are fine in prefix mode: their folders cannot collide.
      assertExit(await cli('provision', ['--tenant', 'bk1_']), 0, /folder tenant_bk1_\/ created/);
    },
  );

  it("a name that looks like an --opaque-names identifier is refused (it could be another tenant's hash)", async () => {
    assertExit(
      await cli('provision', ['--tenant', 'abcdef0123456789abcd']),
      2,
      /looks like an --opaque-names identifier/,
    );
  });

  for (const mode of ['bucket', 'prefix'] as const) {
    it(
      `${mode} mode: another deployment's tenant of the same name owns the storage: ` +
        `refused (exit 2), nothing created`,
      async () => {
        const name = `twin_${mode}`;
        assertExit(await cli('provision', ['--tenant', name, '--storage-mode', mode], 'first'), 0);
        const r = await cli('provision', ['--tenant', name, '--storage-mode', mode], 'second');
        assertExit(
          r,
          2,
          new RegExp(
            `${name}: failed, .* belongs to tenant id [0-9a-f-]{36} ` +
              `\\(schema tenant_${name} in database first\\): it ` +
              `is not this tenant's storage, and nothing was created`,
          ),
        );
        assert.equal((await dbs.second!`select 1 from pg_namespace where nspname = ${`tenant_${name}`}`).length, 0);
        // Deprovisioning it from the second deployment cannot purge the first one's storage.
        const purge = await cli(
          'deprovision',
          ['--tenant', name, '--storage-mode', mode, '--purge-storage', '--yes'],
          'second',
        );
        assertExit(
          purge,
          4,
          new RegExp(
            `tenant ${name} does not exist .* in database second: its storage was left alone, nothing was removed`,
          ),
        );
        const [row] = await dbs.first!`select obj_description(oid, 'pg_namespace') as comment from pg_namespace
                           where nspname = ${`tenant_${name}`}`;
        assert.match(String(row?.comment), /^superfasttt tenant [0-9a-f-]{36}$/);
      },
    );
  }

  it(
    'storage left behind by a deprovisioned tenant is not claimed by a new tenant of the same name ' + '(exit 2)',
    async () => {
      assertExit(await cli('provision', ['--tenant', 'reborn']), 0);
      assertExit(await cli('deprovision', ['--tenant', 'reborn', '--yes']), 0, /storage left alone|1 removed/);
      assertExit(
        await cli('provision', ['--tenant', 'reborn']),
        2,
        /folder shared-tenants\/tenant_reborn\/ belongs to tenant id/,
        /deprovision --purge-storage/,
      );
      assert.equal(await roleExists('tenant_reborn'), false);
    },
  );

  it('a folder that already holds data with no proof is not claimed by a new tenant (exit 2)', async () => {
    await s3.putObject('shared-tenants', 'tenant_squat/photo.jpg', "someone else's");
    assertExit(
      await cli('provision', ['--tenant', 'squat']),
      2,
      /folder shared-tenants\/tenant_squat\/ already holds 1 object\(s\) and no proof of whose they are/,
    );
    assert.equal(await roleExists('tenant_squat'), false);
  });

  it(
    'deprovision --purge-storage of a name never provisioned (foo_) ' +
      'leaves the live tenant foo alone (exit 4 / exit 2)',
    async () => {
      assertExit(await cli('provision', ['--tenant', 'foo', '--storage-mode', 'bucket']), 0);
      await s3.putObject('superfasttt-foo', 'invoice.pdf', 'customer data');
      assertExit(await cli('provision', ['--tenant', 'foo']), 0); // and a folder in the shared bucket
      await s3.putObject('shared-tenants', 'tenant_foo/invoice.pdf', 'customer data');
      assertExit(
        await cli('deprovision', ['--tenant', 'foo_', '--storage-mode', 'bucket', '--purge-storage', '--yes']),
        2,
        /ends with _/,
      );
      assertExit(
        await cli('deprovision', ['--tenant', 'foo_', '--purge-storage', '--yes']),
        4,
        /tenant foo_ does not exist/,
      );
      assert.deepEqual(await bucketKeys('superfasttt-foo'), ['.superfasttt-tenant', 'invoice.pdf']);
      assert.ok((await bucketKeys('shared-tenants'))!.includes('tenant_foo/invoice.pdf'));
      assert.equal(await roleExists('tenant_foo'), true);
    },
  );

  it('deprovision refuses storage whose proof names another tenant, and removes nothing', async () => {
    assertExit(await cli('provision', ['--tenant', 'forged', '--storage-mode', 'bucket']), 0);
    // A tenant with keys to its own bucket rewrites its proof (here: claims another tenant id).
    await s3.putObject(
      'superfasttt-forged',
      '.superfasttt-tenant',
      JSON.stringify({ tenant_id: '00000000-0000-4000-8000-000000000000', schema: 'tenant_other', database: 'first' }),
    );
    await s3.putObject('superfasttt-forged', 'data.bin', 'x');
    const r = await cli('deprovision', ['--tenant', 'forged', '--storage-mode', 'bucket', '--purge-storage', '--yes']);
    assertExit(
      r,
      4,
      new RegExp(
        'bucket superfasttt-forged belongs to tenant id 00000000-0000-4000-8000-000000000000 .*, not to this ' +
          'tenant .*; nothing was removed',
      ),
    );
    assert.equal(await roleExists('tenant_forged'), true);
    assert.deepEqual(await bucketKeys('superfasttt-forged'), ['.superfasttt-tenant', 'data.bin']);
  });

  it(
    'deprovision --purge-storage of a proven tenant removes its bucket, schema and role; ' +
      'a second run finds nothing',
    async () => {
      assertExit(await cli('provision', ['--tenant', 'leaving', '--storage-mode', 'bucket']), 0);
      await s3.putObject('superfasttt-leaving', 'a/b.txt', 'bye');
      const r = await cli('deprovision', [
        '--tenant',
        'leaving',
        '--storage-mode',
        'bucket',
        '--purge-storage',
        '--yes',
      ]);
      assertExit(
        r,
        0,
        new RegExp(
          '1 object\\(s\\) and the proof of ownership deleted from superfasttt-leaving\\/, bucket ' +
            'superfasttt-leaving deleted',
        ),
        /1 removed/,
      );
      assert.equal(await bucketKeys('superfasttt-leaving'), undefined);
      assert.equal(await roleExists('tenant_leaving'), false);
      assertExit(await cli('deprovision', ['--tenant', 'leaving', '--yes']), 0, /nothing to remove/);
    },
  );
});

describe('roles are shared by every database of a cluster: provision and deprovision use only their own', () => {
  it('a tenant of another database of the same cluster: its role is neither adopted nor dropped (exit 4)', async () => {
    assertExit(await cli('provision', ['--tenant', 'neighbour'], 'first'), 0);
    const r = await cli('provision', ['--tenant', 'neighbour'], 'third');
    assertExit(
      r,
      4,
      new RegExp(
        'role tenant_neighbour belongs to tenant id [0-9a-f-]{36}, which has no schema in database third .*; ' +
          'nothing was changed',
      ),
    );
    assert.equal((await dbs.third!`select 1 from pg_namespace where nspname = 'tenant_neighbour'`).length, 0);
    assertExit(
      await cli('deprovision', ['--tenant', 'neighbour', '--yes'], 'third'),
      4,
      /has no schema tenant_neighbour in database third, only a role/,
    );
    assert.equal(await roleExists('tenant_neighbour'), true);
  });

  it('a role made by hand is neither taken over (its settings unchanged) nor dropped', async () => {
    await pg.admin.unsafe(`create role tenant_handmade login password 'Hand-Made-Password-1'`);
    assertExit(
      await cli('provision', ['--tenant', 'handmade']),
      4,
      /role tenant_handmade exists but provision did not make it/,
    );
    const [role] = await pg.admin<
      { rolconnlimit: number; rolconfig: string[] | null }[]
    >`select rolconnlimit, rolconfig from pg_roles where rolname = 'tenant_handmade'`;
    assert.deepEqual({ ...role }, { rolconnlimit: -1, rolconfig: null });
    assert.equal((await dbs.first!`select 1 from pg_namespace where nspname = 'tenant_handmade'`).length, 0);
    assertExit(await cli('deprovision', ['--tenant', 'handmade', '--yes']), 4, /only a role/);
    assert.equal(await roleExists('tenant_handmade'), true);
  });
});

describe("a tenant's own bucket is never the shared bucket of the folders", () => {
  it(
    "refused both ways (exit 2), and a purge of a bucket holding other tenants' folders " + 'deletes nothing (exit 4)',
    async () => {
      assertExit(await cli('provision', ['--tenant', 'hub', '--storage-mode', 'bucket']), 0);
      assertExit(
        await cli('provision', ['--tenant', 'alice'], 'first', { PROVISION_STORAGE_BUCKET: 'superfasttt-hub' }),
        2,
        /PROVISION_STORAGE_BUCKET=superfasttt-hub is the own bucket of tenant id/,
      );
      assert.equal(await roleExists('tenant_alice'), false);
      assertExit(
        await cli('provision', ['--tenant', 'shared_tenants', '--storage-mode', 'bucket'], 'first', {
          PROVISION_STORAGE_BUCKET: 'superfasttt-shared-tenants',
        }),
        2,
        /its bucket superfasttt-shared-tenants is PROVISION_STORAGE_BUCKET/,
      );
      // Folders another version (or a hand) put into the tenant's bucket: the purge refuses to take them along.
      await s3.putObject(
        'superfasttt-hub',
        'tenant_bob/.superfasttt-tenant',
        JSON.stringify({ tenant_id: '11111111-1111-4111-8111-111111111111', schema: 'tenant_bob', database: 'first' }),
      );
      await s3.putObject('superfasttt-hub', 'tenant_bob/invoice.pdf', "bob's");
      const r = await cli('deprovision', ['--tenant', 'hub', '--storage-mode', 'bucket', '--purge-storage', '--yes']);
      assertExit(
        r,
        4,
        new RegExp(
          'bucket superfasttt-hub also holds the folders of other tenants ' +
            '\\(tenant_bob\\/\\.superfasttt-tenant\\): nothing was removed',
        ),
      );
      assert.ok((await bucketKeys('superfasttt-hub'))!.includes('tenant_bob/invoice.pdf'));
      assert.equal(await roleExists('tenant_hub'), true);
    },
  );
});

describe('deprovision refuses what provision did not make, or what is still in use (exit 4)', () => {
  it('a tenant_* schema the deployer does not own: the owner named, nothing dropped', async () => {
    await dbs.first!.unsafe('create schema tenant_notmine');
    await pg.admin.unsafe(`create role tenant_notmine login password 'Not-Mine-Password-1'`);
    const r = await cli('deprovision', ['--tenant', 'notmine', '--yes']);
    assertExit(
      r,
      4,
      new RegExp(
        'schema tenant_notmine belongs to postgres, not to the deployer deployer: provision did not make it, and ' +
          'nothing was removed',
      ),
      /ALTER SCHEMA "tenant_notmine" OWNER TO "deployer"/,
    );
    assert.equal((await dbs.first!`select 1 from pg_namespace where nspname = 'tenant_notmine'`).length, 1);
    assert.equal(await roleExists('tenant_notmine'), true);
  });

  it('a tenant still connected: its sessions named, nothing removed', async () => {
    const out = tempDir('sf-attacks-');
    assertExit(await cli('provision', ['--tenant', 'busy', '--out-dir', out]), 0);
    const app = tenantClient(readEnvFile(join(out, 'busy.env')));
    try {
      await app`select 1`;
      assertExit(
        await cli('deprovision', ['--tenant', 'busy', '--yes']),
        4,
        /tenant busy is still connected \(pid \d+/,
        /stop its instance first/,
      );
      assert.equal(await roleExists('tenant_busy'), true);
    } finally {
      await app.end();
    }
    assertExit(await cli('deprovision', ['--tenant', 'busy', '--yes']), 0, /1 removed/);
  });
});

describe('provision never reports a tenant ready that cannot boot', () => {
  it(
    'provision, deprovision, provision: ' +
      'the stale .env is refused (exit 4) unless --force, which rewrites it; it boots',
    async () => {
      const out = tempDir('sf-attacks-');
      assertExit(await dbOnly('provision', ['--tenant', 'again', '--out-dir', out]), 0, /its login verified/);
      assertExit(await dbOnly('deprovision', ['--tenant', 'again', '--yes']), 0, /1 removed/);
      const r = await dbOnly('provision', ['--tenant', 'again', '--out-dir', out]);
      assertExit(r, 4, /again\.env exists but role tenant_again does not/, /--force/);
      assert.equal(await roleExists('tenant_again'), false, 'nothing was created');
      assertExit(
        await dbOnly('provision', ['--tenant', 'again', '--out-dir', out, '--force']),
        0,
        /again\.env written, its login verified/,
      );
      const env = readEnvFile(join(out, 'again.env'));
      const boot = await runCli({
        ...env,
        AUTO_SUPERADMIN_EMAIL: 'admin@again.example',
        AUTO_SUPERADMIN_FIRSTNAME: 'A',
        AUTO_SUPERADMIN_LASTNAME: 'B',
      });
      outputs.push(boot);
      assertExit(boot, 0, /setup marked as completed/);
    },
  );

  it(
    'a .env whose password no longer works fails the re-run (exit 4) with the fix; ' + '--rotate-password repairs it',
    async () => {
      const out = tempDir('sf-attacks-');
      assertExit(await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]), 0);
      await pg.admin.unsafe(`alter role tenant_drifted password 'Changed-Behind-Its-Back-1'`);
      const r = await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]);
      assertExit(
        r,
        4,
        /drifted\.env does not boot the tenant: logging in with its DATABASE_URL failed: .*refused the password/,
        /--rotate-password/,
      );
      assertExit(
        await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out, '--rotate-password']),
        0,
        /rotated, password rotated; .*drifted\.env written, its login verified/,
      );
      assertExit(
        await dbOnly('provision', ['--tenant', 'drifted', '--out-dir', out]),
        0,
        /unchanged, .*kept, its login verified/,
      );
    },
  );
});

describe('locks no tenant can take', () => {
  it(
    'a tenant holding the old advisory keys, or trying to lock our tables, ' +
      "blocks neither provisioning nor another tenant's bootstrap",
    async () => {
      const out = tempDir('sf-attacks-');
      assertExit(await cli('provision', ['--tenant', 'attacker', '--tenant', 'victim', '--out-dir', out]), 0);
      const [attacker, victim] = [readEnvFile(join(out, 'attacker.env')), readEnvFile(join(out, 'victim.env'))];
      const evil = tenantClient(attacker);
      try {
        // Every advisory key this program ever used: provisioning's, and the victim's bootstrap key.
        await evil`select pg_advisory_lock(${0x5f_b0_07}, 0),
                          pg_advisory_lock(${0x5f_b0_07}, hashtext('tenant_victim'))`;
        const tryLock = (table: string) => evil.begin((tx) => tx.unsafe(`lock table ${table} in access share mode`));
        await assert.rejects(tryLock('superfasttt_deployer.provision_lock'), /permission denied/);
        await assert.rejects(tryLock('tenant_victim.superfasttt_lock'), /permission denied/);
        assertExit(
          await cli('provision', ['--tenant', 'newcomer'], 'first', { PROVISION_LOCK_TIMEOUT: '3' }),
          0,
          /newcomer: created/,
        );
        const boot = await runCli({
          ...victim,
          NODE_EXTRA_CA_CERTS: s3.caFile,
          AUTO_SUPERADMIN_EMAIL: 'admin@victim.example',
          AUTO_SUPERADMIN_FIRSTNAME: 'V',
          AUTO_SUPERADMIN_LASTNAME: 'W',
          DATABASE_LOCK_TIMEOUT: '3',
        });
        outputs.push(boot);
        assertExit(boot, 0, /acquired the bootstrap lock/);
        // Once the victim has its lock table, the attacker still cannot reach it.
        await assert.rejects(tryLock('tenant_victim.superfasttt_lock'), /permission denied/);
      } finally {
        await evil.end();
      }
    },
  );
});

describe('provisioning waits for another run only within PROVISION_LOCK_TIMEOUT', () => {
  it('a provisioning run holding the lock: exit 4 naming the holder, nothing created; then it succeeds', async () => {
    // Another run of the deployer, stuck inside its transaction.
    const stuck = postgres(deployerEnv().PROVISION_DATABASE_URL!, {
      max: 1,
      onnotice: () => {},
      ssl: { rejectUnauthorized: false },
      connection: { application_name: 'stuck-provision' },
    });
    try {
      const [me] = await stuck<{ pid: number }[]>`select pg_backend_pid() as pid`;
      await stuck`begin`;
      await stuck`lock table superfasttt_deployer.provision_lock in exclusive mode`;
      const r = await cli('provision', ['--tenant', 'patient'], 'first', { PROVISION_LOCK_TIMEOUT: '1' });
      assertExit(
        r,
        4,
        new RegExp(
          `waited 1 s \\(PROVISION_LOCK_TIMEOUT\\) .* table provision_lock: ExclusiveLock held by PostgreSQL backend ` +
            `pid ${me!.pid} \\(role deployer, stuck-provision`,
        ),
      );
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
    const app = postgres(url, {
      max: 1,
      onnotice: () => {},
      ssl: { rejectUnauthorized: false },
      connection: { application_name: 'the-app' },
    });
    const [me] = await app<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await app`begin`;
    await app`lock table ${app(schema)}.users in access exclusive mode`;
    return { pid: me!.pid, release: () => app.end({ timeout: 1 }) };
  }

  it(
    'bootstrap and check give up after DATABASE_LOCK_TIMEOUT: ' + "exit 4 naming the table and the app's session",
    async () => {
      const tenant = await createTenant(pg);
      assertExit(await runCli(instanceEnv(tenant)), 0);
      const lock = await appLock(tenant.url, tenant.schema);
      try {
        const holder = new RegExp(
          `table users: AccessExclusiveLock held by PostgreSQL backend pid ${lock.pid} \\(role ${tenant.role}, ` +
            `the-app, idle in transaction since \\d{4}-`,
        );
        const r = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '2' }));
        assertExit(
          r,
          4,
          // The first read of users: whether anything is left to do (src/steps/completion.ts).
          /the lock step waited 2 s \(DATABASE_LOCK_TIMEOUT\)/,
          holder,
          new RegExp(`pg_terminate_backend\\(${lock.pid}\\)`),
        );
        const c = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '2' }), { args: ['check'] });
        assertExit(c, 4, holder);
      } finally {
        await lock.release();
      }
    },
  );

  it(
    'a role whose defaults say statement_timeout = 1 ms and lock_timeout = 0 still bootstraps: ' +
      'the program sets its own bounds',
    async () => {
      const tenant = await createTenant(pg);
      await pg.admin.unsafe(`alter role ${tenant.role} set statement_timeout = '1ms'`);
      await pg.admin.unsafe(`alter role ${tenant.role} set lock_timeout = 0`);
      assertExit(await runCli(instanceEnv(tenant)), 0, /setup marked as completed/);
    },
  );

  it(
    'SIGTERM while a statement is blocked: ' +
      'exit 143 at once, and its backend and transaction are gone from the server',
    async () => {
      const tenant = await createTenant(pg);
      assertExit(await runCli(instanceEnv(tenant)), 0);
      const lock = await appLock(tenant.url, tenant.schema);
      const ours = () => pg.admin<{ pid: number; wait: string | null }[]>`
      select pid, wait_event_type as wait from pg_stat_activity
      where usename = ${tenant.role} and application_name = 'superfasttt-bootstrap'`;
      try {
        const { child, result } = spawnCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '60' }));
        for (let i = 0; i < 100 && !(await ours()).some((s) => s.wait === 'Lock'); i++) await sleep(100);
        assert.ok(
          (await ours()).some((s) => s.wait === 'Lock'),
          "the bootstrap is blocked on the app's lock",
        );
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
    },
  );
});

describe("the schema stays the instance's, and other roles' code never runs in its sessions", () => {
  it(
    'another role that may create in the schema (even with nothing in it yet): ' +
      'bootstrap and check exit 4 naming it, nothing written',
    async () => {
      const tenant = await createTenant(pg);
      await pg.admin.unsafe('create role lurker nologin');
      await pg.admin.unsafe(`grant create on schema ${tenant.schema} to lurker`);
      const r = await runCli(instanceEnv(tenant));
      outputs.push(r);
      assertExit(
        r,
        4,
        new RegExp(`schema ${tenant.schema} lets lurker create objects in it besides ${tenant.role}`),
        new RegExp(`REVOKE CREATE ON SCHEMA "${tenant.schema}" FROM "lurker";`),
      );
      assertExit(await runCli(instanceEnv(tenant), { args: ['check'] }), 4, /lets lurker create objects/);
      assert.equal(
        (await pg.admin`select 1 from pg_class where relnamespace = ${tenant.schema}::regnamespace`).length,
        0,
      );
    },
  );

  it('a name with a line break and an escape sequence cannot forge a log line nor drive the terminal', async () => {
    const tenant = await createTenant(pg);
    await pg.admin.unsafe('create role forger nologin');
    await pg.admin.unsafe(`grant usage, create on schema ${tenant.schema} to forger`);
    await pg.admin.unsafe('set role forger');
    try {
      await pg.admin.unsafe(`create table ${tenant.schema}."x
ok   [superadmin] setup marked as completed[2J" ()`);
    } finally {
      await pg.admin.unsafe('reset role');
    }
    for (const args of [[], ['check']]) {
      const r = await runCli(instanceEnv(tenant), { args });
      outputs.push(r);
      assertExit(r, 4, /\\x0aok {3}\[superadmin\] setup marked as completed\\x1b\[2J/);
      assert.doesNotMatch(r.output, /^ok\s+\[superadmin\]/m);
      assert.ok(!r.output.includes('\x1b'), 'no escape character reaches the terminal');
    }
  });

  it('a function of another role in public that shadows a built-in is never called by the bootstrap', async () => {
    const tenant = await createTenant(pg);
    await pg.admin.unsafe('grant create on schema public to public');
    await pg.admin.unsafe('create role mallory nologin');
    await pg.admin.unsafe('create table public.calls (caller text)');
    await pg.admin.unsafe('grant insert on public.calls to public');
    await pg.admin.unsafe('alter table public.calls owner to mallory');
    await pg.admin.unsafe('set role mallory');
    try {
      // lower(name) is a better match for a name column than the built-in lower(text).
      await pg.admin.unsafe(
        `create function public.lower(name) returns text language sql volatile as $$ insert into public.calls values ` +
          `(current_user); select pg_catalog.lower($1::text) $$`,
      );
    } finally {
      await pg.admin.unsafe('reset role');
    }
    try {
      assertExit(await runCli(instanceEnv(tenant)), 0, /setup marked as completed/);
      assert.deepEqual(
        (await pg.admin<{ caller: string }[]>`select caller from public.calls`).map((c) => c.caller),
        [],
      );
    } finally {
      await pg.admin.unsafe(
        'drop function public.lower(name); drop table public.calls; revoke create on schema public from public',
      );
    }
  });

  it("the app holding a row lock (SELECT ... FOR UPDATE) is named when the super admin's update gives up", async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(instanceEnv(tenant)), 0);
    const app = postgres(tenant.url, {
      max: 1,
      onnotice: () => {},
      ssl: { rejectUnauthorized: false },
      connection: { application_name: 'the-app' },
    });
    try {
      const [me] = await app<{ pid: number }[]>`select pg_backend_pid() as pid`;
      await app`begin`;
      await app`select * from ${app(tenant.schema)}.users for update`;
      const r = await runCli(
        instanceEnv(tenant, {
          DATABASE_LOCK_TIMEOUT: '1',
          AUTO_SUPERADMIN_RESET_PASSWORD: 'true',
          AUTO_SUPERADMIN_PASSWORD: 'Another-Strong-Pw-42',
        }),
      );
      outputs.push(r);
      assertExit(
        r,
        4,
        new RegExp(
          `table users: RowShareLock held by PostgreSQL backend pid ${me!.pid} \\(role ${tenant.role}, the-app`,
        ),
      );
    } finally {
      await app.end({ timeout: 1 });
    }
  });
});

describe('refusals write nothing', () => {
  it(
    'a tenants file with one name that cannot have its own bucket is refused whole (exit 2): ' +
      'nothing is created for the others',
    async () => {
      const dir = tempDir('sf-attacks-');
      const file = join(dir, 'tenants.csv');
      writeFileSync(file, 'name\nshare_a\nshare_a_\n');
      const r = await cli('provision', ['--tenants', file, '--storage-mode', 'bucket']);
      assertExit(r, 2, /"share_a_".*ends with _/);
      assert.equal(await roleExists('tenant_share_a'), false);
    },
  );
});
