// npm run bench:image (after test/image/build.sh): the bootstrap inside the image (`podman run`)
// against the same run outside it, under the image's Node and options, on the same PostgreSQL.
// Medians of BENCH_RUNS runs; wall time from spawn to exit, so the container's own start is counted.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { BUNDLE } from '../harness/cli.js';
import { instanceEnv } from '../harness/instance.js';
import { createTenant, startPostgres, type Tenant } from '../harness/postgres.js';
import { IMAGE } from '../image/podman.js';

/** The image's Node (24), from the npm package the tests use too. */
const IMAGE_NODE = fileURLToPath(new URL('../../node_modules/node/bin/node', import.meta.url));

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

async function timed(command: string, args: string[], env: Record<string, string | undefined> = {}): Promise<number> {
  const started = performance.now();
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`);
  return performance.now() - started;
}

/** The image's ENTRYPOINT, outside: the same Node binary and options. */
const outside = (tenant: Tenant) => timed(IMAGE_NODE, ['--max-semi-space-size=1', '--', BUNDLE], instanceEnv(tenant));

function inside(tenant: Tenant): Promise<number> {
  const env = Object.entries(instanceEnv(tenant)).flatMap(([k, v]) => (v === undefined ? [] : ['--env', `${k}=${v}`]));
  return timed('podman', ['--runtime', 'runc', 'run', '--rm', '--read-only', '--network', 'host', ...env, IMAGE]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const pg = await startPostgres({ tls: true });
try {
  const rows: Array<[string, number]> = [];
  for (const [where, run] of [
    ['outside (node_modules/node/bin/node)', outside],
    ['inside the image (podman run --rm --read-only)', inside],
  ] as const) {
    const fresh: number[] = [];
    const again: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const tenant = await createTenant(pg);
      fresh.push(await run(tenant));
      again.push(await run(tenant));
    }
    rows.push([`first bootstrap, ${where}`, median(fresh)], [`re-run, ${where}`, median(again)]);
  }
  const starts: number[] = [];
  for (let i = 0; i < RUNS; i++)
    starts.push(await timed('podman', ['--runtime', 'runc', 'run', '--rm', '--read-only', IMAGE, '--version']));
  const containerStart = median(starts);
  console.log(
    `\nsuperfasttt-bootstrap in its image (${IMAGE}) and outside it, ${RUNS} runs each (median), ` +
      'PostgreSQL 16 with TLS on loopback, storage and email off',
  );
  console.log('| What | Wall time (ms) |');
  console.log('| --- | ---: |');
  for (const [what, ms] of rows) console.log(`| ${what} | ${ms.toFixed(0)} |`);
  console.log(`| --version inside the image (the container's own start) | ${containerStart.toFixed(0)} |`);
} finally {
  await pg.stop();
}
