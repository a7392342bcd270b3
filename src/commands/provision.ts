/**
 * `provision`: the deployment machine creates each tenant's PostgreSQL role and schema (least
 * privilege, idempotent, verified) and writes the instance's .env. Tenants run concurrently; one
 * tenant's failure does not stop the others; the report lists each result. The run itself is
 * src/provision/provision-run.ts; this command parses its options and prints the report.
 */
import { parseOptions } from '../cli-options.js';
import { ConfigError } from '../errors.js';
import { createProgress, type Progress } from '../fleet/progress.js';
import { createLogger, loggerOptionsFromEnv } from '../log.js';
import { type ProvisionOptions, runProvision } from '../provision/provision-run.js';
import type { TenantReport } from '../provision/provision-tenant.js';
import { redact } from '../redact.js';
import type { CommandInput } from './input.js';
import { storageKeysOption, storageModeOption } from './tenant-options.js';

export type { ProvisionOptions } from '../provision/provision-run.js';

export function provisionOptions(args: readonly string[]): ProvisionOptions {
  const o = parseOptions('provision', args, {
    flags: ['--force', '--rotate-password', '--opaque-names', '--rotate-storage-key', '--revoke-old-storage-keys'],
    values: ['--tenants', '--out-dir', '--format', '--concurrency', '--storage-mode', '--storage-keys'],
    repeatable: ['--tenant'],
  });
  const format = o.values.get('--format') ?? 'text';
  if (format !== 'text' && format !== 'json')
    throw new ConfigError('--format must be text or json', [], 'use --format json for pipelines');
  const concurrency = Number(o.values.get('--concurrency') ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new ConfigError('--concurrency must be a whole number from 1 to 64', [], 'the default is 4');
  const rotate = o.flags.has('--rotate-storage-key');
  const revoke = o.flags.has('--revoke-old-storage-keys');
  if (rotate && revoke)
    throw new ConfigError(
      '--rotate-storage-key and --revoke-old-storage-keys cannot be given together',
      [],
      'rotate, restart the instances (they read the new key from their .env), then revoke the old keys',
    );
  return {
    storageKeys: storageKeysOption(o),
    keyAction: rotate ? 'rotate' : revoke ? 'revoke' : 'ensure',
    storageMode: storageModeOption(
      o,
      'prefix: a folder per tenant in a shared bucket (the default); bucket: a bucket per tenant',
    ),
    opaqueNames: o.flags.has('--opaque-names'),
    tenants: o.lists.get('--tenant') ?? [],
    tenantsFile: o.values.get('--tenants'),
    outDir: o.values.get('--out-dir'),
    json: format === 'json',
    force: o.flags.has('--force'),
    rotatePassword: o.flags.has('--rotate-password'),
    concurrency,
  };
}

export async function provision(input: CommandInput, opts: ProvisionOptions): Promise<number> {
  // At a terminal, a progress line under the tenants' log lines; never with --format json.
  let progress: Progress | undefined;
  const print = (line: string) => (progress ? progress.print(line) : process.stderr.write(`${line}\n`));
  const log = createLogger({ ...loggerOptionsFromEnv(input.env), stdout: print, stderr: print });
  let finished = 0;
  let failures = 0;
  let reports: TenantReport[];
  try {
    reports = await runProvision({ ...input, log }, opts, {
      start(total) {
        progress = createProgress({
          label: 'provision',
          total,
          stream: process.stderr,
          enabled: !opts.json && process.stdout.isTTY === true,
        });
      },
      tenant(report) {
        if (report.status === 'failed') failures++;
        progress?.update(++finished, failures);
      },
    });
  } finally {
    progress?.done();
  }
  const failed = reports.filter((r) => r.status === 'failed');
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ok: failed.length === 0, tenants: reports }, null, 2) + '\n');
  } else {
    const counts = ['created', 'unchanged', 'rotated', 'failed'].map(
      (s) => `${reports.filter((r) => r.status === s).length} ${s}`,
    );
    process.stdout.write(redact(`provision: ${reports.length} tenant(s): ${counts.join(', ')}`) + '\n');
  }
  return failed[0]?.exit_code ?? 0;
}
