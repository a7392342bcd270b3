// npm run bench: speed and memory of the built executable against the same real PostgreSQL as the
// tests. Medians of several runs; each figure also as a ratio to `node -e 0` measured in this run.
//
// Every measured process (the baseline included) runs exactly as in production: `node BUNDLE`, nothing
// preloaded, nothing injected. Wall time is taken by this process, from spawn to exit; peak RSS is
// the child's ru_maxrss as the kernel reports it to its parent, read through GNU time
// (`/usr/bin/time -f %M`, KiB), which wraps each measured command. GNU time's own fork, exec and
// wait cost about 1 ms (a constant that would understate every ratio to the baseline, by some 4% for
// a 10× row): it is measured at the start of each run (`node -e 0` wrapped and not, interleaved) and
// subtracted from every wall time. Its RSS figure is that of the measured process alone (it agrees
// with the process's own resourceUsage().maxRSS within 0.2 MiB). The `--import` RSS probe used
// before added 5 to 7 ms and 2.6 MiB to every process, the baseline's 28 ms and 37.6 MiB included.
//
// GNU time is required: Debian/Ubuntu `apt-get install time`, Alpine `apk add time`, Fedora
// `dnf install time`, macOS `brew install gnu-time` (then BENCH_TIME=gtime). The bench checks for it
// first and says how to install it, rather than installing packages itself. BENCH_TIME: another path
// to GNU time. BENCH_RUNS (default 7) and BENCH_SCALE_TENANTS (default 1000; 0 skips the scale run)
// shorten a run (BENCH_RUNS=2 BENCH_SCALE_TENANTS=0: about a minute, to check the bench itself).
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { BUNDLE } from '../harness/cli.js';
import { instanceEnv, verifiedServices } from '../harness/instance.js';
import { createTenant, startPostgres, type Tenant } from '../harness/postgres.js';
import { startS3 } from '../harness/s3.js';
import { startIam } from '../harness/iam.js';
import { startPolicyS3 } from '../harness/s3-policy.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startSmtp } from '../harness/smtp.js';
import { tempDir } from '../harness/net.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const SCALE_TENANTS = Number(process.env.BENCH_SCALE_TENANTS ?? 1000);
/** The Node that runs the measured processes: this one, or BENCH_NODE (node_modules/node/bin/node: the image's). */
const NODE = process.env.BENCH_NODE ?? process.execPath;
const NODE_VERSION =
  execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim() +
  (process.env.BENCH_NODE_OPTIONS ? ` ${process.env.BENCH_NODE_OPTIONS}` : '');
/** GNU time, which reports the peak RSS of the command it runs (see the header). */
const TIME = process.env.BENCH_TIME ?? '/usr/bin/time';
assertGnuTime();
const rssDir = tempDir('sf-bench-');
let measured = 0;

interface Sample {
  ms: number;
  rssMiB: number;
  output: string;
}

/** Spawns a command and waits for its exit: milliseconds from spawn to exit, and its output. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ ms: number; output: string }> {
  const started = performance.now();
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, NO_COLOR: '1', NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const [code] = (await once(child, 'close')) as [number | null];
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${[command, ...args].join(' ')} exited ${code}:\n${output}`);
  return { ms, output };
}

/** GNU time as it wraps a measured process: it writes the peak RSS (KiB) to its own file. */
function timed(args: string[]): { args: string[]; rssMiB: () => number } {
  const rssFile = join(rssDir, `${process.pid}-${++measured}`); // one per process: some run concurrently
  return {
    args: ['-f', '%M', '-o', rssFile, '--', NODE, ...args],
    rssMiB() {
      // The last line: GNU time writes "Command exited with non-zero status" lines before it.
      const kib = Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1));
      if (!Number.isFinite(kib) || kib <= 0) throw new Error(`${TIME} gave no peak RSS for ${args.join(' ')}`);
      return kib / 1024;
    },
  };
}

/**
 * GNU time's own cost on the wall time: `node -e 0` wrapped and not, interleaved, difference of the
 * medians (never below 0).
 */
async function wrapperCost(): Promise<number> {
  const [direct, wrapped]: [number[], number[]] = [[], []];
  for (let i = 0; i < 21; i++) {
    direct.push((await run(NODE, ['-e', '0'])).ms);
    wrapped.push((await run(TIME, timed(['-e', '0']).args)).ms);
  }
  return Math.max(0, median(wrapped) - median(direct));
}

