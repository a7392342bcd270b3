/**
 * The options of a command: `--flag`, `--name VALUE` or `--name=VALUE`, some repeatable.
 * Anything else is a configuration error (exit 2) naming the argument.
 *
 * node:util's parseArgs splits the arguments into tokens; the rules are checked here on those
 * tokens rather than left to its strict mode, so that each refusal is a ConfigError naming the
 * argument as it was typed (strict mode's errors are plain Errors worded for developers).
 */
import { parseArgs } from 'node:util';
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

const USAGE = 'run with --help to see the commands and their options';

export function parseOptions(command: string, args: readonly string[], spec: OptionSpec): ParsedOptions {
  const flags = spec.flags ?? [];
  const values = spec.values ?? [];
  const repeatable = spec.repeatable ?? [];
  const options = Object.fromEntries([
    ...flags.map((name) => [name.slice(2), { type: 'boolean' as const }]),
    ...values.map((name) => [name.slice(2), { type: 'string' as const }]),
    ...repeatable.map((name) => [name.slice(2), { type: 'string' as const, multiple: true }]),
  ]);
  // Not strict: a value is whatever follows its option, even if it starts with a dash (as `--name=-x`).
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });

  const out: ParsedOptions = { flags: new Set(), values: new Map(), lists: new Map() };
  // Named as typed: `-ab` is one argument, though two tokens.
  const unexpected = (index: number) =>
    new ConfigError(`unexpected argument for ${command}: ${args[index]}`, [], USAGE);
  for (const token of tokens) {
    if (token.kind !== 'option' || !token.rawName.startsWith('--')) throw unexpected(token.index);
    const name = token.rawName;
    if (flags.includes(name) && !token.inlineValue) {
      out.flags.add(name);
    } else if (values.includes(name) || repeatable.includes(name)) {
      if (token.value === undefined || token.value === '') throw new ConfigError(`${name} needs a value`, [], USAGE);
      if (repeatable.includes(name)) out.lists.set(name, [...(out.lists.get(name) ?? []), token.value]);
      else out.values.set(name, token.value);
    } else {
      throw unexpected(token.index);
    }
  }
  return out;
}
