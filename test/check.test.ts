// `check`: the same verifications as bootstrap, read-only, every one of them, as a table or JSON.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { ADMIN, fingerprint, instanceEnv, relations, verifiedServices } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';
import { startS3, type S3Server } from './harness/s3.js';
import { startSmtp, type SmtpServer } from './harness/smtp.js';
import { tempDir } from './harness/net.js';

let pg: PgServer;
let s3: S3Server;
let smtp: SmtpServer;
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];

interface Report {
  ok: boolean;
  exit_code: number;
  skip_setup: string | null;
  checks: Array<{
    name: string;
    status: 'pass' | 'fail' | 'skip';
    message: string;
    fix: string | null;
    exit_code: number | null;
  }>;
  secrets: Record<string, string>;
}

before(async () => {
  [pg, s3, smtp] = await Promise.all([startPostgres({ tls: true }), startS3(), startSmtp('starttls')]);
  await s3.createBucket('superfasttt-check');
  secrets.push(s3.admin.secretAccessKey, smtp.password);
});
after(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), smtp?.stop()]);
});

function fullEnv(tenant: Tenant, overrides: Env = {}): Env {
  secrets.push(tenant.password);
  return instanceEnv(tenant, {
    ...verifiedServices(tenant, s3, smtp, 'superfasttt-check'),
    ...overrides,
  });
}

async function checkRun(env: Env, ...args: string[]): Promise<RunResult> {
  const r = await runCli(env, { args: ['check', ...args] });
  outputs.push(r);
  return r;
}

async function checkJson(env: Env, ...args: string[]): Promise<{ r: RunResult; report: Report }> {
  const r = await checkRun(env, '--json', ...args);
  return { r, report: JSON.parse(r.stdout) as Report };
}

const statusOf = (report: Report) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]));

describe('check on a healthy instance', () => {
  let tenant: Tenant;
  before(async () => {
    tenant = await createTenant(pg);
    assertExit(await runCli(fullEnv(tenant)), 0);
  });

  it('all checks pass, exit 0, and nothing is written (database and storage)', async () => {
    const before = await fingerprint(pg, tenant.schema);
    const objects = [...(await s3.listObjects('superfasttt-check')).keys()].sort();
    const r = await checkRun(fullEnv(tenant));
    assertExit(
      r,
      0,
      /Result: all checks passed \(exit 0\)/,
      /read-only session/,
      /super admin admin@client\.example present; setup completed by bootstrap/,
      /up to date: 1 applied/,
    );
    for (const name of [
      'config',
      'database',
      'lock',
      'schema',
      'migrations',
      'storage',
      'email',
      'superadmin',
      'welcome',
    ]) {
      assert.match(r.stdout, new RegExp(`^ok\\s+${name}\\s`, 'm'), `no ok line for ${name}`);
    }
    assert.equal(await fingerprint(pg, tenant.schema), before);
    assert.deepEqual(
      [...(await s3.listObjects('superfasttt-check')).keys()].sort(),
      objects,
      'the probe was deleted, nothing else written',
    );
  });

  it('--no-write: no object written, not even the probe', async () => {
    const seen = s3.requests.length;
    const r = await checkRun(fullEnv(tenant), '--no-write');
    assertExit(r, 0, /write probe skipped \(--no-write\)/);
    assert.deepEqual(
      s3.requests.slice(seen).filter((q) => q.method !== 'GET' && q.method !== 'HEAD'),
      [],
    );
  });

  it('--json: exactly one JSON document on stdout, matching the table', async () => {
    const table = await checkRun(fullEnv(tenant));
    const { r, report } = await checkJson(fullEnv(tenant));
    assertExit(r, 0);
    assert.equal(report.ok, true);
    assert.equal(report.exit_code, 0);
    const fromTable = [...table.stdout.matchAll(/^(ok|FAIL|skip)\s+(\w+)\s/gm)].map((m) => [
      m[2],
      { ok: 'pass', FAIL: 'fail', skip: 'skip' }[m[1]!],
    ]);
    assert.deepEqual(Object.entries(statusOf(report)), fromTable);
  });
});

describe('check on a fresh schema', () => {
  it('migrations pending and admin missing are reported, exit 0, and the schema stays empty', async () => {
    const tenant = await createTenant(pg);
    const { r, report } = await checkJson(fullEnv(tenant));
    assertExit(r, 0);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    assert.match(byName.migrations!.message, /0 applied, 1 pending \(0001_initial\)/);
    assert.match(byName.superadmin!.message, /super admin admin@client\.example missing, setup not completed/);
    assert.match(byName.storage!.message, /folder tenant_\w+\/ missing \(the bootstrap creates it\)/);
    assert.deepEqual(await relations(pg, tenant.schema), []);
  });

  it('reports a non-admin account that the bootstrap would promote', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(fullEnv(tenant, { AUTO_SUPERADMIN_EMAIL: 'first@client.example' })), 0);
    await pg.admin`insert into ${pg.admin(tenant.schema)}.users (email, first_name, last_name, password_hash, role)
      values ('bob@client.example', 'Bob', 'B', 'x', 'user')`;
    const { report } = await checkJson(fullEnv(tenant, { AUTO_SUPERADMIN_EMAIL: 'bob@client.example' }));
    assert.match(
      report.checks.find((c) => c.name === 'superadmin')!.message,
      /present as user, not super_admin \(the bootstrap promotes it\)/,
    );
  });
});