/**
 * One measured process, started as in production (no preload): wall time from spawn to exit,
 * measured here less GNU time's own cost; peak RSS from GNU time (the child's ru_maxrss).
 * Asynchronous: the S3 and SMTP test servers live in this process and must keep answering.
 */
async function measure(args: string[], env: Record<string, string | undefined> = {}): Promise<Sample> {
  const wrapped = timed(args);
  const { ms, output } = await run(TIME, wrapped.args, env);
  return { ms: ms - timeCost, rssMiB: wrapped.rssMiB(), output };
}

/** Stops with how to install GNU time when TIME is missing or another time (BusyBox, BSD). */
function assertGnuTime(): void {
  let version = '';
  try {
    version = execFileSync(TIME, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    version = String((error as { stderr?: unknown }).stderr ?? '');
  }
  if (/\(GNU Time\)/.test(version)) return;
  console.error(
    `npm run bench needs GNU time at ${TIME} to read each process's peak RSS without preloading anything into it.\n` +
      'Install it: Debian/Ubuntu `apt-get install time`, Alpine `apk add time`, Fedora `dnf install time`, ' +
      'macOS `brew install gnu-time` and BENCH_TIME=gtime; or set BENCH_TIME to its path.',
  );
  process.exit(2);
}

/** The q-quantile (nearest rank) of the samples. */
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
const median = (xs: number[]) => quantile(xs, 0.5);

async function series(make: () => Promise<Sample>): Promise<{ ms: number; rssMiB: number }> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await make());
  return { ms: median(samples.map((s) => s.ms)), rssMiB: median(samples.map((s) => s.rssMiB)) };
}

