// Replicas starting together, runs killed at any moment, signals, a stuck lock holder.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, spawnCli } from './harness/cli.js';
import { ADMIN, history, instanceEnv, setupState, users } from './harness/instance.js';
import { holdBootstrapLock } from './harness/locks.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';

let pg: PgServer;

before(async () => {
  pg = await startPostgres({ tls: true });
});
after(async () => {
  await pg?.stop();
});

/** The invariant of every state a run can leave: marked done implies a super admin exists. */
async function assertConsistent(tenant: Tenant) {
  const state = await setupState(pg, tenant.schema).catch(() => undefined);
  if (state?.completed) {
    const admins = (await users(pg, tenant.schema)).filter((u) => u.role === 'super_admin');
    assert.equal(admins.length, 1, 'setup marked done without its super admin');
  }
}

async function assertComplete(tenant: Tenant) {
  assert.equal((await setupState(pg, tenant.schema))?.completed, true);
  const all = await users(pg, tenant.schema);
  assert.deepEqual(
    all.map((u) => [u.email, u.role]),
    [[ADMIN.email.toLowerCase(), 'super_admin']],
  );
  assert.deepEqual(
    (await history(pg, tenant.schema)).map((h) => h.name),
    ['0001_initial'],
  );
}

describe('concurrency', () => {
  it('8 copies started at once on a fresh schema all exit 0, with one admin and each migration once', async () => {
    const tenant = await createTenant(pg);
    const results = await Promise.all(Array.from({ length: 8 }, () => runCli(instanceEnv(tenant))));
    for (const r of results) {
      assertExit(r, 0);
      assertNoSecrets(r, [ADMIN.password, tenant.password]);
    }
    assert.equal(results.filter((r) => /super admin .* created/.test(r.output)).length, 1);
    assert.equal(results.filter((r) => /applied 1 migration/.test(r.output)).length, 1);
    await assertComplete(tenant);
  });

  it('a run killed (SIGKILL) at random moments always converges on the next run', async () => {
    const tenant = await createTenant(pg);
    for (let i = 0; i < 8; i++) {
      const { child, result } = spawnCli(instanceEnv(tenant));
      await sleep(Math.random() * 400);
      child.kill('SIGKILL');
      await result;
      await assertConsistent(tenant);
    }
    assertExit(await runCli(instanceEnv(tenant)), 0);
    await assertComplete(tenant);
  });
});