describe('check reports every failure with its fix, and still runs the other checks', () => {
  it('configuration invalid: exit 2, every problem listed, the rest skipped', async () => {
    const tenant = await createTenant(pg);
    const { r, report } = await checkJson(fullEnv(tenant, { AUTO_SUPERADMIN_EMAIL: 'nope', SMTP_PORT: 'x' }));
    assertExit(r, 2);
    const config = report.checks[0]!;
    assert.equal(config.status, 'fail');
    assert.match(config.message, /AUTO_SUPERADMIN_EMAIL: must be an email address/);
    assert.match(config.message, /SMTP_PORT: must be a whole number/);
    assert.ok(report.checks.slice(1).every((c) => c.status === 'skip' && /config did not pass/.test(c.message)));
  });

  it('wrong database password: exit 3; storage and email still checked', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.password = 'Wrong-Password-123';
    const { r, report } = await checkJson(fullEnv(tenant, { DATABASE_URL: url.toString() }));
    assertExit(r, 3);
    assert.deepEqual(statusOf(report), {
      config: 'pass',
      database: 'fail',
      lock: 'skip',
      schema: 'skip',
      migrations: 'skip',
      drift: 'skip',
      storage: 'pass',
      email: 'pass',
      superadmin: 'skip',
      welcome: 'skip',
    });
    assert.match(report.checks[1]!.fix!, /DATABASE_URL/);
  });

  it('missing schema: exit 4 with the SQL to run', async () => {
    const tenant = await createTenant(pg, { createSchema: false });
    const r = await checkRun(fullEnv(tenant));
    assertExit(
      r,
      4,
      /^FAIL\s+schema\s/m,
      /fix: as the deployment role, run: CREATE SCHEMA/,
      /^skip\s+migrations\s+skipped: schema did not pass/m,
      /^ok\s+storage\s/m,
      /Result: 1 check\(s\) failed \(exit 4\)/,
    );
  });

  it('changed migration: exit 5', async () => {
    const tenant = await createTenant(pg);
    assertExit(await runCli(fullEnv(tenant)), 0);
    await pg.admin`update ${pg.admin(tenant.schema)}.superfasttt_migrations set checksum = ${'0'.repeat(64)}`;
    assertExit(
      await checkRun(fullEnv(tenant)),
      5,
      /^FAIL\s+migrations\s.*changed after it was applied/m,
      /^skip\s+superadmin/m,
    );
  });

  it('storage and email failures: exit 6 (the first), both with their fix; the database checks pass', async () => {
    const tenant = await createTenant(pg);
    const { r, report } = await checkJson(
      fullEnv(tenant, { STORAGE_BUCKET: 'superfasttt-missing', SMTP_PASSWORD: 'Wrong-Smtp-Password-1' }),
    );
    assertExit(r, 6);
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    assert.equal(byName.storage!.exit_code, 6);
    assert.match(byName.storage!.fix!, /STORAGE_BUCKET/);
    assert.equal(byName.email!.exit_code, 7);
    assert.match(byName.email!.fix!, /SMTP_PASSWORD/);
    assert.equal(byName.migrations!.status, 'pass');
  });
});

describe('check options and output', () => {
  it('--env-file loads the instance file; variables already in the environment win', async () => {
    const tenant = await createTenant(pg);
    const dir = tempDir('sf-check-');
    const file = join(dir, 'client.env');
    const env = fullEnv(tenant);
    writeFileSync(
      file,
      Object.entries({ ...env, STORAGE_BUCKET: 'superfasttt-missing' })
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join('\n'),
    );
    const fromFile = await checkJson({ NODE_EXTRA_CA_CERTS: s3.caFile }, '--env-file', file);
    assertExit(fromFile.r, 6); // the file's (wrong) bucket
    const overridden = await checkJson(
      { NODE_EXTRA_CA_CERTS: s3.caFile, STORAGE_BUCKET: 'superfasttt-check' },
      `--env-file=${file}`,
    );
    assertExit(overridden.r, 0); // the environment's bucket wins
  });

  it('a missing --env-file is exit 2', async () => {
    assertExit(
      await checkRun({}, '--env-file', '/nonexistent/client.env'),
      2,
      /--env-file: \/nonexistent\/client\.env does not exist/,
    );
  });

  it('works whatever SKIP_SETUP says, and reports it', async () => {
    const tenant = await createTenant(pg);
    const r = await checkRun(fullEnv(tenant, { SKIP_SETUP: undefined }));
    assertExit(r, 0, /SKIP_SETUP=unset: the bootstrap changes nothing, the setup wizard stays/);
  });

  it('shows where each secret comes from, never its value', async () => {
    const tenant = await createTenant(pg);
    const dir = tempDir('sf-check-');
    writeFileSync(join(dir, 'pw'), ADMIN.password);
    const { report } = await checkJson(
      fullEnv(tenant, { AUTO_SUPERADMIN_PASSWORD: undefined, AUTO_SUPERADMIN_PASSWORD_FILE: join(dir, 'pw') }),
    );
    assert.deepEqual(report.secrets, {
      DATABASE_URL: 'env',
      STORAGE_ACCESS_KEY: 'env',
      STORAGE_SECRET_KEY: 'env',
      SMTP_PASSWORD: 'env',
      SENDGRID_API_KEY: 'unset',
      AUTO_SUPERADMIN_PASSWORD: 'file',
    });
  });

  it('no secret appears in any check output', () => {
    assert.ok(outputs.length >= 10);
    for (const output of outputs) assertNoSecrets(output, secrets);
  });
});
