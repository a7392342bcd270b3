// A closed stdout or stderr (`... | head -1`, a log reader gone) never crashes the program nor
// changes its outcome. The built executable, its output closed by the reader, exits with the code of
// the same run whose output is read (docs/operations.md, "Faults: every wait is bounded"), prints no
// stack trace, and a bootstrap still completes or fails on its own merits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertExit, runCli, spawnCli, type Env, type RunResult } from './harness/cli.js';
import { instanceEnv, relations, setupState } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';

interface Run {
  name: string;
  args: string[];
  env: Env;
  /** Its exit code when the output is read: the documented one. */
  code: number;
}

/** Every command, with nothing to connect to (nothing listens on port 9 of loopback). */
const COMMANDS: Run[] = [
  { name: '--help', args: ['--help'], env: {}, code: 0 },
  { name: '--version', args: ['--version'], env: {}, code: 0 },
  { name: 'bootstrap, SKIP_SETUP unset', args: [], env: {}, code: 0 },
  { name: 'bootstrap, invalid environment', args: [], env: { SKIP_SETUP: 'true' }, code: 2 },
  {
    name: 'bootstrap, invalid environment, JSON logs',
    args: [],
    env: { SKIP_SETUP: 'true', LOG_FORMAT: 'json' },
    code: 2,
  },
  { name: 'check --json, invalid environment', args: ['check', '--json'], env: { DATABASE_SCHEMA: 'public' }, code: 2 },
  { name: 'check, invalid environment', args: ['check'], env: { DATABASE_SCHEMA: 'public' }, code: 2 },
  { name: 'provision, no deployer URL', args: ['provision', '--tenant', 'clienta'], env: {}, code: 2 },
  {
    name: 'deprovision dry run',
    args: ['deprovision', '--tenant', 'clienta'],
    env: { PROVISION_DATABASE_URL: 'postgres://deployer:Deployer-Pw-42@127.0.0.1:9/superfasttt' },
    code: 0,
  },
  { name: 'unknown command', args: ['bootstrapp'], env: {}, code: 2 },
];

/** Closes the reading end of stdout and/or stderr before the program has even started: every write fails (EPIPE). */
function closedBeforeStart(streams: Array<'stdout' | 'stderr'>) {
  return (run: Run): Promise<RunResult> => {
    const { child, result } = spawnCli(run.env, { args: run.args });
    for (const stream of streams) child[stream]!.destroy();
    return result;
  };
}

/** `superfasttt-bootstrap ... | head -c 10`: the exit code is the program's, not head's. */
function throughHead(run: Run): Promise<RunResult> {
  return runCli(run.env, {
    node: 'bash',
    nodeArgs: ['-c', '"$@" | head -c 10; exit "${PIPESTATUS[0]}"', 'bash', process.execPath],
    args: run.args,
  });
}

const CLOSINGS: Array<{ name: string; run: (run: Run) => Promise<RunResult> }> = [
  { name: 'stdout closed by its reader', run: closedBeforeStart(['stdout']) },
  { name: 'stderr closed by its reader', run: closedBeforeStart(['stderr']) },
  { name: 'stdout and stderr closed', run: closedBeforeStart(['stdout', 'stderr']) },
  { name: 'stdout read by head -c 10', run: throughHead },
];

function assertClean(result: RunResult, code: number): void {
  assertExit(result, code);
  assert.doesNotMatch(
    result.output,
    /EPIPE|EBADF|Unhandled 'error'|internal error \(a bug, please report it\)/,
    `output:\n${result.output}`,
  );
}

describe('a closed stdout or stderr changes nothing but what is printed', () => {
  const reference = new Map<Run, RunResult>();
  before(async () => {
    for (const run of COMMANDS) reference.set(run, await runCli(run.env, { args: run.args }));
  });

  it('with the output read, each command exits with its documented code', () => {
    for (const run of COMMANDS) assertClean(reference.get(run)!, run.code);
    // Each stream is written to by some of them, so closing it is really exercised.
    assert.ok(COMMANDS.some((run) => reference.get(run)!.stdout.length > 10));
    assert.ok(COMMANDS.some((run) => reference.get(run)!.stderr.length > 0));
  });

  for (const closing of CLOSINGS) {
    describe(closing.name, () => {
      for (const run of COMMANDS) {
        it(`${run.name}: exit ${run.code}, no stack trace`, async () => {
          const result = await closing.run(run);
          assertClean(result, run.code);
          if (closing.run === throughHead)
            assert.ok(
              reference.get(run)!.stdout.startsWith(result.stdout) && result.stdout.length <= 10,
              result.stdout,
            );
        });
      }
    });
  }
});

describe('a bootstrap with its output closed completes, or fails, on its own merits', () => {
  let pg: PgServer;
  before(async () => {
    pg = await startPostgres({ tls: false });
  });
  after(async () => {
    await pg?.stop();
  });

  for (const closing of CLOSINGS) {
    it(`${closing.name}: the instance is set up (exit 0)`, async () => {
      const tenant = await createTenant(pg);
      const result = await closing.run({ name: 'bootstrap', args: [], env: instanceEnv(tenant), code: 0 });
      assertClean(result, 0);
      assert.equal((await setupState(pg, tenant.schema))?.completed, true);
    });

    it(`${closing.name}: a schema the role cannot use is still exit 4, nothing written`, async () => {
      const tenant = await createTenant(pg, { create: false });
      const result = await closing.run({ name: 'bootstrap', args: [], env: instanceEnv(tenant), code: 4 });
      assertClean(result, 4);
      assert.deepEqual(await relations(pg, tenant.schema), []);
    });
  }
});
