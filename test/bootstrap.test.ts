// End to end against a real PostgreSQL (TLS on, scram-sha-256), through the built executable.
import assert from 'node:assert/strict';
import { verify } from '@node-rs/argon2';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type RunResult } from './harness/cli.js';
import { ADMIN, history, instanceEnv, relations, setupState, users } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';
import { startSilentServer } from './harness/net.js';
import { tempDir } from './harness/net.js';

let pg: PgServer;
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];

async function run(tenant: Tenant, overrides: Record<string, string | undefined> = {}) {
  secrets.push(tenant.password);
  const result = await runCli(instanceEnv(tenant, overrides));
  outputs.push(result);
  return result;
}

before(async () => {
  pg = await startPostgres({ tls: true });
});
after(async () => {
  await pg?.stop();
});

describe('bootstrap of a fresh tenant', () => {
  let tenant: Tenant;
  let first: RunResult;
  before(async () => {
    tenant = await createTenant(pg);
    first = await run(tenant);
  });

  it('exits 0 with one line per step and a summary', () => {
    assertExit(first, 0);
    for (const step of [
      'config',
      'database',
      'lock',
      'schema',
      'migrations',
      'storage',
      'email',
      'superadmin',
      'welcome',
      'summary',
    ]) {
      assert.match(first.stdout, new RegExp(`\\[${step}\\] .*\\(\\d+(\\.\\d+)? m?s\\)`), `no line for step ${step}`);
    }
    assert.match(first.stdout, /TLS on/);
    assert.match(first.stdout, /super admin admin@client\.example created/);
    assert.match(first.stdout, /setup marked as completed/);
  });

  it('creates the super admin: lowercase email, super_admin, argon2id hash of the password', async () => {
    const [user, ...others] = await users(pg, tenant.schema);
    assert.equal(others.length, 0);
    assert.equal(user!.email, ADMIN.email.toLowerCase());
    assert.equal(user!.role, 'super_admin');
    assert.equal(user!.first_name, ADMIN.firstName);
    assert.equal(user!.phone, ADMIN.phone);
    assert.match(user!.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.ok(await verify(user!.password_hash, ADMIN.password));
  });

  it('marks the setup completed by bootstrap, with the version', async () => {
    const state = await setupState(pg, tenant.schema);
    assert.equal(state?.completed, true);
    assert.equal(state?.completed_by, 'bootstrap');
    assert.match(state?.bootstrap_version ?? '', /^\d+\.\d+\.\d+/);
  });

  it('keeps the migration history with checksums in the tenant schema, and creates nothing in public', async () => {
    const rows = await history(pg, tenant.schema);
    assert.deepEqual(
      rows.map((r) => r.name),
      ['0001_initial'],
    );
    assert.match(rows[0]!.checksum, /^[0-9a-f]{64}$/);
    assert.deepEqual(await relations(pg, tenant.schema), [
      'instance_settings',
      'setup_state',
      'superfasttt_lock',
      'superfasttt_migrations',
      'users',
    ]);
    assert.deepEqual(await relations(pg, 'public'), []);
  });

  it('records all APIs enabled and no storage or email provider in instance_settings', async () => {
    const rows = await pg.admin<
      { key: string; value: unknown }[]
    >`select key, value from ${pg.admin(tenant.schema)}.instance_settings order by key`;
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.key, r.value])), {
      apis: { all: true, modules: null },
      email: { provider: null },
      storage: { provider: null },
    });
  });

  it('a re-run changes nothing: same hash, same updated_at, no migration', async () => {
    const [before] = await users(pg, tenant.schema);
    const again = await run(tenant);
    assertExit(again, 0, /schema is up to date/, /already bootstrapped, nothing changed/);
    const [afterRun] = await users(pg, tenant.schema);
    assert.equal(afterRun!.password_hash, before!.password_hash);
    assert.deepEqual(afterRun!.updated_at, before!.updated_at);
  });

  it('the database refuses to reopen the wizard: no update to false, no delete, no truncate', async () => {
    const tenantSql = (await import('postgres')).default(tenant.url, {
      max: 1,
      onnotice: () => {},
      ssl: { rejectUnauthorized: false },
    });
    try {
      await assert.rejects(
        tenantSql`update ${tenantSql(tenant.schema)}.setup_state set completed = false`,
        /cannot be reopened/,
      );
      await assert.rejects(tenantSql`delete from ${tenantSql(tenant.schema)}.setup_state`, /cannot be deleted/);
      await assert.rejects(tenantSql`truncate ${tenantSql(tenant.schema)}.setup_state`, /cannot be deleted/);
    } finally {
      await tenantSql.end();
    }
    assert.equal((await setupState(pg, tenant.schema))?.completed, true);
  });

  it('logs JSON lines with LOG_FORMAT=json', async () => {
    const r = await run(tenant, { LOG_FORMAT: 'json' });
    assertExit(r, 0);
    const lines = r.output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: string; level: string; duration_ms: number | null });
    const steps = lines.filter((l) => l.level === 'info').map((l) => l.step);
    // Storage and email run beside the database chain: their lines may come anywhere before superadmin.
    assert.deepEqual(
      steps.filter((s) => s !== 'storage' && s !== 'email'),
      ['config', 'database', 'schema', 'lock', 'migrations', 'superadmin', 'welcome', 'summary'],
    );
    assert.ok(
      steps.indexOf('storage') < steps.indexOf('superadmin') && steps.indexOf('email') < steps.indexOf('superadmin'),
    );
    assert.ok(lines.every((l) => l.step === 'config' || typeof l.duration_ms === 'number'));
  });
});

