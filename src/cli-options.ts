/**
 * The options of a command: `--flag`, `--name VALUE` or `--name=VALUE`, some repeatable.
 * Anything else is a configuration error (exit 2) naming the argument.
 */
import { ConfigError } from './errors.js';

export interface OptionSpec {
  flags?: readonly string[];
  values?: readonly string[];
  repeatable?: readonly string[];
}

export interface ParsedOptions {
  flags: Set<string>;
  values: Map<string, string>;
  lists: Map<string, string[]>;
}

export function parseOptions(command: string, args: readonly string[], spec: OptionSpec): ParsedOptions {
  const out: ParsedOptions = { flags: new Set(), values: new Map(), lists: new Map() };
  const usage = 'run with --help to see the commands and their options';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    if (spec.flags?.includes(name) && inline === undefined) {
      out.flags.add(name);
      continue;
    }
    const takesValue = spec.values?.includes(name) || spec.repeatable?.includes(name);
    if (!takesValue) throw new ConfigError(`unexpected argument for ${command}: ${arg}`, [], usage);
    const value = inline ?? args[++i];
    if (value === undefined || value === '') throw new ConfigError(`${name} needs a value`, [], usage);
    if (spec.repeatable?.includes(name)) out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
    else out.values.set(name, value);
  }
  return out;
}
