// fleet check / fleet bootstrap (issue 15) with the built CLI against a real PostgreSQL: tenants made by
// provision (a non-superuser deployer), their .env files as the fleet's input, instances broken in each
// failure class, stages, resume, SIGINT, shards, and the JSON/CSV reports parsed back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import type { FleetRow } from '../src/fleet/fleet-report.js';
import postgres from 'postgres';
import { assertExit, assertNoSecrets, BUNDLE, type Env, type RunResult, runCli, spawnCli } from './harness/cli.js';
import { tempDir } from './harness/net.js';
import { type PgServer, startPostgres } from './harness/postgres.js';
import { readEnvFile } from './harness/provisioned.js';

const DEPLOYER_PASSWORD = 'Fleet-Deployer-Password-9';
let pg: PgServer;
let tenantsDb: postgres.Sql;
let deployer: Env;
const dir = tempDir('sf-fleet-');
const outputs: RunResult[] = [];

before(async () => {
  pg = await startPostgres({ tls: false });
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  await pg.admin.unsafe('create database tenants owner deployer');
  deployer = { PROVISION_DATABASE_URL: pg.url('deployer', DEPLOYER_PASSWORD, { database: 'tenants' }) };
  tenantsDb = postgres(pg.url(pg.superuser, pg.superpassword, { database: 'tenants' }), {
    max: 1,
    onnotice: () => {},
  });
});

