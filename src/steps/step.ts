/**
 * A step of the bootstrap is two programs over the same inputs: `inspect` (read-only: what `check`
 * runs) and `apply` (what the bootstrap runs: it may write). A step names the steps it needs; it
 * receives their outputs, typed, as its input, and runs once they all passed. One runner runs the
 * steps of both commands: the bootstrap's at the same time as far as their needs allow, check's one
 * after the other; the dependents of a failure are skipped (see runSteps).
 */
import type { InstanceConfig } from '../config/targets.js';
import { type Connection, connectionLost, errorCode } from '../db/connect.js';
import { isLockTimeout, lockTimeoutError, STATEMENT_TIMEOUT } from '../db/locks.js';
import { BootstrapError, InterruptedError } from '../errors.js';
import type { Logger } from '../log.js';
import { BOOTSTRAP_LOCK_TABLE } from '../db/tables.js';

type ErrorClass = new (message: string, fix?: string, options?: { cause?: unknown }) => BootstrapError;

/** What every step may use; nothing in it changes during a run. */
export interface StepContext {
  config: InstanceConfig;
  log: Logger;
  signal: AbortSignal;
  version: string;
  /** false with check --no-write: the storage probe and the super admin rehearsal are skipped. */
  write: boolean;
  /** What the run holds open (connections, the lock): released at its end, destroyed on a signal. */
  resources: Resources;
}

/** A step's result: the value the steps that need it receive, and the line that is logged. */
export interface Done<Out> {
  output: Out;
  summary: string;
  /** Changes made (apply), for the run's summary line. */
  changes?: readonly string[];
  /** What inspect found, as data (check's JSON, the fleet's columns): e.g. migrations applied and pending. */
  facts?: Facts;
}

/** A step's findings as data. */
export type Facts = Readonly<Record<string, number | boolean>>;

export interface AnyStep {
  readonly name: string;
  /** Unclassified operational failures of this step (driver and socket errors) get this class. */
  readonly errorClass: ErrorClass;
  /** The steps whose outputs this one takes, by the name of its input. */
  readonly needs: StepNeeds;
  /**
   * Steps that must have passed before this one applies, without giving it anything: nothing is
   * marked done before every verification passed. check ignores them (it reports every step).
   */
  readonly after?: readonly AnyStep[];
  inspect(ctx: StepContext, input: never): Promise<Done<unknown>>;
  apply(ctx: StepContext, input: never): Promise<Done<unknown>>;
  /**
   * Optional: start loading what the step will need (a client library), so that the load overlaps
   * with the network waits of the steps before it. Must not fail: the step reports any error.
   */
  prepare?(config: InstanceConfig): void;
}

export type StepNeeds = Readonly<Record<string, AnyStep>>;

export type OutputOf<S> = S extends { apply(ctx: StepContext, input: never): Promise<Done<infer Out>> } ? Out : never;

/** What a step receives: the output of each step it needs, under the name it gave it. */
export type InputsOf<Needs extends StepNeeds> = { readonly [K in keyof Needs]: OutputOf<Needs[K]> };

export interface Step<Needs extends StepNeeds, Out> extends AnyStep {
  readonly needs: Needs;
  inspect(ctx: StepContext, input: InputsOf<Needs>): Promise<Done<Out>>;
  apply(ctx: StepContext, input: InputsOf<Needs>): Promise<Done<Out>>;
}

/** Declares a step; the compiler checks its inputs against the outputs of the steps it needs. */
export function defineStep<Needs extends StepNeeds, Out>(step: Step<Needs, Out>): Step<Needs, Out> {
  return step;
}

export function done<Out>(summary: string, output: Out, changes?: readonly string[], facts?: Facts): Done<Out> {
  return { output, summary, ...(changes && { changes }), ...(facts && { facts }) };
}

// ---- resources ---------------------------------------------------------------------------------

export interface Resource {
  /** At the end of the run; must not throw (a failure there must not mask the run's outcome). */
  close(): Promise<void>;
  /** On a signal: at once, whatever is in flight. */
  destroy(): void;
}

/** What a run holds open, released in the reverse order of opening. */
export class Resources {
  readonly #held: Resource[] = [];

  /** Holds `resource` until the end of the run; the function returned lets go of it earlier. */
  add(resource: Resource): () => void {
    this.#held.push(resource);
    return () => {
      const at = this.#held.indexOf(resource);
      if (at >= 0) this.#held.splice(at, 1);
    };
  }

