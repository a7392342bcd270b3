// `check` predicts `bootstrap`: for every broken state, one builder each, check fails with the very
// code the bootstrap then exits with, and writes nothing in the database. Check runs first (on the
// state as built), then the bootstrap on the same state.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import { assertExit, runCli, type Env, type RunResult } from './harness/cli.js';
import { fingerprint, instanceEnv, verifiedServices } from './harness/instance.js';
import { holdBootstrapLock } from './harness/locks.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';
import { startS3, type S3Server } from './harness/s3.js';
import { startSmtp, type SmtpServer } from './harness/smtp.js';

let pg: PgServer;
let s3: S3Server;
let smtp: SmtpServer;
const BUCKET = 'superfasttt-predicts';

before(async () => {
  [pg, s3, smtp] = await Promise.all([startPostgres({ tls: false }), startS3(), startSmtp('starttls')]);
  await s3.createBucket(BUCKET);
});
after(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), smtp?.stop()]);
});

const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

function fullEnv(tenant: Tenant, overrides: Env = {}): Env {
  return instanceEnv(tenant, { ...verifiedServices(tenant, s3, smtp, BUCKET), ...overrides });
}

/** A bootstrapped instance (email and storage off: quicker, and not what these states are about). */
async function bootstrapped(overrides: Env = {}): Promise<Tenant> {
  const tenant = await createTenant(pg);
  assertExit(await runCli(instanceEnv(tenant, overrides)), 0);
  return tenant;
}