describe('the bundle', () => {
  it('dist/ copied alone into an empty directory bootstraps a tenant (native argon2 binding included)', async () => {
    const { cpSync } = await import('node:fs');
    const { dirname, join } = await import('node:path');
    const { BUNDLE } = await import('./harness/cli.js');
    const alone = tempDir('sf-dist-');
    cpSync(dirname(BUNDLE), alone, { recursive: true });
    const tenant = await createTenant(pg);
    secrets.push(tenant.password);
    const r = await runCli(instanceEnv(tenant), { bundle: join(alone, 'superfasttt-bootstrap.mjs'), cwd: alone });
    outputs.push(r);
    assertExit(r, 0, /super admin .* created/);
    assert.match((await users(pg, tenant.schema))[0]!.password_hash, /^\$argon2id\$/);
  });
});

describe('secrets from files', () => {
  it(
    'DATABASE_URL_FILE and AUTO_SUPERADMIN_PASSWORD_FILE ' + '(with trailing newlines) bootstrap the instance',
    async () => {
      const { writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const tenant = await createTenant(pg);
      const dir = tempDir('sf-secrets-');
      writeFileSync(join(dir, 'url'), tenant.url + '\n');
      writeFileSync(join(dir, 'password'), ADMIN.password + '\n');
      const r = await run(tenant, {
        DATABASE_URL: undefined,
        DATABASE_URL_FILE: join(dir, 'url'),
        AUTO_SUPERADMIN_PASSWORD: undefined,
        AUTO_SUPERADMIN_PASSWORD_FILE: join(dir, 'password'),
      });
      assertExit(r, 0, /created/);
      const [user] = await users(pg, tenant.schema);
      assert.ok(await verify(user!.password_hash, ADMIN.password), 'the newline must not be part of the password');
    },
  );
});

describe('ENABLED_APIS', () => {
  it('restricts the API modules, and a changed environment updates the setting on the next run', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant, { ENABLED_APIS: 'users, files,users' }), 0);
    const apis = async () =>
      (
        await pg.admin<
          { value: unknown }[]
        >`select value from ${pg.admin(tenant.schema)}.instance_settings where key = 'apis'`
      )[0]?.value;
    assert.deepEqual(await apis(), { all: false, modules: ['users', 'files'] });
    assertExit(await run(tenant), 0, /settings recorded \(apis\)/);
    assert.deepEqual(await apis(), { all: true, modules: null });
  });
});

