// npm run bench: speed and memory of the built executable against the same real PostgreSQL as the
// tests. Medians of several runs; each figure also as a ratio to `node -e 0` measured in this run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE } from '../test/harness/cli.js';
import { instanceEnv } from '../test/harness/instance.js';
import { createTenant, startPostgres, type Tenant } from '../test/harness/postgres.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const probe = fileURLToPath(new URL('./rss-probe.mjs', import.meta.url));
const rssFile = join(mkdtempSync(join(tmpdir(), 'sf-bench-')), 'rss');

interface Sample {
  ms: number;
  rssMiB: number;
}

/** One measured process: wall time from spawn to exit, peak RSS from inside the process. */
function measure(args: string[], env: Record<string, string | undefined> = {}): Sample {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', probe, ...args], {
    env: { PATH: process.env.PATH, NO_COLOR: '1', BENCH_RSS_FILE: rssFile, ...env },
    encoding: 'utf8',
  });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return { ms, rssMiB: Number(readFileSync(rssFile, 'utf8')) / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function series(make: () => Sample): { ms: number; rssMiB: number } {
  const samples = Array.from({ length: RUNS }, make);
  return { ms: median(samples.map((s) => s.ms)), rssMiB: median(samples.map((s) => s.rssMiB)) };
}

function dirSize(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

const pg = await startPostgres({ tls: true });
try {
  const fresh: Tenant[] = [];
  for (let i = 0; i < RUNS; i++) fresh.push(await createTenant(pg));
  const done = await createTenant(pg);
  measure([BUNDLE], instanceEnv(done)); // bootstrapped once; the re-runs below find it complete

  const baseline = series(() => measure(['-e', '0']));
  const rows: Array<[string, { ms: number; rssMiB: number }]> = [
    ['node -e 0 (baseline)', baseline],
    ['--version (cold start)', series(() => measure([BUNDLE, '--version']))],
    ['first bootstrap of a fresh tenant', series(() => measure([BUNDLE], instanceEnv(fresh.pop()!)))],
    ['re-run on a bootstrapped tenant', series(() => measure([BUNDLE], instanceEnv(done)))],
  ];

  const dist = join(BUNDLE, '..');
  const js = readdirSync(dist).filter((f) => f.endsWith('.mjs'));
  const jsBytes = js.reduce((sum, f) => sum + statSync(join(dist, f)).size, 0);
  const fmt = (n: number, d = 0) => n.toFixed(d);
  console.log(`\nsuperfasttt-bootstrap benchmark: Node ${process.version}, ${RUNS} runs each (median), PostgreSQL 16 with TLS on loopback`);
  console.log('| What | Wall time (ms) | × node -e 0 | Peak RSS (MiB) | × node -e 0 |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [what, m] of rows) {
    console.log(`| ${what} | ${fmt(m.ms)} | ${fmt(m.ms / baseline.ms, 2)} | ${fmt(m.rssMiB, 1)} | ${fmt(m.rssMiB / baseline.rssMiB, 2)} |`);
  }
  console.log(`\nBundle on disk: dist/ ${fmt(dirSize(dist) / 1024)} KiB in all; JavaScript ${fmt(jsBytes / 1024)} KiB in ${js.length} files (entry ${fmt(statSync(BUNDLE).size / 1024)} KiB); the rest is the native argon2 binding.`);
} finally {
  await pg.stop();
}
