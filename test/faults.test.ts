// Faults: a database that is not up yet, or restarts in the middle of a run; signals in the
// middle of a network wait. Every case ends with a clear message and a documented exit code, and
// the next run converges.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { assertExit, runCli, spawnCli } from './harness/cli.js';
import { instanceEnv, setupState, users } from './harness/instance.js';
import { holdBootstrapLock } from './harness/locks.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';
import { startS3, type S3Server } from './harness/s3.js';
import { startSilentServer } from './harness/net.js';

let pg: PgServer;
let s3: S3Server;

before(async () => {
  [pg, s3] = await Promise.all([startPostgres({ tls: false }), startS3()]);
  await s3.createBucket('superfasttt-faults');
});
after(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

async function assertComplete(schema: string) {
  assert.equal((await setupState(pg, schema))?.completed, true);
  assert.deepEqual(
    (await users(pg, schema)).map((u) => u.role),
    ['super_admin'],
  );
}

describe('PostgreSQL faults', () => {
  it(
    'not started yet when the bootstrap starts, up a few seconds later: ' + 'the bootstrap waits and succeeds',
    async () => {
      const tenant = await createTenant(pg);
      await pg.pause();
      const { result } = spawnCli(instanceEnv(tenant, { DATABASE_CONNECT_TIMEOUT: '60' }));
      await sleep(2500);
      await pg.resume();
      const r = await result;
      assertExit(r, 0, /not reachable yet \(ECONNREFUSED\); retrying/, /super admin .* created/);
      await assertComplete(tenant.schema);
    },
  );

  it(
    'restarted in the middle of a run: ' + 'exit 3 with a clear message, nothing half-applied, the next run converges',
    async () => {
      const tenant = await createTenant(pg);
      // Hold the bootstrap lock so the run is surely in the middle (waiting in the lock step).
      const lock = await holdBootstrapLock(tenant);
      const { result } = spawnCli(instanceEnv(tenant, { DATABASE_CONNECT_TIMEOUT: '60' }));
      await sleep(800);
      await pg.pause(); // every session dies, the lock with them
      await lock.release();
      await pg.resume();
      const r = await result;
      assertExit(
        r,
        3,
        /the connection to PostgreSQL was lost during the lock step/,
        /nothing was half-applied/,
        /run again/,
      );
      assert.notEqual((await setupState(pg, tenant.schema).catch(() => undefined))?.completed, true);
      assertExit(await runCli(instanceEnv(tenant)), 0);
      await assertComplete(tenant.schema);
    },
  );
});

describe('signals in the middle of a network wait', () => {
  it('SIGTERM while waiting for PostgreSQL to come up: exit 143 at once', async () => {
    const tenant = await createTenant(pg);
    await pg.pause();
    try {
      const { child, result } = spawnCli(instanceEnv(tenant, { DATABASE_CONNECT_TIMEOUT: '60' }));
      await sleep(1500);
      child.kill('SIGTERM');
      assertExit(await result, 143, /stopped by SIGTERM before completion/);
    } finally {
      await pg.resume();
    }
  });

  it('SIGTERM while S3 does not answer: exit 143, nothing marked done, the next run converges', async () => {
    const tenant = await createTenant(pg);
    const env = instanceEnv(tenant, {
      STORAGE_PROVIDER: 's3',
      STORAGE_ENDPOINT: s3.httpEndpoint,
      STORAGE_SECURE: 'false',
      STORAGE_BUCKET: 'superfasttt-faults',
      STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
      STORAGE_SECRET_KEY: s3.admin.secretAccessKey,
      STORAGE_TIMEOUT: '30',
    });
    s3.failNext(1, 'hang');
    const { child, result } = spawnCli(env);
    await sleep(1500);
    child.kill('SIGTERM');
    const r = await result;
    s3.failNext(0, 500);
    assertExit(r, 143, /received SIGTERM/, /stopped by SIGTERM before completion; the setup was not marked as done/);
    assert.notEqual((await setupState(pg, tenant.schema).catch(() => undefined))?.completed, true);
    assertExit(await runCli(env), 0);
    await assertComplete(tenant.schema);
  });

  it(
    'SIGTERM while an SMTP server stays silent: ' + 'still exit 143 within a bounded time, nothing marked done',
    async () => {
      const silent = await startSilentServer();
      try {
        const tenant = await createTenant(pg);
        const env = instanceEnv(tenant, {
          EMAIL_PROVIDER: 'smtp',
          EMAIL_FROM: 'noreply@client.example',
          SMTP_HOST: '127.0.0.1',
          SMTP_PORT: String(silent.port),
          SMTP_USERNAME: 'mailer',
          SMTP_PASSWORD: 'Smtp-Password-42',
          EMAIL_TIMEOUT: '60',
        });
        const { child, result } = spawnCli(env, { timeoutMs: 30_000 });
        await sleep(1500);
        child.kill('SIGTERM');
        const r = await result;
        assertExit(r, 143, /received SIGTERM/, /stopped by SIGTERM before completion/);
        assert.notEqual((await setupState(pg, tenant.schema).catch(() => undefined))?.completed, true);
      } finally {
        await silent.stop();
      }
    },
  );
});
