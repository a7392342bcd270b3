/**
 * Turns the raw environment into the instance's configuration (targets.ts), or one ConfigError listing
 * every problem at once.
 * Secrets may come from NAME or from the file named by NAME_FILE (Docker / Kubernetes secrets).
 */
import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import { ConfigError } from '../errors.js';
import { registerSecret } from '../redact.js';
import type { FieldDoc } from './fields.js';
import { combinationProblems, instanceConfig, instanceSchema } from './instance.js';
import { envSchema, type VariableName } from './schema.js';
import type { InstanceConfig } from './targets.js';

export const VARIABLES = Object.keys(envSchema.entries) as VariableName[];

export function fieldDoc(name: VariableName): FieldDoc {
  return v.getMetadata(envSchema.entries[name]) as FieldDoc;
}

export const SECRET_VARIABLES = VARIABLES.filter((name) => fieldDoc(name).secret);

/** Prefixes of our variables: an unknown variable with one of them is most likely a typo. */
const OUR_PREFIXES = /^(SKIP_SETUP|DATABASE_|AUTO_SUPERADMIN_|STORAGE_|SMTP_|SENDGRID_|EMAIL_|LOG_FORMAT)/;

export type SecretSource = 'env' | 'file' | 'unset';

export interface LoadedConfig {
  config: InstanceConfig;
  /** Where each secret came from (never its value), for diagnostics. */
  secretSources: Record<string, SecretSource>;
  warnings: string[];
}

/**
 * The raw values of `names`, with each secret read from NAME or from the file named by NAME_FILE
 * (Docker / Kubernetes secrets), registered for redaction before anything can print it.
 */
export function readVariables(names: readonly string[], secrets: readonly string[], raw: NodeJS.ProcessEnv) {
  const problems: string[] = [];
  const input: Record<string, string | undefined> = {};
  for (const name of names) {
    // Compose turns `VAR: ${VAR}` with VAR unset into an empty string: empty means unset.
    input[name] = raw[name] === '' ? undefined : raw[name];
  }
  for (const name of secrets) {
    const fileVar = `${name}_FILE`;
    const path = raw[fileVar] || undefined;
    registerSecret(input[name]);
    if (path === undefined) continue;
    if (input[name] !== undefined) {
      problems.push(`${name}: both ${name} and ${fileVar} are set; set only one of them`);
      continue;
    }
    try {
      // The secrets convention: one final newline, \n or \r\n (editors and `echo` add it), is not part
      // of the value. Nothing else is removed: a second newline or a tab stays, and is refused by the
      // schema (secretValue in fields.ts) rather than hashed or sent.
      input[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
      registerSecret(input[name]);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push(`${fileVar}: cannot read the file ${path} (${code}); mount the secret there or fix the path`);
    }
  }
  return { input, problems };
}

/** Where each secret comes from (never its value): diagnostics show this, even for an invalid configuration. */
export function secretSources(raw: NodeJS.ProcessEnv): Record<string, SecretSource> {
  return Object.fromEntries(
    SECRET_VARIABLES.map((name) => [name, raw[name] ? 'env' : raw[`${name}_FILE`] ? 'file' : 'unset']),
  );
}

export function loadConfig(raw: NodeJS.ProcessEnv): LoadedConfig {
  const warnings: string[] = [];
  const { input, problems } = readVariables(VARIABLES, SECRET_VARIABLES, raw);
  registerUrlPassword(input.DATABASE_URL);

  const result = v.safeParse(instanceSchema, input);
  const sources = secretSources(raw);
  // A secret read from a file: the file is what to correct.
  problems.push(
    ...issueProblems(result.issues, (name) => (sources[name] === 'file' ? ` (value read from ${name}_FILE)` : '')),
  );
  warnings.push(...unusedVariables(input));
  if (result.success) problems.push(...combinationProblems(result.output));

  if (problems.length > 0 || !result.success) {
    throw new ConfigError(
      `invalid configuration: ${problems.length} problem${problems.length > 1 ? 's' : ''}`,
      problems,
      'correct the variables listed above (see --help, or docs/configuration.md, "Variables", for each one)',
    );
  }
  const env = result.output;

  const rawSchema = input.DATABASE_SCHEMA?.trim();
  if (rawSchema && rawSchema !== env.DATABASE_SCHEMA) {
    warnings.push(
      `DATABASE_SCHEMA "${rawSchema}" is used as "${env.DATABASE_SCHEMA}": PostgreSQL folds unquoted identifiers to ` +
        `lowercase. Write it in lowercase to silence this warning.`,
    );
  }
  for (const name of Object.keys(raw)) {
    if (OUR_PREFIXES.test(name) && !(VARIABLES as string[]).includes(name) && !isFileVariable(name)) {
      warnings.push(`${name} is not a variable this version knows; ignored (a typo?)`);
    }
  }
  return { config: instanceConfig(env), secretSources: sources, warnings };
}

/** Where a valibot issue is: the variable (or field) name, dotted for nested ones. */
export function issuePath(issue: v.BaseIssue<unknown>, fallback: string): string {
  return issue.path?.map((p) => String(p.key)).join('.') ?? fallback;
}

/** One line per valibot issue, "VARIABLE: message", the way every configuration error lists them. */
export function issueProblems(
  issues: readonly v.BaseIssue<unknown>[] | undefined,
  suffix: (name: string) => string = () => '',
): string[] {
  return (issues ?? []).map((issue) => {
    const name = issuePath(issue, 'environment');
    return `${name}: ${issue.message}${suffix(name)}`;
  });
}

function isFileVariable(name: string): boolean {
  return name.endsWith('_FILE') && (SECRET_VARIABLES as string[]).includes(name.slice(0, -5));
}

/** The password inside DATABASE_URL is a secret even when the URL itself fails validation. */
export function registerUrlPassword(url: string | undefined): void {
  if (!url) return;
  // Up to the first @ (what a URL that does not parse shows), and as URL parses it: up to the last @
  // before the host, a raw @ in the password included.
  const forms = [/^[^:]+:\/\/[^:/@]*:([^@]*)@/.exec(url)?.[1], URL.canParse(url) ? new URL(url).password : undefined];
  for (const form of forms) {
    if (!form) continue;
    registerSecret(form);
    try {
      registerSecret(decodeURIComponent(form));
    } catch {
      /* invalid encoding: the raw form is registered, validation reports it */
    }
  }
}

/**
 * A variable set for a configuration that is not chosen (SMTP_HOST with EMAIL_PROVIDER=sendgrid) is
 * ignored, with a warning: the operator probably meant something else. The variants of instance.ts
 * require what the chosen configuration needs; `requiredWhen` says which configuration uses what.
 */
function unusedVariables(input: Record<string, string | undefined>): string[] {
  const warnings: string[] = [];
  for (const name of VARIABLES) {
    const when = fieldDoc(name).requiredWhen;
    if (!when) continue;
    const [variable, value] = when;
    const applies = value === '*' ? input[variable] !== undefined : input[variable] === value;
    if (!applies && input[name] !== undefined && input[variable] !== undefined) {
      warnings.push(`${name} is set but not used (${variable}=${input[variable]})`);
    }
  }
  return warnings;
}