describe('existing users', () => {
  it('promotes an existing non-admin (any email case), keeping its password and names', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant, { AUTO_SUPERADMIN_EMAIL: 'first@client.example' }), 0);
    await pg.admin`insert into ${pg.admin(tenant.schema)}.users (email, first_name, last_name, password_hash, role)
                   values ('bob@client.example', 'Bob', 'Original', 'not-argon2', 'user')`;
    const r = await run(tenant, { AUTO_SUPERADMIN_EMAIL: 'BOB@Client.Example' });
    assertExit(r, 0, /promoted from user to super_admin/);
    const bob = (await users(pg, tenant.schema)).find((u) => u.email === 'bob@client.example');
    assert.equal(bob?.role, 'super_admin');
    assert.equal(bob?.password_hash, 'not-argon2');
    assert.equal(bob?.last_name, 'Original');
  });

  it('AUTO_SUPERADMIN_RESET_PASSWORD=true sets the new password, once', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant), 0);
    const newPassword = 'Another-Strong-Pw-42';
    secrets.push(newPassword);
    const unchanged = await run(tenant, { AUTO_SUPERADMIN_PASSWORD: newPassword });
    assertExit(unchanged, 0);
    const [kept] = await users(pg, tenant.schema);
    assert.ok(await verify(kept!.password_hash, ADMIN.password), 'without the flag the password must not change');

    assertExit(
      await run(tenant, { AUTO_SUPERADMIN_PASSWORD: newPassword, AUTO_SUPERADMIN_RESET_PASSWORD: 'true' }),
      0,
      /password of .* reset/,
    );
    const [reset] = await users(pg, tenant.schema);
    assert.ok(await verify(reset!.password_hash, newPassword));

    // Same password again with the flag: nothing to change.
    assertExit(
      await run(tenant, { AUTO_SUPERADMIN_PASSWORD: newPassword, AUTO_SUPERADMIN_RESET_PASSWORD: 'true' }),
      0,
      /nothing changed/,
    );
    assert.equal((await users(pg, tenant.schema))[0]!.password_hash, reset!.password_hash);
  });

  it('super admin failure: exit 8, and the marker is not written (same transaction)', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant), 0);
    // Reopen the setup as the superuser can, then make the insert of a new admin fail.
    const t = pg.admin(tenant.schema);
    await pg.admin`alter table ${t}.setup_state disable trigger user`;
    await pg.admin`update ${t}.setup_state set completed = false, completed_at = null, completed_by = null`;
    await pg.admin`alter table ${t}.setup_state enable trigger user`;
    await pg.admin`alter table ${t}.users add constraint no_carol check (email <> 'carol@client.example')`;
    const r = await run(tenant, { AUTO_SUPERADMIN_EMAIL: 'carol@client.example' });
    assertExit(r, 8, /superadmin/, /no_carol/);
    assert.equal((await setupState(pg, tenant.schema))?.completed, false);
    assert.equal((await users(pg, tenant.schema)).length, 1);
  });
});

