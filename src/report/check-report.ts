/**
 * check's report: the bootstrap's steps inspected (read-only), each one a line: pass, fail (with
 * its fix and exit code) or skip (with the check it needed). The command prints it as a table
 * (check-table.ts) or as JSON.
 * Exit code: 0 when every check passes (pending migrations or a missing admin are not failures:
 * they are what the bootstrap is for), otherwise the code of the first failing check. A warning
 * (drift: the schema differs from what its migrations produce) never changes it: the bootstrap does
 * not fail on drift, and check predicts the bootstrap's exit code.
 */
import type { CommandInput } from '../commands/input.js';
import { loadConfig, secretSources } from '../config/load.js';
import { BootstrapError, ConfigError } from '../errors.js';
import { DRIFT_FIX, type DriftInspection, type DriftItem, driftStep } from '../steps/drift.js';
import { migrationsStep } from '../steps/migrations.js';
import { BOOTSTRAP_STEPS } from '../steps/pipeline.js';
import { type AnyStep, type Facts, Resources, runSteps, type StepContext, type StepResult } from '../steps/step.js';

export type { DriftItem, DriftObject } from '../steps/drift.js';
export { describeDrift } from '../steps/drift.js';

export interface CheckResult {
  name: string;
  /** warn: a finding that does not fail the check (drift); exit_code stays null. */
  status: 'pass' | 'fail' | 'skip' | 'warn';
  message: string;
  fix: string | null;
  exit_code: number | null;
  duration_ms: number;
  /**
   * On the `drift` line, once compared: every difference (the message lists the first few), empty when the
   * schema matches. Absent otherwise.
   */
  drift?: DriftItem[];
  /** What a passing step found, as data: migrations applied, pending; superadmin admin_present, setup_completed. */
  facts?: Facts;
}

/** The name of check's drift line (after `migrations`). */
export const DRIFT_CHECK = 'drift';

/** check's steps: the bootstrap's, with the drift line right after migrations. */
function checkSteps(drift: AnyStep): AnyStep[] {
  const at = BOOTSTRAP_STEPS.indexOf(migrationsStep) + 1;
  return [...BOOTSTRAP_STEPS.slice(0, at), drift, ...BOOTSTRAP_STEPS.slice(at)];
}

export interface CheckReport {
  version: string;
  ok: boolean;
  exit_code: number;
  skip_setup: string | null;
  checks: CheckResult[];
  secrets: Record<string, 'env' | 'file' | 'unset'>;
}

/** `write`: false with --no-write (no storage probe, no super admin rehearsal). */
export async function runChecks(
  { env: raw, log, signal, version }: CommandInput,
  opts: { write: boolean },
): Promise<CheckReport> {
  const started = performance.now();
  let configCheck: CheckResult;
  let steps: CheckResult[];
  try {
    const { config, warnings } = loadConfig(raw);
    for (const warning of warnings) log.warn(warning, { step: 'config' });
    configCheck = passed('config', `configuration valid for schema ${config.schema}`, started);
    const resources = new Resources();
    const ctx: StepContext = { config, log, signal, version, write: opts.write, resources };
    let inspection: DriftInspection | undefined;
    const drift = driftStep(migrationsStep, (found) => {
      inspection = found;
    });
    try {
      steps = (await runSteps(checkSteps(drift), ctx, 'inspect')).map((result) =>
        result.step === drift ? driftResult(result, inspection) : checkResult(result),
      );
    } finally {
      await resources.closeAll();
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    configCheck = failed('config', error, started, error.problems);
    steps = checkSteps(driftStep(migrationsStep, () => {})).map((step) => ({
      ...SKIPPED,
      name: step.name,
      message: 'skipped: config did not pass',
    }));
  }
  const checks = [configCheck, ...steps];
  const firstFailure = checks.find((c) => c.status === 'fail');
  return {
    version,
    ok: !firstFailure,
    exit_code: firstFailure?.exit_code ?? 0,
    skip_setup: raw.SKIP_SETUP ?? null,
    checks,
    secrets: secretSources(raw),
  };
}

const SKIPPED = { status: 'skip', fix: null, exit_code: null, duration_ms: 0 } as const;

/** A step's result as a line of the report; a failure that is a bug is thrown (exit 1, with its stack). */
function checkResult(result: StepResult): CheckResult {
  const { step, status, summary, durationMs } = result;
  if (status === 'skip') return { ...SKIPPED, name: step.name, message: summary };
  if (status === 'pass')
    return {
      name: step.name,
      status,
      message: summary,
      fix: null,
      exit_code: null,
      duration_ms: Math.round(durationMs),
      ...(result.facts && { facts: result.facts }),
    };
  if (!(result.error instanceof BootstrapError)) throw result.error;
  const { message, fix, exitCode } = result.error;
  return {
    name: step.name,
    status,
    message,
    fix: fix ?? null,
    exit_code: exitCode,
    duration_ms: Math.round(durationMs),
  };
}

/**
 * The drift line: pass when the schema matches, warn with the differences otherwise; a failure to
 * compare is a warning too (never a failure: drift does not change the exit code).
 */
function driftResult(result: StepResult, inspection: DriftInspection | undefined): CheckResult {
  const { step, status, summary, durationMs } = result;
  const base = { name: step.name, fix: null, exit_code: null, duration_ms: Math.round(durationMs) };
  if (status === 'skip') return { ...SKIPPED, name: step.name, message: summary };
  if (status === 'fail' || !inspection)
    return { ...base, status: 'warn', message: `could not compare the schema with its migrations: ${summary}` };
  if (inspection.kind === 'unknown')
    return {
      ...base,
      status: 'warn',
      message: summary,
      fix: 'this build lacks the reference of its own migrations: regenerate it (npm run catalog) and rebuild',
    };
  if (inspection.kind === 'none') return { ...base, status: 'pass', message: summary };
  const { items } = inspection;
  if (items.length === 0) return { ...base, status: 'pass', message: summary, drift: [] };
  return { ...base, status: 'warn', message: summary, fix: DRIFT_FIX, drift: items };
}

function passed(name: string, message: string, started: number): CheckResult {
  return {
    name,
    status: 'pass',
    message,
    fix: null,
    exit_code: null,
    duration_ms: Math.round(performance.now() - started),
  };
}

function failed(name: string, error: BootstrapError, started: number, problems: readonly string[] = []): CheckResult {
  const message = [error.message, ...problems].join('; ');
  return {
    name,
    status: 'fail',
    message,
    fix: error.fix ?? null,
    exit_code: error.exitCode,
    duration_ms: Math.round(performance.now() - started),
  };
}