/** A session of the tenant's own role, for what the instance itself (or its app) would do. */
async function asTenant<T>(tenant: Tenant, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(tenant.url, { max: 1, onnotice: () => {} });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

interface State {
  tenant: Tenant;
  env: Env;
  /**
   * A held lock, released at the end. The schema's tables cannot be read while it is held: they are
   * compared before the lock is taken and after it is released (both runs failed: neither wrote).
   */
  release?: () => Promise<void>;
  before?: string;
}

/** One builder per broken state, with the code both commands must exit with. */
const STATES: Array<{ name: string; code: number; build: () => Promise<State> }> = [
  {
    name: 'healthy instance (control)',
    code: 0,
    async build() {
      const tenant = await bootstrapped();
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'fresh schema (control)',
    code: 0,
    async build() {
      const tenant = await createTenant(pg);
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'wrong database password',
    code: 3,
    async build() {
      const tenant = await createTenant(pg);
      const url = new URL(tenant.url);
      url.password = 'Wrong-Password-123';
      return { tenant, env: fullEnv(tenant, { DATABASE_URL: url.toString() }) };
    },
  },
  {
    name: 'schema missing',
    code: 4,
    async build() {
      const tenant = await createTenant(pg, { createSchema: false });
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'USAGE on the schema missing',
    code: 4,
    async build() {
      const tenant = await createTenant(pg, { usage: false });
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'CREATE on the schema missing',
    code: 4,
    async build() {
      const tenant = await createTenant(pg, { create: false });
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'a foreign table in the schema',
    code: 4,
    async build() {
      const tenant = await createTenant(pg);
      await pg.admin.unsafe(`create table ${quote(tenant.schema)}.loot (data text)`);
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'a foreign trigger on users',
    code: 4,
    async build() {
      const tenant = await bootstrapped();
      const s = quote(tenant.schema);
      await pg.admin.unsafe(
        `create function ${s}.steal() returns trigger language plpgsql as $$ begin return new; ` +
          `end $$;
        create trigger audit before insert or update on ${s}.users for each row execute function ${s}.steal()`,
      );
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'another role with CREATE on the schema',
    code: 4,
    async build() {
      const tenant = await createTenant(pg);
      const role = `lurker_${randomBytes(3).toString('hex')}`;
      await pg.admin.unsafe(
        `create role ${quote(role)} nologin; grant create on schema ${quote(tenant.schema)} to ${quote(role)}`,
      );
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'the bootstrap lock held past DATABASE_LOCK_TIMEOUT',
    code: 4,
    async build() {
      const tenant = await bootstrapped();
      const before = await fingerprint(pg, tenant.schema);
      const lock = await holdBootstrapLock(tenant);
      return { tenant, env: fullEnv(tenant, { DATABASE_LOCK_TIMEOUT: '1' }), release: () => lock.release(), before };
    },
  },
  {
    name: 'the app holding users past DATABASE_LOCK_TIMEOUT',
    code: 4,
    async build() {
      const tenant = await bootstrapped();
      const before = await fingerprint(pg, tenant.schema);
      const sql = postgres(tenant.url, { max: 1, onnotice: () => {} });
      const session = await sql.reserve();
      await session.unsafe(`begin; lock table ${quote(tenant.schema)}.users in access exclusive mode`);
      return {
        tenant,
        before,
        env: fullEnv(tenant, { DATABASE_LOCK_TIMEOUT: '1' }),
        async release() {
          await session.unsafe('rollback');
          session.release();
          await sql.end({ timeout: 1 });
        },
      };
    },
  },
  {
    name: 'a migration changed after it was applied (checksum)',
    code: 5,
    async build() {
      const tenant = await bootstrapped();
      await pg.admin`update ${pg.admin(tenant.schema)}.superfasttt_migrations set checksum = ${'0'.repeat(64)}`;
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'a migration unknown to this version (newer history)',
    code: 5,
    async build() {
      const tenant = await bootstrapped();
      await pg.admin`insert into ${pg.admin(tenant.schema)}.superfasttt_migrations (name, checksum, bootstrap_version)
        values ('9999_future', 'x', '99.0.0')`;
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'a history row missing (its tables are there)',
    code: 5,
    async build() {
      const tenant = await bootstrapped();
      await pg.admin`delete from ${pg.admin(tenant.schema)}.superfasttt_migrations`;
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'the bucket missing',
    code: 6,
    async build() {
      const tenant = await createTenant(pg);
      return { tenant, env: fullEnv(tenant, { STORAGE_BUCKET: 'superfasttt-missing' }) };
    },
  },
  {
    name: 'a wrong S3 secret key',
    code: 6,
    async build() {
      const tenant = await createTenant(pg);
      return { tenant, env: fullEnv(tenant, { STORAGE_SECRET_KEY: randomBytes(30).toString('base64url') }) };
    },
  },
  {
    name: 'an S3 key that may read but not write',
    code: 6,
    async build() {
      const tenant = await createTenant(pg);
      const key = s3.readOnlyKey(BUCKET);
      return {
        tenant,
        env: fullEnv(tenant, { STORAGE_ACCESS_KEY: key.accessKeyId, STORAGE_SECRET_KEY: key.secretAccessKey }),
      };
    },
  },
  {
    name: 'a wrong SMTP password',
    code: 7,
    async build() {
      const tenant = await createTenant(pg);
      return { tenant, env: fullEnv(tenant, { SMTP_PASSWORD: 'Wrong-Smtp-Password-1' }) };
    },
  },
  {
    name: 'the super admin refused by a constraint the app added',
    code: 8,
    async build() {
      const tenant = await bootstrapped({ AUTO_SUPERADMIN_EMAIL: 'first@client.example' });
      await asTenant(tenant, (sql) =>
        sql.unsafe(
          `alter table ${quote(tenant.schema)}.users add constraint one_admin check (role <> 'super_admin' or email ` +
            `= 'first@client.example') not valid`,
        ),
      );
      return { tenant, env: fullEnv(tenant) };
    },
  },
  {
    name: 'a column the app added NOT NULL without a default',
    code: 8,
    async build() {
      const tenant = await bootstrapped({ AUTO_SUPERADMIN_EMAIL: 'first@client.example' });
      await asTenant(tenant, (sql) =>
        sql.unsafe(
          `alter table ${quote(tenant.schema)}.users add column org text; update ${quote(tenant.schema)}.users set ` +
            `org = 'x'; alter table ${quote(tenant.schema)}.users alter column org set not null`,
        ),
      );
      return { tenant, env: fullEnv(tenant) };
    },
  },
];

describe('check exits with the code bootstrap exits with, for every broken state', { concurrency: 3 }, () => {
  for (const state of STATES) {
    it(`${state.name}: ${state.code}`, async () => {
      const { tenant, env, release, before } = await state.build();
      let checked: RunResult;
      let booted: RunResult;
      try {
        const unlocked = before === undefined ? await fingerprint(pg, tenant.schema) : undefined;
        checked = await runCli(env, { args: ['check', '--json'] });
        if (unlocked !== undefined)
          assert.equal(await fingerprint(pg, tenant.schema), unlocked, 'check wrote in the database');
        booted = await runCli(env);
      } finally {
        await release?.();
      }
      if (before !== undefined)
        assert.equal(
          await fingerprint(pg, tenant.schema),
          before,
          'check or the failed bootstrap wrote in the database',
        );
      assert.equal(
        checked.code,
        booted.code,
        `check exited ${checked.code}, bootstrap ` +
          `${booted.code}\ncheck:\n${checked.output}\nbootstrap:\n${booted.output}`,
      );
      assertExit(checked, state.code);
      assertExit(booted, state.code);
      assert.equal((JSON.parse(checked.stdout) as { exit_code: number }).exit_code, state.code);
    });
  }
});