describe('tenant schema problems (exit 4, with the SQL to run)', () => {
  it('missing schema', async () => {
    const tenant = await createTenant(pg, { createSchema: false });
    const r = await run(tenant);
    assertExit(
      r,
      4,
      /schema tenant_\w+ does not exist/,
      new RegExp(
        `CREATE SCHEMA "${tenant.schema}"; GRANT USAGE, CREATE ON SCHEMA "${tenant.schema}" TO "${tenant.role}";`,
      ),
    );
    const [row] = await pg.admin`select count(*)::int as n from pg_namespace where nspname = ${tenant.schema}`;
    assert.equal(row!.n, 0, 'the instance must never create its schema');
  });

  it('a quoted mixed-case schema is pointed out', async () => {
    const tenant = await createTenant(pg, { schema: 'Tenant_Mixed' });
    const r = await run(tenant, { DATABASE_SCHEMA: 'Tenant_Mixed' });
    assertExit(r, 4, /schema tenant_mixed does not exist/, /"Tenant_Mixed"/);
  });

  it('role without CREATE on the schema', async () => {
    const tenant = await createTenant(pg, { create: false });
    const r = await run(tenant);
    assertExit(
      r,
      4,
      /lacks CREATE on schema/,
      new RegExp(`GRANT CREATE ON SCHEMA "${tenant.schema}" TO "${tenant.role}";`),
    );
    assert.deepEqual(await relations(pg, tenant.schema), []);
  });

  it('role without USAGE nor CREATE', async () => {
    const tenant = await createTenant(pg, { usage: false, create: false });
    assertExit(await run(tenant), 4, /lacks USAGE and CREATE/, /GRANT USAGE, CREATE ON SCHEMA/);
  });

  it('a schema already used by something else is left alone', async () => {
    const tenant = await createTenant(pg);
    await pg.admin`create table ${pg.admin(tenant.schema)}.invoices (id int)`;
    // The role's own table: one of another role is refused earlier (test/schema-owner.test.ts).
    await pg.admin.unsafe(`alter table "${tenant.schema}".invoices owner to "${tenant.role}"`);
    const r = await run(tenant);
    assertExit(r, 4, /already holds 1 table\(s\) or other relations \(invoices\) but no superfasttt migration history/);
    assert.deepEqual(await relations(pg, tenant.schema), ['invoices']);
  });
});

describe('migration history problems (exit 5)', () => {
  it('an applied migration whose content changed is refused', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant), 0);
    await pg.admin`update ${pg.admin(tenant.schema)}.superfasttt_migrations set checksum = ${'0'.repeat(64)}
      where name = '0001_initial'`;
    assertExit(await run(tenant), 5, /migration 0001_initial was changed after it was applied/, /new migration/);
  });

  it('a schema migrated by a newer version is never migrated down', async () => {
    const tenant = await createTenant(pg);
    assertExit(await run(tenant), 0);
    await pg.admin`insert into ${pg.admin(tenant.schema)}.superfasttt_migrations (name, checksum, bootstrap_version)
      values ('9999_future', 'x', '99.0.0')`;
    assertExit(await run(tenant), 5, /migrated by a newer superfasttt-bootstrap \(99\.0\.0\)/);
  });
});

