/**
 * A step of the bootstrap: a name, the error class (exit code) of its failures, and run().
 * The command is a list of steps; the pipeline runs them in order and logs one line per step.
 * `check` runs the same steps with ctx.mode = 'check': they verify and report, and write nothing.
 */
import { BootstrapError, InterruptedError } from '../errors.js';
import type { Env } from '../config/schema.js';
import { connectionLost, errorCode, type Connection } from '../db/connect.js';
import { isLockTimeout, lockTimeoutError, STATEMENT_TIMEOUT } from '../db/locks.js';
import type { HeldLock } from './lock.js';
import { BOOTSTRAP_LOCK_TABLE } from './tables.js';
import type { EmailProvider } from '../email/provider.js';
import type { Logger } from '../log.js';

type ErrorClass = new (message: string, fix?: string, options?: { cause?: unknown }) => BootstrapError;

/** What the steps share. Later steps read what earlier ones found (the connection, what changed). */
export interface RunContext {
  /** apply: bootstrap. check: verify and report only, no write (the database session is read-only). */
  mode: 'apply' | 'check';
  /** In check mode: whether the storage probe (write, read back, delete) may run. */
  storageProbe: boolean;
  env: Env;
  log: Logger;
  signal: AbortSignal;
  version: string;
  db?: Connection;
  /** check: migrations the bootstrap would apply (the super admin's rehearsal needs the final tables). */
  pendingMigrations?: number;
  /** The bootstrap lock, held in its own session until the run ends. */
  heldLock?: HeldLock;
  /** Set by the email step when a provider is configured. */
  email?: EmailProvider;
  /** Changes made by this run, for the summary line. Empty on a re-run of a complete instance. */
  changes: string[];
}

export interface Step {
  readonly name: string;
  /** Unclassified operational failures of this step (driver and socket errors) get this class. */
  readonly errorClass: ErrorClass;
  /** Steps whose success this one needs (check mode reports it as skipped otherwise). */
  readonly needs?: readonly string[];
  /** Does the work (or, in check mode, verifies); returns the one-line result that is logged. */
  run(ctx: RunContext): Promise<string>;
  /**
   * Optional: start loading what run() will need (a client library), so that the load overlaps
   * with the network waits of the steps before it. Must not fail: run() reports any error.
   */
  prepare?(env: Env): void;
}

/**
 * A pipeline: steps in order. A `concurrent` entry runs independent branches at the same time
 * (the database chain, storage, email: each waits on its own network), waits for all of them,
 * reports every failure, and fails with the first one in branch order, so the exit code does not
 * depend on which server answered first.
 */
export type Pipeline = ReadonlyArray<Step | Concurrent>;
export interface Concurrent {
  readonly concurrent: readonly Pipeline[];
}

export function stepsOf(pipeline: Pipeline): Step[] {
  return pipeline.flatMap((entry) => ('concurrent' in entry ? entry.concurrent.flatMap(stepsOf) : [entry]));
}

export async function runSteps(pipeline: Pipeline, ctx: RunContext): Promise<void> {
  for (const step of stepsOf(pipeline)) step.prepare?.(ctx.env);
  await runSequence(pipeline, ctx);
}

async function runSequence(pipeline: Pipeline, ctx: RunContext): Promise<void> {
  for (const entry of pipeline) {
    throwIfAborted(ctx.signal);
    if (!('concurrent' in entry)) {
      await runStep(entry, ctx);
      continue;
    }
    const results = await Promise.allSettled(entry.concurrent.map((branch) => runSequence(branch, ctx)));
    const [first, ...others] = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason as unknown);
    // The operator sees every failure; the first (in branch order) decides the exit code.
    for (const error of others) {
      if (error instanceof BootstrapError)
        ctx.log.error(error.message, { ...(error.fix && { fix: error.fix }), exit_code: error.exitCode });
    }
    if (first !== undefined) throw first;
  }
}

async function runStep(step: Step, ctx: RunContext): Promise<void> {
  const started = performance.now();
  let summary: string;
  try {
    summary = await step.run(ctx);
  } catch (error) {
    throwIfAborted(ctx.signal);
    throw await classifyFailure(error, step, ctx);
  }
  ctx.log.info(summary, { step: step.name, durationMs: performance.now() - started });
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new InterruptedError(signal.reason as NodeJS.Signals);
}

/**
 * Driver and socket errors carry a string `code` (SQLSTATE, errno): they are operational and take
 * the step's class. Anything else (TypeError, ...) is a bug and stays as it is (exit 1, with stack).
 */
export function classify(error: unknown, step: Step): unknown {
  if (error instanceof BootstrapError) return error;
  const lost = connectionLost(error, `the ${step.name} step`);
  if (lost) return lost;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const message = (error as Error).message;
  return new step.errorClass(`${step.name}: ${message} (${code})`, undefined, { cause: error });
}

/**
 * classify(), plus what needs the database to explain: a statement that gave up waiting for a lock
 * (exit 4, naming the table and the session that holds it), or that ran past statement_timeout.
 */
export async function classifyFailure(error: unknown, step: Step, ctx: RunContext): Promise<unknown> {
  if (error instanceof BootstrapError) return error;
  if (ctx.db && isLockTimeout(error)) {
    return await lockTimeoutError(
      ctx.db.sql,
      [ctx.env.DATABASE_SCHEMA],
      `the ${step.name} step`,
      'DATABASE_LOCK_TIMEOUT',
      ctx.env.DATABASE_LOCK_TIMEOUT,
      error,
      { exclude: BOOTSTRAP_LOCK_TABLE },
    );
  }
  if (errorCode(error) === STATEMENT_TIMEOUT) {
    return new step.errorClass(
      `${step.name}: a statement ran longer than DATABASE_STATEMENT_TIMEOUT=${ctx.env.DATABASE_STATEMENT_TIMEOUT} s and was cancelled (nothing of its transaction was kept)`,
      'look for what slows the server down (pg_stat_activity), or raise DATABASE_STATEMENT_TIMEOUT',
      { cause: error },
    );
  }
  return classify(error, step);
}

/** Connection of the run; a step that needs it comes after the database step. */
export function dbOf(ctx: RunContext): Connection {
  if (!ctx.db) throw new Error('internal: step needs the database connection before the database step ran');
  return ctx.db;
}
