/** The options provision and deprovision share beyond --tenant and --opaque-names: --storage-mode, --storage-keys. */
import type { ParsedOptions } from '../cli-options.js';
import { ConfigError } from '../errors.js';

/** --storage-mode prefix (the default) or bucket; `fix` says what each means for this command. */
export function storageModeOption(o: ParsedOptions, fix: string): 'prefix' | 'bucket' {
  const mode = o.values.get('--storage-mode') ?? 'prefix';
  if (mode !== 'prefix' && mode !== 'bucket') throw new ConfigError('--storage-mode must be prefix or bucket', [], fix);
  return mode;
}

/** --storage-keys shared or per-tenant; undefined when not given (PROVISION_STORAGE_KEYS decides). */
export function storageKeysOption(o: ParsedOptions): 'shared' | 'per-tenant' | undefined {
  const keys = o.values.get('--storage-keys');
  if (keys === undefined || keys === 'shared' || keys === 'per-tenant') return keys;
  throw new ConfigError(
    '--storage-keys must be shared or per-tenant',
    [],
    "per-tenant: an identity per tenant, its key reaching only its storage (recommended); shared: the deployer's",
  );
}