function dirSize(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

/** GNU time's own cost, subtracted from every wall time (measured before any server starts). */
const timeCost = await wrapperCost();

const pg = await startPostgres({ tls: true });
const s3 = await startS3();
const smtp = await startSmtp('starttls');
try {
  await s3.createBucket('superfasttt-bench');
  // Storage (S3 over HTTPS, shared bucket with a prefix) and email (SMTP, STARTTLS + AUTH) on.
  const verified = (tenant: Tenant) => instanceEnv(tenant, verifiedServices(tenant, s3, smtp, 'superfasttt-bench'));
  const tenants = async (n: number) => Promise.all(Array.from({ length: n }, () => createTenant(pg)));
  const [fresh, freshVerified] = [await tenants(RUNS), await tenants(RUNS)];
  const [done, doneVerified] = await tenants(2);
  await measure([BUNDLE], instanceEnv(done!)); // bootstrapped once; the re-runs below find them complete
  await measure([BUNDLE], verified(doneVerified!));

  const baseline = await series(() => measure(['-e', '0']));
  const rows: Array<[string, { ms: number; rssMiB: number }]> = [
    ['node -e 0 (baseline)', baseline],
    ['--version (cold start)', await series(() => measure([BUNDLE, '--version']))],
    ['first bootstrap of a fresh tenant', await series(() => measure([BUNDLE], instanceEnv(fresh.pop()!)))],
    ['re-run on a bootstrapped tenant', await series(() => measure([BUNDLE], instanceEnv(done!)))],
    [
      'first bootstrap, storage + email verified',
      await series(() => measure([BUNDLE], verified(freshVerified.pop()!))),
    ],
    ['re-run, storage + email verified', await series(() => measure([BUNDLE], verified(doneVerified!)))],
  ];

  // Replicas: 20 copies started at once on one fresh schema; the slowest decides the pod start.
  const concurrent = [];
  for (let i = 0; i < 3; i++) {
    const tenant = await createTenant(pg);
    const samples = await Promise.all(Array.from({ length: 20 }, () => measure([BUNDLE], verified(tenant))));
    concurrent.push(Math.max(...samples.map((x) => x.ms)));
  }
  // Replicas: 50 copies at once, on 50 fresh schemas (no lock to share: what 50 processes cost this machine),
  // on one fresh schema (one migrates, the others wait and confirm), on one complete instance (no lock taken).
  // Database only (storage and email would measure the test servers under 50 clients), waits bounded generously:
  // 50 processes on 2 cores take seconds to get their turn.
  const slowestOf = async (envs: Array<Record<string, string | undefined>>) => {
    const patient = { DATABASE_LOCK_TIMEOUT: '600', DATABASE_CONNECT_TIMEOUT: '120' };
    const samples = await Promise.all(envs.map((e) => measure([BUNDLE], { ...e, ...patient })));
    return Math.max(...samples.map((x) => x.ms));
  };
  const fiftyApart: number[] = [];
  const fiftyFresh: number[] = [];
  const fiftyComplete: number[] = [];
  for (let i = 0; i < 3; i++) {
    fiftyApart.push(
      await slowestOf(await Promise.all(Array.from({ length: 50 }, async () => instanceEnv(await createTenant(pg))))),
    );
    const one = instanceEnv(await createTenant(pg));
    fiftyFresh.push(await slowestOf(Array(50).fill(one)));
    fiftyComplete.push(await slowestOf(Array(50).fill(one)));
  }

  // Many tenants: 100 fresh tenants bootstrapped one after another.
  const many: number[] = [];
  const manyTenants = await tenants(100);
  for (const tenant of manyTenants) many.push((await measure([BUNDLE], verified(tenant))).ms);

  // Provisioning: 200 tenants from a file by a non-superuser deployer, then the idempotent re-run.
  await pg.admin.unsafe("create role bench_deployer login createrole password 'Bench-Deployer-42'");
  await pg.admin.unsafe('create database bench_tenants owner bench_deployer');
  const tenantsFile = join(tempDir('sf-bench-'), 'tenants.csv');
  writeFileSync(
    tenantsFile,
    ['name,email', ...Array.from({ length: 200 }, (_, i) => `bench_${i},admin@bench-${i}.example`)].join('\n'),
  );
  const provisionEnv = {
    PROVISION_DATABASE_URL: pg.url('bench_deployer', 'Bench-Deployer-42', {
      database: 'bench_tenants',
      sslmode: 'require',
    }),
  };
  const provisionFirst = await measure(
    [BUNDLE, 'provision', '--tenants', tenantsFile, '--format', 'json'],
    provisionEnv,
  );
  const provisionAgain = await measure(
    [BUNDLE, 'provision', '--tenants', tenantsFile, '--format', 'json'],
    provisionEnv,
  );

  // Per-tenant storage keys: the same 200 tenants' keys made, rotated, revoked (local IAM and policy-enforcing S3).
  const keys = await keysRun();

  // BENCH_SCALE_TENANTS=0 skips the scale run (minutes), e.g. when only the image's Node is compared.
  const scale = SCALE_TENANTS > 0 ? await scaleRun() : [];

  const dist = join(BUNDLE, '..');
  const js = readdirSync(dist).filter((f) => f.endsWith('.mjs'));
  const jsBytes = js.reduce((sum, f) => sum + statSync(join(dist, f)).size, 0);
  const fmt = (n: number, d = 0) => n.toFixed(d);
  console.log(
    `\nsuperfasttt-bootstrap benchmark: Node ${NODE_VERSION}, ${RUNS} runs each (median), ` +
      'PostgreSQL 16 with TLS, s3rver over HTTPS, smtp-server with STARTTLS, all on loopback; ' +
      'every process as in production (nothing preloaded), wall time from spawn to exit, peak RSS by GNU time ' +
      `(its own ${fmt(timeCost, 1)} ms subtracted from every wall time)`,
  );
  console.log('| What | Wall time (ms) | × node -e 0 | Peak RSS (MiB) | × node -e 0 |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  /** One row: the time and its ratio to the baseline, and the same for the peak RSS when measured. */
  const row = (what: string, ms: number, rssMiB?: number) => {
    const rss = rssMiB === undefined ? ' | ' : `${fmt(rssMiB, 1)} | ${fmt(rssMiB / baseline.rssMiB, 2)}`;
    console.log(`| ${what} | ${fmt(ms)} | ${fmt(ms / baseline.ms, 2)} | ${rss} |`);
  };
  for (const [what, m] of rows) row(what, m.ms, m.rssMiB);
  const byName = Object.fromEntries(rows);
  const added = (a: string, b: string) => fmt(byName[a]!.ms - byName[b]!.ms);
  row('20 concurrent bootstraps of one fresh schema: slowest run (median of 3)', median(concurrent));
  row('50 copies at once on 50 fresh schemas: slowest run (median of 3)', median(fiftyApart));
  row('50 copies at once on one fresh schema: slowest run (median of 3)', median(fiftyFresh));
  row('50 copies at once on one complete instance: slowest run (median of 3)', median(fiftyComplete));
  row('100 fresh tenants one after another: per-tenant median', median(many));
  row('100 fresh tenants one after another: per-tenant p95', quantile(many, 0.95));
  row('provision 200 tenants (one run, --concurrency 4)', provisionFirst.ms, provisionFirst.rssMiB);
  row('provision the same 200 again (nothing to do)', provisionAgain.ms, provisionAgain.rssMiB);
  for (const [what, m] of keys) row(what, m.ms, m.rssMiB);
  if (scale.length > 0) {
    console.log(
      `\nScale (Node ${NODE_VERSION}, one PostgreSQL 16 with TLS, storage and email off; ${SCALE_TENANTS} tenants):`,
    );
    console.log('| What | Figure |');
    console.log('| --- | ---: |');
    for (const [what, value] of scale) console.log(`| ${what} | ${value} |`);
  }
  const firstAdded = added('first bootstrap, storage + email verified', 'first bootstrap of a fresh tenant');
  const rerunAdded = added('re-run, storage + email verified', 're-run on a bootstrapped tenant');
  console.log(
    `\nStorage + email verification add ${firstAdded} ms to a first bootstrap ` +
      `and ${rerunAdded} ms to a re-run (medians).`,
  );
  const kib = (bytes: number) => fmt(bytes / 1024);
  const argon2 = statSync(join(dist, 'argon2.linux-x64-gnu.node')).size;
  console.log(
    `Bundle on disk: dist/ ${kib(dirSize(dist))} KiB in all; JavaScript ${kib(jsBytes)} KiB in ${js.length} files ` +
      `(entry ${kib(statSync(BUNDLE).size)} KiB, the rest loaded only when used); ` +
      `the native argon2 binding ${kib(argon2)} KiB.`,
  );
} finally {
  await Promise.all([pg.stop(), s3.stop(), smtp.stop()]);
}

/**
 * 200 tenants provisioned with storage in a shared bucket, first with the shared keys, then in another
 * database with per-tenant keys: each key made by the local IAM (test/harness/iam.ts) and proven against
 * the S3 front that evaluates that IAM's policies on every request (test/harness/s3-policy.ts); then all
 * rotated, all old keys revoked, and the idempotent re-run (every key of the .env proven again). The test
 * servers' own cost is in these figures (each S3 request of a tenant's key is a policy evaluation there).
 */
async function keysRun(): Promise<Array<[string, Sample]>> {
  const iam = await startIam();
  const front = await startPolicyS3(iam);
  try {
    const dir = tempDir('sf-bench-keys-');
    // Roles belong to the cluster: each database has tenants of its own names.
    const files = Object.fromEntries(
      ['bench_shared_keys', 'bench_own_keys'].map((database) => {
        const file = join(dir, `${database}.csv`);
        writeFileSync(file, ['name', ...Array.from({ length: 200 }, (_, i) => `${database}_${i}`)].join('\n'));
        return [database, file];
      }),
    );
    const env = (database: string, bucket: string) => ({
      PROVISION_DATABASE_URL: pg.url('bench_deployer', 'Bench-Deployer-42', { database, sslmode: 'require' }),
      PROVISION_STORAGE_ACCESS_KEY: iam.admin.accessKeyId,
      PROVISION_STORAGE_SECRET_KEY: iam.admin.secretAccessKey,
      PROVISION_STORAGE_ENDPOINT: front.httpEndpoint,
      PROVISION_STORAGE_REGION: front.region,
      PROVISION_STORAGE_BUCKET: bucket,
      PROVISION_STORAGE_IAM_ENDPOINT: iam.url,
    });
    const admin = new S3Client({
      region: front.region,
      endpoint: front.httpEndpoint,
      forcePathStyle: true,
      credentials: iam.admin,
    });
    for (const Bucket of ['bench-shared', 'bench-central']) await admin.send(new CreateBucketCommand({ Bucket }));
    admin.destroy();
    const out: Array<[string, Sample]> = [];
    /** Each database has its bucket: the tenants of one are not those of the other (their proofs differ). */
    const provision = async (what: string, database: string, args: string[]) => {
      const bucket = database === 'bench_shared_keys' ? 'bench-shared' : 'bench-central';
      const sample = await measure(
        [BUNDLE, 'provision', '--tenants', files[database] ?? '', ...args],
        env(database, bucket),
      );
      if (!/0 failed/.test(sample.output)) throw new Error(`${what}:\n${sample.output.slice(-2000)}`);
      out.push([what, sample]);
    };
    for (const database of ['bench_shared_keys', 'bench_own_keys'])
      await pg.admin.unsafe(`create database ${database} owner bench_deployer`);
    await provision('provision 200 tenants with storage, shared keys', 'bench_shared_keys', [
      '--out-dir',
      join(dir, 'shared'),
    ]);
    const own = ['--out-dir', join(dir, 'own'), '--storage-keys', 'per-tenant'];
    await provision('provision 200 tenants, per-tenant keys (each made and proven)', 'bench_own_keys', own);
    await provision('provision the same 200 again (every key proven, none made)', 'bench_own_keys', own);
    await provision('rotate the 200 keys (--rotate-storage-key)', 'bench_own_keys', [...own, '--rotate-storage-key']);
    await provision('revoke the 200 old keys (--revoke-old-storage-keys)', 'bench_own_keys', [
      ...own,
      '--revoke-old-storage-keys',
    ]);
    return out;
  } finally {
    await front.stop();
    await iam.stop();
  }
}

/**
 * SCALE_TENANTS tenants provisioned (a non-superuser deployer) and bootstrapped from their .env,
 * 4 at a time, while the server's connections are sampled; then 50 copies on one schema at once.
 */
async function scaleRun(): Promise<Array<[string, string]>> {
  await pg.admin.unsafe("create role scale_deployer login createrole password 'Scale-Deployer-42'");
  await pg.admin.unsafe('create database scale_tenants owner scale_deployer');
  const dir = tempDir('sf-scale-');
  const file = join(dir, 'tenants.csv');
  writeFileSync(
    file,
    [
      'name,email,first_name,last_name',
      ...Array.from({ length: SCALE_TENANTS }, (_, i) => `scale_${i},admin@scale-${i}.example,Ada,Lovelace`),
    ].join('\n'),
  );
  const deployer = {
    PROVISION_DATABASE_URL: pg.url('scale_deployer', 'Scale-Deployer-42', {
      database: 'scale_tenants',
      sslmode: 'require',
    }),
  };
  const provisioned = await measure(
    [BUNDLE, 'provision', '--tenants', file, '--out-dir', join(dir, 'envs'), '--concurrency', '4'],
    deployer,
  );

  // Connections of the tenants' roles, sampled while they bootstrap: total, and per role.
  const bootstrapping = sampleConnections();
  const times: number[] = new Array(SCALE_TENANTS);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < SCALE_TENANTS) {
        const i = next++;
        const env = Object.fromEntries(
          readFileSync(join(dir, 'envs', `scale_${i}.env`), 'utf8')
            .split('\n')
            .filter((l) => l && !l.startsWith('#'))
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        times[i] = (await measure([BUNDLE], env)).ms;
      }
    }),
  );
  const total = performance.now() - started;
  const { peakTotal, peakPerRole } = await bootstrapping.stop();
  const fleet = await fleetRun(join(dir, 'envs'), dir);

  // 50 copies at the same instant on one fresh schema.
  const one = await createTenant(pg);
  const copies = await Promise.all(
    Array.from({ length: 50 }, () => measure([BUNDLE], instanceEnv(one, { DATABASE_LOCK_TIMEOUT: '600' }))),
  );
  const lockWaits = copies.map((c) => Number(/after waiting (\d+) ms/.exec(c.output)?.[1] ?? 0));

  const first = times.slice(0, 100);
  const last = times.slice(-100);
  const f = (n: number) => `${Math.round(n)} ms`;
  return [
    [`provision ${SCALE_TENANTS} tenants (--concurrency 4)`, `${(provisioned.ms / 1000).toFixed(1)} s`],
    [`bootstrap ${SCALE_TENANTS} tenants, 4 at a time: total`, `${(total / 1000).toFixed(1)} s`],
    ['per tenant: median / p95', `${f(median(times))} / ${f(quantile(times, 0.95))}`],
    ['first 100 tenants: median / p95', `${f(median(first))} / ${f(quantile(first, 0.95))}`],
    ['last 100 tenants: median / p95', `${f(median(last))} / ${f(quantile(last, 0.95))}`],
    ['peak server connections of the tenants (total / per bootstrap)', `${peakTotal} / ${peakPerRole}`],
    ['50 copies at once on one schema: exit 0', `${copies.length} of 50`],
    [
      '50 copies at once: slowest run / longest lock wait',
      `${f(Math.max(...copies.map((c) => c.ms)))} / ${f(Math.max(...lockWaits))}`,
    ],
    ...fleet,
  ];
}

