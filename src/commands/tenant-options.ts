/** The option provision and deprovision share beyond --tenant and --opaque-names: --storage-mode. */
import type { ParsedOptions } from '../cli-options.js';
import { ConfigError } from '../errors.js';

/** --storage-mode prefix (the default) or bucket; `fix` says what each means for this command. */
export function storageModeOption(o: ParsedOptions, fix: string): 'prefix' | 'bucket' {
  const mode = o.values.get('--storage-mode') ?? 'prefix';
  if (mode !== 'prefix' && mode !== 'bucket') throw new ConfigError('--storage-mode must be prefix or bucket', [], fix);
  return mode;
}
