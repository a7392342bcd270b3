/**
 * A fleet run: `check` or `bootstrap` of every instance, each with its own .env, in stages, at most
 * `concurrency` at a time (each instance holds its own connections: one to PostgreSQL at a time for
 * check, two while a bootstrap holds its lock). Every instance's log goes to `<logDir>/<name>.log`
 * (JSON lines, redacted) so that one failure among thousands can be read without running it again.
 * A signal (SIGINT, SIGTERM) starts nothing new and cancels the running instances cleanly (a
 * bootstrap cut short marks nothing done); the rows of what did not run say so.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandInput } from '../commands/input.js';
import { BootstrapError, ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import { makeDirectory } from '../make-directory.js';
import type { FleetRow } from './fleet-report.js';
import type { Instance } from './instances.js';
import { ALL_STAGE, crossed, describeMax, type MaxFailures, type Stage } from './stages.js';

export type FleetCommand = 'check' | 'bootstrap';

export interface FleetRunOptions {
  command: FleetCommand;
  concurrency: number;
  /** bootstrap: when to stop starting instances; check: undefined (every instance is checked). */
  maxFailures: MaxFailures | undefined;
  logDir: string;
  /** check: the storage probe writes (false: --no-write). */
  write: boolean;
  /** Called as each instance ends: done so far, failed so far. */
  onProgress?: (done: number, failed: number) => void;
}

/** What one instance's run yields: its row without the fields the runner fills. */
export type InstanceOutcome = Omit<FleetRow, 'name' | 'stage' | 'duration_ms'>;

export type RunInstance = (instance: Instance, input: CommandInput, opts: FleetRunOptions) => Promise<InstanceOutcome>;

/** A run in one stage has none to show. */
const stageOf = (stage: Stage) => (stage.name === ALL_STAGE ? null : stage.name);

/** The row's findings when the instance did not run, or failed before reporting any. */
const UNKNOWN = { applied: null, pending: null, setup_completed: null, admin_present: null, drift: null } as const;

const isFailure = (row: Pick<FleetRow, 'status'>) => row.status === 'failed' || row.status === 'interrupted';

export async function runFleet(
  input: CommandInput,
  stages: readonly Stage[],
  opts: FleetRunOptions,
  runInstance: RunInstance,
): Promise<{ rows: FleetRow[]; stoppedBy?: string }> {
  try {
    makeDirectory(opts.logDir);
  } catch (error) {
    throw new ConfigError(
      `--log-dir: ${opts.logDir} cannot be created (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      [],
      'give --log-dir a writable directory (in a read-only container: a mounted volume or an emptyDir)',
    );
  }
  const rows = new Map<string, FleetRow>();
  let failedInRun = 0;
  let stoppedBy: string | undefined;
  let finished = 0;

  for (const stage of stages) {
    let failedInStage = 0;
    let next = 0;
    const stopReason = () => {
      if (input.signal.aborted) return `stopped by ${String(input.signal.reason ?? 'a signal')}`;
      if (opts.maxFailures && crossed(opts.maxFailures, failedInRun, failedInStage, stage.instances.length))
        return `${failedInRun} failure(s) crossed ${describeMax(opts.maxFailures)}`;
      return undefined;
    };
    const worker = async () => {
      while (next < stage.instances.length) {
        stoppedBy ??= stopReason();
        if (stoppedBy) return;
        const instance = stage.instances[next++] as Instance;
        const row = await runLogged(instance, stageOf(stage), input, opts, runInstance);
        rows.set(instance.name, row);
        if (isFailure(row)) {
          failedInRun++;
          failedInStage++;
        }
        opts.onProgress?.(++finished, failedInRun);
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, stage.instances.length) }, worker));
    stoppedBy ??= stopReason();
    if (stoppedBy) break;
  }

  const all = stages.flatMap((stage) =>
    stage.instances.map(
      (instance): FleetRow =>
        rows.get(instance.name) ?? {
          name: instance.name,
          stage: stageOf(stage),
          status: 'not-started',
          exit_code: 0,
          ...UNKNOWN,
          duration_ms: 0,
          message: `not started: ${stoppedBy ?? 'the run stopped'}`,
        },
    ),
  );
  return { rows: all, ...(stoppedBy && { stoppedBy }) };
}

/** One instance, its log in its own file; a bug in it is its row (exit 1), not the run's end. */
async function runLogged(
  instance: Instance,
  stage: string | null,
  input: CommandInput,
  opts: FleetRunOptions,
  runInstance: RunInstance,
): Promise<FleetRow> {
  const started = performance.now();
  const fd = openSync(join(opts.logDir, `${instance.name}.log`), 'w', 0o600);
  const write = (line: string) => writeSync(fd, `${line}\n`);
  const log = createLogger({ format: 'json', color: false, stdout: write, stderr: write });
  let outcome: InstanceOutcome;
  try {
    outcome = await runInstance(instance, { ...input, env: instance.env, log }, opts);
  } catch (error) {
    const known = error instanceof BootstrapError;
    const message = known ? error.message : `internal error: ${(error as Error)?.message ?? String(error)}`;
    log.error(message, { exit_code: known ? error.exitCode : 1, ...(known && error.fix && { fix: error.fix }) });
    outcome = {
      status: input.signal.aborted ? 'interrupted' : 'failed',
      exit_code: known ? error.exitCode : 1,
      ...UNKNOWN,
      message,
    };
  } finally {
    closeSync(fd);
  }
  return { name: instance.name, stage, ...outcome, duration_ms: Math.round(performance.now() - started) };
}