/** Connections of the tenants' roles (tenant_scale_*), sampled every 20 ms until stop(): the total and per role. */
function sampleConnections(): { stop(): Promise<{ peakTotal: number; peakPerRole: number }> } {
  let peakTotal = 0;
  let peakPerRole = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await pg.admin<{ total: number; per_role: number }[]>`
        select coalesce(sum(n), 0)::int as total, coalesce(max(n), 0)::int as per_role
        from (select count(*) as n from pg_stat_activity where usename like 'tenant_scale_%' group by usename) t`;
      peakTotal = Math.max(peakTotal, row?.total ?? 0);
      peakPerRole = Math.max(peakPerRole, row?.per_role ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      sampling = false;
      await sampler.catch(() => {});
      return { peakTotal, peakPerRole };
    },
  };
}

/**
 * The fleet commands over the SCALE_TENANTS instances just bootstrapped: `fleet check` (read-only), then
 * `fleet bootstrap` of a release with one new migration, built by the bench into its own dist/ from a copy of
 * migrations/ plus 0002_bench_fleet.sql (migrations/ itself is never touched). Default --concurrency (8).
 */
async function fleetRun(envs: string, dir: string): Promise<Array<[string, string]>> {
  const f = (n: number) => `${Math.round(n)} ms`;
  const rowsOf = (output: string) => {
    const report = JSON.parse(output.slice(output.indexOf('{'))) as {
      instances: Array<{ name: string; status: string; duration_ms: number; message: string }>;
    };
    return report.instances;
  };
  const figures = (what: string, sample: Sample, expected: string, peak: { peakTotal: number }) => {
    const rows = rowsOf(sample.output);
    const wrong = rows.filter((r) => r.status !== expected);
    if (wrong.length > 0)
      throw new Error(`${what}: ${wrong.length} instance(s) not ${expected}: ${JSON.stringify(wrong.slice(0, 2))}`);
    const ms = rows.map((r) => r.duration_ms);
    const [first, last] = [ms.slice(0, 100), ms.slice(-100)];
    return [
      [
        `${what}: wall time, peak RSS of the fleet process`,
        `${(sample.ms / 1000).toFixed(1)} s, ${sample.rssMiB.toFixed(1)} MiB`,
      ],
      [`${what}: per instance median / p95`, `${f(median(ms))} / ${f(quantile(ms, 0.95))}`],
      [`${what}: first 100 / last 100 instances, median`, `${f(median(first))} / ${f(median(last))}`],
      [`${what}: peak connections of the tenants`, String(peak.peakTotal)],
    ] as Array<[string, string]>;
  };
  const checking = sampleConnections();
  const check = await measure(
    [BUNDLE, 'fleet', 'check', '--envs', envs, '--format', 'json', '--log-dir', join(dir, 'logs-check')],
    {},
  ).finally(() => checking.stop());
  const checkPeak = await checking.stop();

  const migrations = join(dir, 'migrations');
  cpSync(new URL('../../migrations', import.meta.url), migrations, { recursive: true });
  writeFileSync(join(migrations, '0002_bench_fleet.sql'), 'CREATE INDEX users_created_at_idx ON users (created_at);\n');
  const release = join(dir, 'dist');
  execFileSync(process.execPath, [fileURLToPath(new URL('../../build/build.mjs', import.meta.url))], {
    env: { ...process.env, BUILD_OUT_DIR: release, BUILD_MIGRATIONS_DIR: migrations },
  });
  const bootstrapping = sampleConnections();
  const rollout = await measure(
    [
      join(release, 'superfasttt-bootstrap.mjs'),
      'fleet',
      'bootstrap',
      '--envs',
      envs,
      '--format',
      'json',
      '--log-dir',
      join(dir, 'logs-bootstrap'),
    ],
    {},
  ).finally(() => bootstrapping.stop());
  const rolloutPeak = await bootstrapping.stop();
  return [
    ...figures('fleet check', check, 'ok', checkPeak),
    ...figures('fleet bootstrap of a new migration', rollout, 'bootstrapped', rolloutPeak),
  ];
}
