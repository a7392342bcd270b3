/**
 * The `check` command: the bootstrap's own steps in read-only mode, for the operator at the
 * terminal. Every check runs (one that needs a failed one is reported as skipped, with why), the
 * database session is read-only, nothing is written except the storage probe (--no-write skips
 * it), and the result is a table, or one JSON document on stdout with --json.
 * Exit code: 0 when every check passes (pending migrations or a missing admin are not failures:
 * they are what the bootstrap is for), otherwise the code of the first failing check.
 */
import { existsSync } from 'node:fs';
import { libpqEnvironmentWarning, neutraliseLibpqEnvironment } from '../db/libpq-env.js';
import { parseOptions } from '../cli-options.js';
import { BootstrapError, ConfigError } from '../errors.js';
import { loadConfig, secretSources } from '../config/load.js';
import { formatDuration, visible } from '../log.js';
import { redact } from '../redact.js';
import { BOOTSTRAP_STEPS } from '../steps/pipeline.js';
import { Resources, runSteps, type StepContext, type StepResult } from '../steps/step.js';
import type { CommandInput } from './input.js';

export function checkOptions(args: readonly string[]): CheckOptions {
  const o = parseOptions('check', args, { flags: ['--json', '--no-write'], values: ['--env-file'] });
  return { envFile: o.values.get('--env-file'), json: o.flags.has('--json'), write: !o.flags.has('--no-write') };
}

export interface CheckOptions {
  envFile?: string;
  json: boolean;
  write: boolean;
}

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

export async function check(input: CommandInput, opts: CheckOptions): Promise<number> {
  if (opts.envFile !== undefined) {
    if (!existsSync(opts.envFile))
      throw new ConfigError(
        `--env-file: ${opts.envFile} does not exist`,
        [],
        'give the path of the instance .env file',
      );
    // Variables already in the environment win, as with `docker run --env-file` plus -e.
    process.loadEnvFile(opts.envFile);
    // The file may hold PG* variables (an app's .env often does): removed again, as at start.
    const warning = libpqEnvironmentWarning(neutraliseLibpqEnvironment(process.env));
    if (warning) input.log.warn(`${opts.envFile}: ${warning}`, { step: 'config' });
  }
  const report = await runChecks(input, opts);
  const out = opts.json ? JSON.stringify(report, null, 2) : renderTable(report);
  process.stdout.write(redact(out) + '\n');
  return report.exit_code;
}

async function runChecks({ env: raw, log, signal, version }: CommandInput, opts: CheckOptions): Promise<CheckReport> {
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

const MARK = { pass: 'ok', fail: 'FAIL', skip: 'skip' } as const;

function renderTable(report: CheckReport): string {
  const skip =
    report.skip_setup === 'true'
      ? 'true: the bootstrap sets the instance up'
      : `${report.skip_setup ?? 'unset'}: the bootstrap changes nothing, the setup wizard stays`;
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [`superfasttt-bootstrap ${report.version} check (SKIP_SETUP=${skip})`, ''];
  lines.push(`${'STATUS'.padEnd(6)} ${'CHECK'.padEnd(width)} ${'TIME'.padStart(8)}  RESULT`);
  for (const c of report.checks) {
    const time = c.status === 'skip' ? '' : formatDuration(c.duration_ms);
    lines.push(`${MARK[c.status].padEnd(6)} ${c.name.padEnd(width)} ${time.padStart(8)}  ${visible(c.message)}`);
    if (c.fix) lines.push(`${' '.repeat(width + 18)}fix: ${visible(c.fix)}`);
  }
  const secrets = Object.entries(report.secrets).map(
    ([name, from]) => `${name} (${from === 'file' ? `${name}_FILE` : from})`,
  );
  lines.push('', `Secrets: ${secrets.join(', ')}`);
  const failures = report.checks.filter((c) => c.status === 'fail').length;
  lines.push(
    report.ok ? 'Result: all checks passed (exit 0)' : `Result: ${failures} check(s) failed (exit ${report.exit_code})`,
  );
  return lines.join('\n');
}
