// Every wait and every read is bounded, whatever the PostgreSQL server (or a proxy in front of it)
// does: {drip, flood, garbage, close} × {the startup answer, connect()'s settings query, the next
// query}, against a fake PostgreSQL of the test's own making (test/harness/fake-postgres.ts), for
// bootstrap and check. Every cell must end on its own (the spawn's kill is a safety net, and the
// test fails if it fired) with exit 3 and a message naming the bound and its variable, no stack
// trace, and a peak RSS under the Kubernetes memory limit. No wall-clock assertion.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { assertExit, runCli, type RunResult } from './harness/cli.js';
import { ADMIN } from './harness/instance.js';
import { tempDir } from './harness/net.js';
import {
  PG_BEHAVIOURS,
  PG_PHASES,
  startFakePostgres,
  type PgBehaviour,
  type PgPhase,
} from './harness/fake-postgres.js';

/** deploy/kubernetes/deployment.yaml: resources.limits.memory. */
const MEMORY_LIMIT_MIB = 160;
const RSS_PROBE = fileURLToPath(new URL('./bench/rss-probe.mjs', import.meta.url));
/** The safety net only: every cell's documented bound is a few seconds (2 s to connect, 2 + 5 s per statement). */
const KILL_AFTER_MS = 60_000;
const STATEMENT_TIMEOUT = 2;
const CONNECT_TIMEOUT = 2;
const PASSWORD = 'Fake-Pg-Password-1';

const rssDir = tempDir('sf-pg-rss-');
const peaks: Array<{ cell: string; mib: number }> = [];
after(() => {
  peaks.sort((a, b) => b.mib - a.mib);
  const top = peaks
    .slice(0, 3)
    .map((p) => `${p.cell} ${p.mib.toFixed(1)} MiB`)
    .join(', ');
  process.stderr.write(`# pg-bounded: ${peaks.length} cells, highest peak RSS: ${top}\n`);
});

const DEADLINE = new RegExp(
  `PostgreSQL at 127\\.0\\.0\\.1:\\d+ did not complete an answer within ${STATEMENT_TIMEOUT + 5} s ` +
    `\\(DATABASE_STATEMENT_TIMEOUT \\+ 5 s\\)`,
);
const SIZE = /PostgreSQL at 127\.0\.0\.1:\d+ sent more than 8 MiB without completing an answer/;
const CONNECT = new RegExp(
  `no answer from PostgreSQL at 127\\.0\\.0\\.1:\\d+ within DATABASE_CONNECT_TIMEOUT=${CONNECT_TIMEOUT} s`,
);
const CLOSED = new RegExp(`unreachable for ${CONNECT_TIMEOUT} s \\(CONNECTION_CLOSED`);

/** What each cell must say: the bound that ended it. */
function expected(phase: PgPhase, behaviour: PgBehaviour): RegExp {
  if (behaviour === 'flood') return SIZE;
  if (phase === 'startup') return behaviour === 'close' ? CLOSED : CONNECT; // the driver's connect_timeout, retried
  if (behaviour === 'close')
    return phase === 'connect-query' ? CLOSED : /the connection to PostgreSQL was lost during the schema step/;
  return DEADLINE;
}

async function runCell(command: 'bootstrap' | 'check', phase: PgPhase, behaviour: PgBehaviour): Promise<void> {
  const name = `${command} ${phase} ${behaviour}`;
  const server = await startFakePostgres({ phase, behaviour });
  const rssFile = join(rssDir, `${name.replace(/\W+/g, '_')}.rss`);
  let result: RunResult;
  try {
    result = await runCli(
      {
        SKIP_SETUP: 'true',
        DATABASE_URL: `postgres://tenant_fake:${PASSWORD}@127.0.0.1:${server.port}/app?sslmode=disable`,
        DATABASE_SCHEMA: 'tenant_fake',
        DATABASE_CONNECT_TIMEOUT: String(CONNECT_TIMEOUT),
        DATABASE_STATEMENT_TIMEOUT: String(STATEMENT_TIMEOUT),
        AUTO_SUPERADMIN_EMAIL: ADMIN.email,
        AUTO_SUPERADMIN_FIRSTNAME: ADMIN.firstName,
        AUTO_SUPERADMIN_LASTNAME: ADMIN.lastName,
        AUTO_SUPERADMIN_PASSWORD: ADMIN.password,
        BENCH_RSS_FILE: rssFile,
      },
      // The image's Node options (its ENTRYPOINT), and the probe that records the peak RSS.
      {
        args: command === 'check' ? ['check'] : [],
        nodeArgs: ['--max-semi-space-size=1', '--import', RSS_PROBE],
        timeoutMs: KILL_AFTER_MS,
      },
    );
  } finally {
    await server.stop();
  }
  if (process.env.BOUNDED_SHOW) process.stderr.write(`## ${name}: exit ${result.code}\n${result.output}\n`);
  assert.equal(
    result.signal,
    null,
    `${name}: killed by the test's safety net: the run did not end on its own\n${result.output}`,
  );
  assertExit(result, 3, expected(phase, behaviour));
  assert.doesNotMatch(result.output, /internal error|Unknown Message/);
  assert.ok(
    !result.output.includes(PASSWORD) && !result.output.includes(ADMIN.password),
    `a secret in the output:\n${result.output}`,
  );
  const mib = Number(readFileSync(rssFile, 'utf8')) / 1024;
  peaks.push({ cell: name, mib });
  assert.ok(mib < MEMORY_LIMIT_MIB, `${name}: peak RSS ${mib.toFixed(1)} MiB, over the ${MEMORY_LIMIT_MIB} MiB limit`);
}

const ONLY = process.env.BOUNDED_ONLY; // a substring of cell names, to run a few by hand
const cells: Array<['bootstrap' | 'check', PgPhase, PgBehaviour]> = [
  ...PG_PHASES.flatMap((phase) =>
    PG_BEHAVIOURS.map((behaviour): ['bootstrap', PgPhase, PgBehaviour] => ['bootstrap', phase, behaviour]),
  ),
  // check runs the same steps read-only, through its own report: the same bounds hold.
  ['check', 'connect-query', 'drip'],
  ['check', 'next-query', 'flood'],
];

describe('every PostgreSQL wait and read is bounded ' +
  '(drip, flood, garbage, close × startup, connect query, next query)', {
  concurrency: 7,
}, () => {
  for (const [command, phase, behaviour] of cells) {
    const name = `${command} ${phase} ${behaviour}`;
    if (ONLY && !name.includes(ONLY)) continue;
    it(name, () => runCell(command, phase, behaviour));
  }
});
