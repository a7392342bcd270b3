/**
 * `deprovision --tenant NAME --yes`: drops the tenant's schema (with everything in it) and its
 * role, and with --purge-storage its storage, only once every check passed. Without --yes it only
 * prints what it would do. Tenants are independent: one refused does not stop the others. The run
 * itself is src/provision/deprovision-run.ts; this command parses its options and prints.
 */
import { parseOptions } from '../cli-options.js';
import { ConfigError } from '../errors.js';
import {
  type DeprovisionOptions,
  deprovisionPlan,
  prepareDeprovision,
  runDeprovision,
} from '../provision/deprovision-run.js';
import type { CommandInput } from './input.js';
import { storageKeysOption, storageModeOption } from './tenant-options.js';

export type { DeprovisionOptions } from '../provision/deprovision-run.js';

export function deprovisionOptions(args: readonly string[]): DeprovisionOptions {
  const o = parseOptions('deprovision', args, {
    flags: ['--yes', '--purge-storage', '--opaque-names'],
    values: ['--storage-mode', '--storage-keys'],
    repeatable: ['--tenant'],
  });
  const tenants = o.lists.get('--tenant') ?? [];
  if (tenants.length === 0)
    throw new ConfigError('deprovision needs --tenant NAME', [], 'name the tenant(s) to remove');
  return {
    tenants,
    yes: o.flags.has('--yes'),
    purgeStorage: o.flags.has('--purge-storage'),
    storageMode: storageModeOption(o, 'the mode the tenants were provisioned with'),
    opaqueNames: o.flags.has('--opaque-names'),
    storageKeys: storageKeysOption(o),
  };
}

export async function deprovision(input: CommandInput, opts: DeprovisionOptions): Promise<number> {
  const run = prepareDeprovision(input, opts);
  if (!opts.yes) {
    const lines = deprovisionPlan(run).map((line) => `  ${line}`);
    process.stdout.write(
      `deprovision (dry run: add --yes to do it) would run on database ${run.config.database.url.database}, for each ` +
        `tenant that exists and is not connected:\n${lines.join('\n')}\n`,
    );
    return 0;
  }
  const { removed, notFound, failures } = await runDeprovision(input, run);
  process.stdout.write(
    `deprovision: ${run.specs.length} tenant(s): ` +
      `${removed} removed, ${notFound} not found, ${failures.length} failed\n`,
  );
  return failures[0]?.exitCode ?? 0;
}