  async closeAll(): Promise<void> {
    for (const resource of this.#held.splice(0).reverse()) await resource.close().catch(() => {});
  }

  destroyAll(): void {
    for (const resource of this.#held) resource.destroy();
  }
}

// ---- the runner --------------------------------------------------------------------------------

export type StepStatus = 'pass' | 'fail' | 'skip';

export interface StepResult {
  step: AnyStep;
  status: StepStatus;
  /** pass: the step's summary; skip: why; fail: the error's message. */
  summary: string;
  /** fail: what went wrong (a BootstrapError, or a bug). */
  error?: unknown;
  changes: readonly string[];
  /** pass: what the step reported as data, if anything. */
  facts?: Facts;
  durationMs: number;
}

type Settled = { result: StepResult; output?: unknown };

/**
 * Runs `steps`, `apply` or `inspect` each, reports every result as it comes, and returns the results
 * in declaration order once every step has settled: nothing is left running when it returns (what a
 * step opened is in ctx.resources, for the caller to close).
 * - apply: a step starts once its needs and its `after` passed, so independent steps run at the same
 *   time (the database chain, storage, email).
 * - inspect: one step at a time, in declaration order, each skipped when a need did not pass: a check
 *   reads the tables only after the lock step watched a running bootstrap end, as the bootstrap would.
 * After a signal, no step starts (each fails with InterruptedError) and a running step's failure is
 * InterruptedError too; the caller decides what that means (the bootstrap stops with it, check
 * reports it). The caller's own abort handler destroys the resources, which ends the running ones.
 */
export async function runSteps(
  steps: readonly AnyStep[],
  ctx: StepContext,
  mode: 'apply' | 'inspect',
  onResult: (result: StepResult) => void = () => {},
): Promise<StepResult[]> {
  for (const step of steps) step.prepare?.(ctx.config);
  const running = new Map<AnyStep, Promise<Settled>>();
  const run = (step: AnyStep): Promise<Settled> => {
    let settled = running.get(step);
    if (!settled) {
      settled = settle(step).then((s) => {
        onResult(s.result);
        return s;
      });
      running.set(step, settled);
    }
    return settled;
  };
  const settle = async (step: AnyStep): Promise<Settled> => {
    const previous = steps[steps.indexOf(step) - 1];
    if (mode === 'inspect' && previous) await run(previous);
    const needs = Object.entries(step.needs);
    const waitFor = [...needs.map(([, need]) => need), ...(mode === 'apply' ? (step.after ?? []) : [])];
    const before = await Promise.all(waitFor.map(run));
    const blocker = before.find((s) => s.result.status !== 'pass');
    if (blocker) return { result: skipped(step, `skipped: ${blocker.result.step.name} did not pass`) };
    const input = Object.fromEntries(needs.map(([key], i) => [key, before[i]?.output]));
    const started = performance.now();
    const failed = (failure: unknown): Settled => {
      const summary = failure instanceof Error ? failure.message : String(failure);
      return { result: { step, status: 'fail', summary, error: failure, changes: [], durationMs: 0 } };
    };
    if (ctx.signal.aborted) return failed(interruption(ctx.signal));
    try {
      const result = await (mode === 'apply' ? step.apply : step.inspect).call(step, ctx, input as never);
      const durationMs = performance.now() - started;
      const changes = result.changes ?? [];
      const facts = result.facts && { facts: result.facts };
      return {
        result: { step, status: 'pass', summary: result.summary, changes, ...facts, durationMs },
        output: result.output,
      };
    } catch (error) {
      if (ctx.signal.aborted) return failed(interruption(ctx.signal));
      const settled = failed(await classifyFailure(error, step, ctx, sessionIn(input)));
      settled.result.durationMs = performance.now() - started;
      return settled;
    }
  };
  const settled = await Promise.all(steps.map(run));
  return settled.map((s) => s.result);
}

function interruption(signal: AbortSignal): InterruptedError {
  return new InterruptedError(signal.reason as NodeJS.Signals);
}

function skipped(step: AnyStep, why: string): StepResult {
  return { step, status: 'skip', summary: why, changes: [], durationMs: 0 };
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw interruption(signal);
}

/** The database session among a step's inputs (by convention its `db` input), to explain its failures with. */
function sessionIn(input: Record<string, unknown>): Connection | undefined {
  const db = input.db as Partial<Connection> | undefined;
  return typeof db?.sql === 'function' ? (db as Connection) : undefined;
}

/**
 * Driver and socket errors carry a string `code` (SQLSTATE, errno): they are operational and take
 * the step's class. Anything else (TypeError, ...) is a bug and stays as it is (exit 1, with stack).
 */
function classify(error: unknown, step: AnyStep): unknown {
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
async function classifyFailure(
  error: unknown,
  step: AnyStep,
  ctx: StepContext,
  db: Connection | undefined,
): Promise<unknown> {
  if (error instanceof BootstrapError) return error;
  const target = ctx.config.database;
  if (db && isLockTimeout(error)) {
    return await lockTimeoutError(
      db.sql,
      [ctx.config.schema],
      `the ${step.name} step`,
      target.vars.lockTimeout,
      target.lockTimeoutSec,
      error,
      { exclude: BOOTSTRAP_LOCK_TABLE },
    );
  }
  if (errorCode(error) === STATEMENT_TIMEOUT) {
    return new step.errorClass(
      `${step.name}: a statement ran longer than ${target.vars.statementTimeout}=${target.statementTimeoutSec} s and ` +
        `was cancelled (nothing of its transaction was kept)`,
      `look for what slows the server down (pg_stat_activity), or raise ${target.vars.statementTimeout}`,
      { cause: error },
    );
  }
  return classify(error, step);
}