after(async () => {
  // No report or log line holds a secret: the deployer's password, a tenant's, an admin's.
  const secrets = [DEPLOYER_PASSWORD];
  for (const envs of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.env'))) {
    const env = readEnvFile(join(dir, envs));
    secrets.push(env.AUTO_SUPERADMIN_PASSWORD ?? '', decodeURIComponent(new URL(env.DATABASE_URL ?? 'x:').password));
  }
  for (const r of outputs) assertNoSecrets(r, secrets);
  for (const log of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.log')))
    assertNoSecrets(readFileSync(join(dir, log), 'utf8'), secrets);
  await tenantsDb?.end();
  await pg?.stop();
});

/** `count` tenants named `<prefix>_<i>`, provisioned into their own directory of .env files. */
async function provisioned(prefix: string, count: number): Promise<string> {
  const file = join(dir, `${prefix}.csv`);
  const lines = Array.from({ length: count }, (_, i) => `${prefix}_${i},admin-${i}@${prefix}.example,Ada,Lovelace`);
  writeFileSync(file, `name,email,first_name,last_name\n${lines.join('\n')}\n`);
  const envs = join(dir, prefix);
  const r = await runCli(deployer, { args: ['provision', '--tenants', file, '--out-dir', envs] });
  outputs.push(r);
  assertExit(r, 0, new RegExp(`${count} created`));
  return envs;
}

async function fleet(args: string[], env: Env = {}): Promise<RunResult> {
  const r = await runCli(env, { args: ['fleet', ...args, '--log-dir', join(dir, 'logs', String(outputs.length))] });
  outputs.push(r);
  return r;
}

interface Report {
  ok: boolean;
  summary: { total: number; by_status: Record<string, number>; by_exit_code: Record<string, number> };
  instances: FleetRow[];
  stopped_by: string | null;
  log_dir: string;
}
const json = (r: RunResult): Report => JSON.parse(r.stdout) as Report;
const byName = (report: Report) => new Map(report.instances.map((row) => [row.name, row]));

describe('a healthy fleet', () => {
  let envs: string;
  before(async () => {
    envs = await provisioned('ok', 6);
  });

  it('fleet check before any bootstrap: every instance pending, exit 0', async () => {
    const r = await fleet(['check', '--envs', envs, '--format', 'json']);
    assertExit(r, 0);
    const report = json(r);
    assert.equal(report.instances.length, 6);
    for (const row of report.instances) {
      assert.equal(row.status, 'pending');
      assert.deepEqual([row.applied, row.pending, row.setup_completed], [0, 1, false]);
    }
  });

  it('fleet bootstrap: every instance bootstrapped; again: every one complete, nothing redone', async () => {
    const r = await fleet(['bootstrap', '--envs', envs, '--format', 'json']);
    assertExit(r, 0);
    assert.deepEqual(json(r).summary.by_status, { bootstrapped: 6 });
    const [history] = await tenantsDb<
      { n: number }[]
    >`select count(*)::int as n from tenant_ok_0.superfasttt_migrations`;
    const again = await fleet(['bootstrap', '--envs', envs, '--format', 'json']);
    assertExit(again, 0);
    const report = json(again);
    assert.deepEqual(report.summary.by_status, { complete: 6 });
    for (const row of report.instances) assert.match(row.message, /nothing to do/);
    const [still] = await tenantsDb<{ n: number }[]>`select count(*)::int as n from tenant_ok_0.superfasttt_migrations`;
    assert.deepEqual(still, history);
    // Each instance's log says it was confirmed without the lock: no run queued or wrote.
    const log = readFileSync(join(report.log_dir, 'ok_3.log'), 'utf8');
    assert.match(log, /confirmed without the lock/);
    assert.match(log, /"level":"info"/);
  });

  it('fleet check: every instance ok, a table with the summary; CSV parses back', async () => {
    const table = await fleet(['check', '--envs', envs]);
    assertExit(table, 0, /ok_0\s+ok\s+0\s+1\/0\s+yes\s+yes\s+0\s/, /Instances: 6 \(ok 6\)/);
    const csv = await fleet(['check', '--envs', envs, '--format', 'csv']);
    assertExit(csv, 0);
    const rows = parse(csv.stdout, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(
      rows.map((row) => [row.name, row.status, row.applied, row.pending, row.setup_completed, row.admin_present]),
      Array.from({ length: 6 }, (_, i) => [`ok_${i}`, 'ok', '1', '0', 'true', 'true']),
    );
  });

  it('shards K/N together cover every instance exactly once', async () => {
    const seen: string[] = [];
    for (let k = 0; k < 3; k++) {
      const r = await fleet(['check', '--envs', envs, '--format', 'json', '--shard', `${k}/3`]);
      assertExit(r, 0);
      seen.push(...json(r).instances.map((row) => row.name));
    }
    assert.deepEqual(
      seen.sort(),
      Array.from({ length: 6 }, (_, i) => `ok_${i}`),
    );
    // Kubernetes' Indexed Job: the index and the completions from the environment.
    const k8s = await fleet(['check', '--envs', envs, '--format', 'json'], {
      JOB_COMPLETION_INDEX: '1',
      JOB_COMPLETIONS: '3',
    });
    const shard1 = json(await fleet(['check', '--envs', envs, '--format', 'json', '--shard', '1/3'])).instances;
    assert.deepEqual(
      json(k8s).instances.map((row) => row.name),
      shard1.map((row) => row.name),
    );
  });
});

describe('a fleet with broken instances', () => {
  let envs: string;
  before(async () => {
    envs = await provisioned('bad', 6);
    assertExit(await fleet(['bootstrap', '--envs', envs]), 0);
    // bad_0: healthy. bad_1: wrong password. bad_2: schema gone. bad_3: an applied migration changed.
    // bad_4: drift (a column added to users, an index dropped). bad_5: storage unreachable.
    const env1 = join(envs, 'bad_1.env');
    writeFileSync(
      env1,
      readFileSync(env1, 'utf8').replace(/(DATABASE_URL=postgres:\/\/tenant_bad_1:)[^@]+@/, '$1Wrong-Password-1@'),
    );
    await tenantsDb.unsafe('drop schema tenant_bad_2 cascade');
    await tenantsDb.unsafe("update tenant_bad_3.superfasttt_migrations set checksum = 'changed'");
    await tenantsDb.unsafe('alter table tenant_bad_4.users add column nickname text');
    const env5 = join(envs, 'bad_5.env');
    writeFileSync(
      env5,
      readFileSync(env5, 'utf8') +
        'STORAGE_PROVIDER=s3\nSTORAGE_ENDPOINT=http://127.0.0.1:9\nSTORAGE_SECURE=false\n' +
        'STORAGE_BUCKET=nowhere\nSTORAGE_REGION=us-east-1\n' +
        'STORAGE_ACCESS_KEY=AKIAFLEETTEST\nSTORAGE_SECRET_KEY=Fleet-Storage-Secret-123\nSTORAGE_TIMEOUT=1\n',
    );
  });

  it('fleet check: one row per instance with its failure class, drift counted; exit 9', async () => {
    const r = await fleet(['check', '--envs', envs, '--format', 'json', '--concurrency', '3']);
    assertExit(r, 9);
    const rows = byName(json(r));
    assert.equal(rows.get('bad_0')?.status, 'ok');
    const failed = (name: string, code: number, pattern: RegExp) => {
      const row = rows.get(name);
      assert.equal(row?.status, 'failed', `${name}: ${JSON.stringify(row)}`);
      assert.equal(row?.exit_code, code, `${name}: ${row?.message}`);
      assert.match(row?.message ?? '', pattern);
    };
    failed('bad_1', 3, /password/);
    failed('bad_2', 4, /tenant_bad_2/);
    failed('bad_3', 5, /0001_initial/);
    failed('bad_5', 6, /storage/);
    const drifted = rows.get('bad_4');
    assert.equal(drifted?.status, 'drifted');
    assert.ok((drifted?.drift ?? 0) >= 1);
    assert.match(drifted?.message ?? '', /nickname/);
    assert.equal(json(r).ok, false);
    // The failure can be read in its log without running it again.
    assert.match(readFileSync(join(json(r).log_dir, 'bad_1.log'), 'utf8'), /"level":"error"/);
    assertNoSecrets(r, ['Wrong-Password-1', 'Fleet-Storage-Secret-123']);
  });
});

describe('fleet bootstrap in stages', () => {
  it('a failing canary stops the run before the rest; after the fix, a second run resumes', async () => {
    const envs = await provisioned('stage', 5);
    const env1 = join(envs, 'stage_1.env');
    const good = readFileSync(env1, 'utf8');
    writeFileSync(env1, good.replace(/(DATABASE_URL=postgres:\/\/tenant_stage_1:)[^@]+@/, '$1Wrong-Password-2@'));
    const r = await fleet(['bootstrap', '--envs', envs, '--canary', '2', '--format', 'json']);
    assertExit(r, 9);
    const report = json(r);
    assert.match(report.stopped_by ?? '', /1 failure\(s\) crossed --max-failures 0/);
    const rows = byName(report);
    assert.equal(rows.get('stage_0')?.status, 'bootstrapped');
    assert.equal(rows.get('stage_1')?.status, 'failed');
    for (const name of ['stage_2', 'stage_3', 'stage_4']) {
      assert.equal(rows.get(name)?.status, 'not-started');
      assert.equal(rows.get(name)?.stage, 'rest');
      // Never started: nothing was created in its schema.
      const [tables] = await tenantsDb<{ n: number }[]>`select count(*)::int as n from pg_tables
        where schemaname = ${`tenant_${name}`}`;
      assert.equal(tables?.n, 0);
    }

    writeFileSync(env1, good);
    const resumed = await fleet(['bootstrap', '--envs', envs, '--canary', '2', '--format', 'json']);
    assertExit(resumed, 0);
    const after = byName(json(resumed));
    assert.equal(after.get('stage_0')?.status, 'complete');
    for (const name of ['stage_1', 'stage_2', 'stage_3', 'stage_4'])
      assert.equal(after.get(name)?.status, 'bootstrapped');
  });

  it('stages from the tenants file, in the order they first appear; --max-failures lets some through', async () => {
    const envs = await provisioned('wave', 4);
    const file = join(dir, 'waves.csv');
    writeFileSync(file, 'name,stage\nwave_3,first\nwave_0,first\nwave_1,second\nwave_2,second\n');
    const env3 = join(envs, 'wave_3.env');
    writeFileSync(
      env3,
      readFileSync(env3, 'utf8').replace(/(DATABASE_URL=postgres:\/\/tenant_wave_3:)[^@]+@/, '$1Wrong-3@'),
    );
    const r = await fleet([
      'bootstrap',
      '--envs',
      envs,
      '--tenants',
      file,
      '--max-failures',
      '50%',
      '--format',
      'json',
    ]);
    assertExit(r, 9);
    const report = json(r);
    assert.deepEqual(
      report.instances.map((row) => [row.name, row.stage, row.status]),
      [
        ['wave_3', 'first', 'failed'],
        ['wave_0', 'first', 'bootstrapped'],
        ['wave_1', 'second', 'bootstrapped'],
        ['wave_2', 'second', 'bootstrapped'],
      ],
    );
  });
});

describe('SIGINT during fleet bootstrap', () => {
  it('starts nothing new, cancels the running one cleanly, prints the report so far: exit 130', async () => {
    const envs = await provisioned('sig', 8);
    const logDir = join(dir, 'logs', 'sigint');
    const { child, result } = spawnCli(
      {},
      { args: ['fleet', 'bootstrap', '--envs', envs, '--concurrency', '1', '--format', 'json', '--log-dir', logDir] },
    );
    // Once the first instance is done, interrupt.
    for (let i = 0; i < 400 && !(existsSync(join(logDir, 'sig_1.log')) || existsSync(join(logDir, 'sig_2.log'))); i++)
      await sleep(25);
    child.kill('SIGINT');
    const r = await result;
    outputs.push(r);
    assertExit(r, 130);
    const report = json(r);
    const statuses = report.instances.map((row) => row.status);
    assert.equal(statuses[0], 'bootstrapped');
    assert.ok(statuses.includes('not-started'), statuses.join(' '));
    assert.match(report.stopped_by ?? '', /SIGINT/);
    // Nothing half done: every instance is either complete or untouched, and the next run finishes the fleet.
    const resumed = await fleet(['bootstrap', '--envs', envs, '--format', 'json']);
    assertExit(resumed, 0);
    rmSync(logDir, { recursive: true, force: true });
  });
});

describe('progress at a terminal', () => {
  /** The CLI under a pseudo-terminal (util-linux script): stdout and stderr are a TTY, as for an operator. */
  function atTerminal(args: string[], env: Env = {}): string {
    const command = [process.execPath, '--', BUNDLE, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    return execFileSync('script', ['-qec', command, '/dev/null'], {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });
  }

  it('provision and fleet check draw a progress line, erased before the report; not in a pipe', async () => {
    const file = join(dir, 'tty.csv');
    writeFileSync(file, 'name,email,first_name,last_name\ntty_0,a@tty.example,Ada,L\ntty_1,b@tty.example,Bo,L\n');
    const envs = join(dir, 'tty');
    const provisioning = atTerminal(['provision', '--tenants', file, '--out-dir', envs], deployer);
    // ESC [ K erases the rest of the line: the progress line's end, and what clears it before the report.
    const erase = '\x1b[K';
    assert.match(provisioning.replaceAll(erase, '<erase>'), /\rprovision {2}2\/2 {2}0 failed {2}[\d.]+\/s<erase>/);
    assert.match(provisioning, /tty_0: created/);
    assert.ok(provisioning.includes(`\r${erase}provision: 2 tenant(s): 2 created`), provisioning);
    const checking = atTerminal(['fleet', 'check', '--envs', envs, '--log-dir', join(dir, 'logs', 'tty')]);
    assert.match(checking, /\rfleet check {2}2\/2 {2}0 failed/);
    assert.ok(checking.includes(`\r${erase}NAME`), checking);
    // The same runs in a pipe (every other test): no progress line at all.
    for (const r of outputs) assert.ok(!r.output.includes(erase));
    outputs.push({ stdout: checking, stderr: provisioning, output: provisioning + checking, code: 0, signal: null });
  });
});

describe('fleet: refused before anything runs', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no command', [], /fleet needs a command: check or bootstrap/],
    ['no --envs', ['check'], /fleet needs --envs DIR/],
    ['a missing directory', ['check', '--envs', '/nonexistent/envs'], /--envs: \/nonexistent\/envs cannot be read/],
    ['a bad shard', ['check', '--envs', dir, '--shard', '3/3'], /--shard/],
    ['a bad --max-failures', ['bootstrap', '--envs', dir, '--max-failures', 'many'], /--max-failures must be/],
    ['--canary on check', ['check', '--envs', dir, '--canary', '2'], /--canary/],
    [
      'a log directory that cannot be created',
      ['check', '--envs', join(dir, 'ok'), '--log-dir', '/proc/fleet-logs'],
      /--log-dir: \/proc\/fleet-logs cannot be created \(ENOENT\)/,
    ],
  ];
  for (const [what, args, pattern] of cases) {
    it(what, async () => {
      const r = await runCli({}, { args: ['fleet', ...args] });
      outputs.push(r);
      assertExit(r, 2, pattern);
    });
  }

  it('a tenants file naming a tenant without a .env', async () => {
    const envs = await provisioned('lone', 1);
    const file = join(dir, 'unknown.csv');
    writeFileSync(file, 'name\nlone_0\nghost\n');
    const r = await runCli({}, { args: ['fleet', 'check', '--envs', envs, '--tenants', file] });
    outputs.push(r);
    assertExit(r, 2, /has no \.env for 1 tenant\(s\) .*: ghost/);
  });
});