describe('the bootstrap lock', () => {
  it('waits for a run in progress, then proceeds', async () => {
    const tenant = await createTenant(pg);
    const lock = await holdBootstrapLock(tenant);
    const { result } = spawnCli(instanceEnv(tenant));
    await sleep(700);
    // While it waits, the run holds two connections: its own, and the one that will hold the lock.
    const [sessions] = await pg.admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity
      where usename = ${tenant.role} and application_name = 'superfasttt-bootstrap'`;
    assert.equal(sessions!.n, 2);
    await lock.release();
    const r = await result;
    assertExit(
      r,
      0,
      new RegExp(
        `another bootstrap of schema ${tenant.schema} is running \\(table superfasttt_lock: ExclusiveLock held by ` +
          `PostgreSQL backend pid ${lock.pid}`,
      ),
      /after waiting \d+ ms/,
    );
    await assertComplete(tenant);
  });

  it('gives up after DATABASE_LOCK_TIMEOUT naming the holder: exit 4, nothing done', async () => {
    const tenant = await createTenant(pg);
    const lock = await holdBootstrapLock(tenant);
    try {
      const r = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '1' }));
      assertExit(
        r,
        4,
        new RegExp(
          `another bootstrap of this schema\\) waited 1 s \\(DATABASE_LOCK_TIMEOUT\\) for a lock in schema ` +
            `${tenant.schema} and gave up: table superfasttt_lock: ` +
            `ExclusiveLock held by PostgreSQL backend pid ${lock.pid}`,
        ),
        new RegExp(`pg_terminate_backend\\(${lock.pid}\\)`),
      );
    } finally {
      await lock.release();
    }
    assert.deepEqual(await users(pg, tenant.schema).catch(() => []), []);
  });

  it('a stuck run of the same role is named with its pid, application and since when', async () => {
    const tenant = await createTenant(pg);
    const lock = await holdBootstrapLock(tenant, 'superfasttt-bootstrap');
    try {
      const r = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '1' }));
      assertExit(
        r,
        4,
        new RegExp(
          `held by PostgreSQL backend pid ${lock.pid} \\(role ${tenant.role}, superfasttt-bootstrap, idle in ` +
            `transaction since \\d{4}-\\d\\d-\\d\\dT`,
        ),
      );
    } finally {
      await lock.release();
    }
  });

  it('a complete instance is confirmed without the lock: a stuck holder does not make it wait', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(instanceEnv(tenant)), 0);
    const lock = await holdBootstrapLock(tenant);
    try {
      const r = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '30' }));
      assertExit(r, 0, /is bootstrapped and up to date .*: nothing to do, confirmed without the lock/);
      assert.doesNotMatch(r.output, /waiting up to|acquired the bootstrap lock/);
      // check predicts it: no wait either.
      const c = await runCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '30' }), { args: ['check'] });
      assertExit(c, 0, /a bootstrap would confirm it without the lock/);
      assert.doesNotMatch(c.output, /watching it/);
    } finally {
      await lock.release();
    }
    await assertComplete(tenant);
  });

  it('runs waiting for a bootstrap that completes the instance are released together, none locks', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(instanceEnv(tenant)), 0);
    // Something left to do (a setting differs), while "another bootstrap" (the test) holds the lock.
    const settings = `${tenant.schema}.instance_settings`;
    const [apis] = await pg.admin<{ value: unknown }[]>`select value from ${pg.admin(tenant.schema)}.instance_settings
      where key = 'apis'`;
    await pg.admin.unsafe(`update ${settings} set value = '{"changed": true}' where key = 'apis'`);
    const lock = await holdBootstrapLock(tenant);
    const runs = Array.from({ length: 5 }, () => spawnCli(instanceEnv(tenant, { DATABASE_LOCK_TIMEOUT: '30' })));
    // Every run waits in SHARE mode behind the holder.
    for (let waiting = 0; waiting < 5; await sleep(50)) {
      const [row] = await pg.admin<{ n: number }[]>`select count(*)::int as n from pg_locks
        where not granted and mode = 'ShareLock' and relation = ${`${tenant.schema}.superfasttt_lock`}::regclass`;
      waiting = row?.n ?? 0;
    }
    // The holder completes the instance, then ends.
    const restored = pg.admin.json(apis!.value as never);
    await pg.admin`update ${pg.admin(tenant.schema)}.instance_settings set value = ${restored} where key = 'apis'`;
    await lock.release();
    for (const { result } of runs) {
      const r = await result;
      assertExit(r, 0, /another bootstrap finished it after waiting \d+ ms, confirmed without the lock/);
      assert.doesNotMatch(r.output, /acquired the bootstrap lock|settings recorded/);
    }
    await assertComplete(tenant);
  });

  it('does not block another schema', async () => {
    const [a, b] = [await createTenant(pg), await createTenant(pg)];
    const lock = await holdBootstrapLock(a);
    try {
      assertExit(await runCli(instanceEnv(b, { DATABASE_LOCK_TIMEOUT: '1' })), 0);
    } finally {
      await lock.release();
    }
  });
});

describe('signals', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal} while waiting stops cleanly: exit ${code}, clear message, nothing marked done`, async () => {
      const tenant = await createTenant(pg);
      const lock = await holdBootstrapLock(tenant);
      try {
        const { child, result } = spawnCli(instanceEnv(tenant));
        await sleep(700);
        child.kill(signal);
        const r = await result;
        assertExit(
          r,
          code,
          new RegExp(`received ${signal}`),
          new RegExp(`stopped by ${signal} before completion; the setup was not marked as done`),
        );
        assert.doesNotMatch(
          r.output,
          /did not stop within 5 s/,
          'the waiting lock session is closed by the signal, not by the forced exit',
        );
      } finally {
        await lock.release();
      }
      assert.notEqual((await setupState(pg, tenant.schema).catch(() => undefined))?.completed, true);
      assertExit(await runCli(instanceEnv(tenant)), 0);
      await assertComplete(tenant);
    });
  }
});
