/**
 * check's report: the bootstrap's steps inspected (read-only), each one a line: pass, fail (with
 * its fix and exit code) or skip (with the check it needed). The command prints it as a table
 * (check-table.ts) or as JSON.
 * Exit code: 0 when every check passes (pending migrations or a missing admin are not failures:
 * they are what the bootstrap is for), otherwise the code of the first failing check.
 */
import type { CommandInput } from '../commands/input.js';
import { loadConfig, secretSources } from '../config/load.js';
import { BootstrapError, ConfigError } from '../errors.js';
import { BOOTSTRAP_STEPS } from '../steps/pipeline.js';
import { Resources, runSteps, type StepContext, type StepResult } from '../steps/step.js';

export interface CheckResult {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  message: string;
  fix: string | null;
  exit_code: number | null;
  duration_ms: number;
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
    try {
      steps = (await runSteps(BOOTSTRAP_STEPS, ctx, 'inspect')).map(checkResult);
    } finally {
      await resources.closeAll();
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    configCheck = failed('config', error, started, error.problems);
    steps = BOOTSTRAP_STEPS.map((step) => ({ ...SKIPPED, name: step.name, message: 'skipped: config did not pass' }));
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
