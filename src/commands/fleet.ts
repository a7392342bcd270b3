/**
 * `fleet check` and `fleet bootstrap`: the instances of `--envs DIR` (the .env files provision
 * wrote), chosen and staged by `--tenants FILE` when given, this pod's share of them with `--shard`,
 * each checked (read-only) or bootstrapped with its own .env; one row per instance and a summary,
 * as a table, JSON or CSV on stdout; a progress line on a terminal. The run itself is
 * src/fleet/fleet-run.ts; this command parses its options and prints.
 * Exit code: 0, or 9 when an instance failed (check: or drifted; bootstrap: or was not started
 * because of failures), or the signal's (130, 143) once the report so far is printed.
 */
import { join } from 'node:path';
import { parseOptions } from '../cli-options.js';
import { ConfigError, FLEET_FAILED_EXIT_CODE, InterruptedError } from '../errors.js';
import { type FleetRow, renderFleetCsv, renderFleetJson, renderFleetTable, summarize } from '../fleet/fleet-report.js';
import { type FleetCommand, runFleet } from '../fleet/fleet-run.js';
import { bootstrapInstance, checkInstance } from '../fleet/instance-runs.js';
import { loadInstances } from '../fleet/instances.js';
import { createProgress } from '../fleet/progress.js';
import { parseShard, selectShard, shardFromEnv } from '../fleet/shard.js';
import { type MaxFailures, parseMaxFailures, planStages } from '../fleet/stages.js';
import type { CommandInput } from './input.js';

/** A bootstrap holds two connections (its session and the lock's): 8 at a time stay within 16 of the server's. */
export const DEFAULT_FLEET_CONCURRENCY = 8;

export interface FleetOptions {
  command: FleetCommand;
  envs: string | undefined;
  tenants: string | undefined;
  concurrency: number;
  format: 'table' | 'json' | 'csv';
  canary: number | undefined;
  maxFailures: MaxFailures;
  shard: string | undefined;
  logDir: string | undefined;
  write: boolean;
}

export function fleetOptions(args: readonly string[]): FleetOptions {
  const [command, ...rest] = args;
  if (command !== 'check' && command !== 'bootstrap')
    throw new ConfigError(
      `fleet needs a command: check or bootstrap${command ? `, not ${JSON.stringify(command.slice(0, 40))}` : ''}`,
      [],
      'fleet check --envs DIR (read-only), or fleet bootstrap --envs DIR [--canary N] [--max-failures N|P%]',
    );
  const o = parseOptions(`fleet ${command}`, rest, {
    flags: command === 'check' ? ['--no-write'] : [],
    values: [
      '--envs',
      '--tenants',
      '--concurrency',
      '--format',
      '--shard',
      '--log-dir',
      ...(command === 'bootstrap' ? ['--canary', '--max-failures'] : []),
    ],
  });
  const format = o.values.get('--format') ?? 'table';
  if (format !== 'table' && format !== 'json' && format !== 'csv')
    throw new ConfigError('--format must be table, json or csv', [], 'json and csv are for pipelines');
  const whole = (name: string, min: number, max: number, fallback?: number) => {
    const text = o.values.get(name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max)
      throw new ConfigError(`${name} must be a whole number from ${min} to ${max}`, [], `got ${text.slice(0, 20)}`);
    return n;
  };
  return {
    command,
    envs: o.values.get('--envs'),
    tenants: o.values.get('--tenants'),
    concurrency: whole('--concurrency', 1, 256, DEFAULT_FLEET_CONCURRENCY) as number,
    format,
    canary: whole('--canary', 1, 1_000_000),
    maxFailures: parseMaxFailures(o.values.get('--max-failures')),
    shard: o.values.get('--shard'),
    logDir: o.values.get('--log-dir'),
    write: !o.flags.has('--no-write'),
  };
}

export async function fleet(input: CommandInput, opts: FleetOptions): Promise<number> {
  const shard = opts.shard !== undefined ? parseShard(opts.shard) : shardFromEnv(input.env);
  const instances = selectShard(loadInstances(opts.envs, opts.tenants), shard);
  const stages = planStages(instances, opts.canary);
  const started = new Date();
  const logDir =
    opts.logDir ?? join('superfasttt-fleet-logs', `${opts.command}-${started.toISOString().replace(/[:.]/g, '-')}`);
  const progress = createProgress({
    label: `fleet ${opts.command}`,
    total: instances.length,
    stream: process.stderr,
    enabled: opts.format === 'table' && process.stdout.isTTY === true,
  });
  const { rows, stoppedBy } = await runFleet(
    input,
    stages,
    {
      command: opts.command,
      concurrency: opts.concurrency,
      maxFailures: opts.command === 'bootstrap' ? opts.maxFailures : undefined,
      logDir,
      write: opts.write,
      onProgress: (done, failed) => progress.update(done, failed),
    },
    opts.command === 'check' ? checkInstance : bootstrapInstance,
  );
  progress.done();
  const summary = summarize(rows, Date.now() - started.getTime());
  const failed = rows.some((row) => failing(opts.command, row));
  const meta = {
    command: `fleet ${opts.command}`,
    ok: !failed,
    version: input.version,
    started_at: started.toISOString(),
    shard: shard ? `${shard.index}/${shard.count}` : null,
    stages: stages.map((s) => ({ name: s.name, instances: s.instances.length })),
    stopped_by: stoppedBy ?? null,
    log_dir: logDir,
  };
  const stopped = stoppedBy ? `stopped: ${stoppedBy}\n` : '';
  const out =
    opts.format === 'json'
      ? renderFleetJson(rows, summary, meta)
      : opts.format === 'csv'
        ? renderFleetCsv(rows)
        : `${renderFleetTable(rows, summary)}\n${stopped}per-instance logs: ${logDir}\n`;
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
  if (input.signal.aborted) throw new InterruptedError(input.signal.reason as NodeJS.Signals);
  return failed ? FLEET_FAILED_EXIT_CODE : 0;
}

function failing(command: FleetCommand, row: FleetRow): boolean {
  if (row.status === 'failed' || row.status === 'interrupted') return true;
  if (command === 'check') return row.status === 'drifted';
  return row.status === 'not-started';
}
