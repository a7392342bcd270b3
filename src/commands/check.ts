/**
 * The `check` command: the bootstrap's own steps in read-only mode, for the operator at the
 * terminal. Every check runs (one that needs a failed one is reported as skipped, with why), the
 * database session is read-only, nothing is written except the storage probe (--no-write skips
 * it), and the result is a table, or one JSON document on stdout with --json.
 * Exit code: the report's (src/report/check-report.ts).
 */
import { existsSync } from 'node:fs';
import { libpqEnvironmentWarning, neutraliseLibpqEnvironment } from '../db/libpq-env.js';
import { parseOptions } from '../cli-options.js';
import { ConfigError } from '../errors.js';
import { redact } from '../redact.js';
import { runChecks } from '../report/check-report.js';
import { renderTable } from '../report/check-table.js';
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