describe('connection problems (exit 3, not retried)', () => {
  // A generous DATABASE_CONNECT_TIMEOUT and a short harness timeout: a retried failure would be killed.
  const noRetry = { DATABASE_CONNECT_TIMEOUT: '120' };

  it('wrong password', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.password = 'Wrong-Password-123';
    secrets.push('Wrong-Password-123');
    const r = await runCli(instanceEnv(tenant, { ...noRetry, DATABASE_URL: url.toString() }), { timeoutMs: 30_000 });
    outputs.push(r);
    assertExit(r, 3, new RegExp(`refused the password of user "${tenant.role}"`));
  });

  it('unknown database', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.pathname = '/nope';
    const r = await runCli(instanceEnv(tenant, { ...noRetry, DATABASE_URL: url.toString() }), { timeoutMs: 30_000 });
    outputs.push(r);
    assertExit(r, 3, /database "nope" does not exist/);
  });

  it('a plaintext client is refused by a TLS-only server', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.searchParams.set('sslmode', 'disable');
    const r = await run(tenant, { ...noRetry, DATABASE_URL: url.toString() });
    assertExit(r, 3, /refused user/, /no encryption/, /DATABASE_SSL=true/);
  });

  it('verify-full with the CA from DATABASE_SSL_CA_FILE, DATABASE_SSL_CA or sslrootcert succeeds', async () => {
    const tenant = await createTenant(pg);
    const { readFileSync } = await import('node:fs');
    for (const host of ['127.0.0.1', 'localhost']) {
      const url = new URL(tenant.url);
      url.hostname = host;
      url.searchParams.set('sslmode', 'verify-full');
      assertExit(await run(tenant, { DATABASE_URL: url.toString(), DATABASE_SSL_CA_FILE: pg.caFile }), 0, /TLS on/);
      assertExit(
        await run(tenant, { DATABASE_URL: url.toString(), DATABASE_SSL_CA: readFileSync(pg.caFile!, 'utf8') }),
        0,
      );
      url.searchParams.set('sslrootcert', pg.caFile!);
      assertExit(await run(tenant, { DATABASE_URL: url.toString() }), 0);
    }
  });

  it('verify-full with the CA from NODE_EXTRA_CA_CERTS succeeds', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.searchParams.set('sslmode', 'verify-full');
    assertExit(await run(tenant, { DATABASE_URL: url.toString(), NODE_EXTRA_CA_CERTS: pg.caFile }), 0, /TLS on/);
  });

  it('verify-full without the CA fails at once with the fix', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.searchParams.set('sslmode', 'verify-full');
    const r = await runCli(instanceEnv(tenant, { ...noRetry, DATABASE_URL: url.toString() }), { timeoutMs: 30_000 });
    outputs.push(r);
    assertExit(r, 3, /TLS connection to PostgreSQL .* failed: .*certificate/i, /DATABASE_SSL_CA/);
  });

  it('verify-full against a name the certificate does not hold fails', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.hostname = '127.0.0.2'; // loopback too, but not in the certificate
    url.searchParams.set('sslmode', 'verify-full');
    const r = await runCli(
      instanceEnv(tenant, { ...noRetry, DATABASE_URL: url.toString(), DATABASE_SSL_CA_FILE: pg.caFile }),
      { timeoutMs: 30_000 },
    );
    outputs.push(r);
    assertExit(r, 3, /TLS connection to PostgreSQL at 127\.0\.0\.2/);
  });

  for (const tls of [false, true]) {
    it(
      `a server that accepts the connection and never answers: ` +
        `exit 3 within DATABASE_CONNECT_TIMEOUT${tls ? ' (TLS required)' : ''}`,
      async () => {
        const silent = await startSilentServer();
        try {
          const tenant = await createTenant(pg);
          const url = new URL(tenant.url);
          url.port = String(silent.port);
          const r = await runCli(
            instanceEnv(tenant, {
              DATABASE_URL: url.toString(),
              DATABASE_CONNECT_TIMEOUT: '2',
              DATABASE_SSL: String(tls),
            }),
            { timeoutMs: 30_000 },
          );
          outputs.push(r);
          assertExit(r, 3, /no answer from PostgreSQL at 127\.0\.0\.1:\d+ within DATABASE_CONNECT_TIMEOUT=2 s/);
        } finally {
          await silent.stop();
        }
      },
    );
  }

  it('an unreachable server is retried until DATABASE_CONNECT_TIMEOUT, then exit 3', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.port = '9';
    const r = await run(tenant, { DATABASE_URL: url.toString(), DATABASE_CONNECT_TIMEOUT: '2' });
    assertExit(r, 3, /not reachable yet \(ECONNREFUSED\); retrying/, /unreachable for 2 s/);
  });
});

describe('a server without TLS', () => {
  let plain: PgServer;
  before(async () => {
    plain = await startPostgres({ tls: false });
  });
  after(async () => {
    await plain?.stop();
  });

  it('DATABASE_SSL=true refuses to fall back to plaintext: exit 3', async () => {
    const tenant = await createTenant(plain);
    const r = await run(tenant, { DATABASE_SSL: 'true', DATABASE_CONNECT_TIMEOUT: '120' });
    assertExit(r, 3, /does not offer TLS, but TLS is required/);
    assert.deepEqual(await relations(plain, tenant.schema), []);
  });

  it('sslmode=require too', async () => {
    const tenant = await createTenant(plain);
    const url = new URL(tenant.url);
    url.searchParams.set('sslmode', 'require');
    assertExit(await run(tenant, { DATABASE_URL: url.toString() }), 3, /does not offer TLS/);
  });

  it('without TLS required, bootstraps in plaintext (TLS off in the log)', async () => {
    const tenant = await createTenant(plain);
    assertExit(await run(tenant), 0, /TLS off/);
  });
});

describe('secrets', () => {
  it('no password of any run appears in any output', () => {
    assert.ok(outputs.length > 20);
    for (const output of outputs) assertNoSecrets(output, secrets);
  });
});
