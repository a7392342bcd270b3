/**
 * The instances of a fleet run: the .env files provision wrote (`--envs DIR`, one `<name>.env` per
 * instance), optionally chosen, ordered and staged by a tenants file (`--tenants FILE`: its `name`
 * column, and a `stage` column when it has one). Each instance runs with its own .env, exactly as
 * its init container does: the deployer's credentials cannot read a tenant's tables (provision gives
 * each tenant role its own, and nothing to the deployer), so they cannot check or bootstrap it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError } from '../errors.js';
import { readTenantsFile } from '../provision/tenants-file.js';

export interface Instance {
  name: string;
  /** The .env file it was read from. */
  file: string;
  /** Its environment: the .env's variables and nothing else. */
  env: Record<string, string>;
  /** The tenants file's `stage` value, if any. */
  stage?: string;
}

/** Larger than any .env provision writes by far: a bigger file is not one. */
const MAX_ENV_BYTES = 256 * 1024;
const ENV_NAME = /^(.+)\.env$/;

export function loadInstances(envDir: string | undefined, tenantsFile: string | undefined): Instance[] {
  if (envDir === undefined)
    throw new ConfigError(
      'fleet needs --envs DIR: the directory of the instances .env files (provision --out-dir)',
      [],
      tenantsFile
        ? '--tenants chooses and stages the instances; their credentials are in their .env files'
        : 'give the directory provision wrote the .env files into',
    );
  let names: string[];
  try {
    names = readdirSync(envDir);
  } catch (error) {
    throw new ConfigError(
      `--envs: ${envDir} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      [],
      'give the directory provision wrote the .env files into',
    );
  }
  const available = new Map<string, string>();
  for (const entry of names.sort()) {
    const name = ENV_NAME.exec(entry)?.[1];
    if (name) available.set(name, join(envDir, entry));
  }
  const chosen: Array<{ name: string; stage?: string }> = tenantsFile
    ? readTenantsFile(tenantsFile).map((row) => ({
        name: String(row.name ?? ''),
        ...(typeof row.stage === 'string' && { stage: row.stage }),
      }))
    : [...available.keys()].map((name) => ({ name }));
  if (chosen.length === 0)
    throw new ConfigError(
      tenantsFile ? `--tenants: ${tenantsFile} lists no tenant` : `--envs: ${envDir} holds no .env file`,
      [],
      'give the directory provision wrote the .env files into',
    );
  const missing = chosen.filter((c) => !available.has(c.name)).map((c) => c.name);
  if (missing.length > 0)
    throw new ConfigError(
      `--envs: ${envDir} has no .env for ${missing.length} tenant(s) of ${tenantsFile}: ` +
        `${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
      [],
      'provision them (provision --tenants FILE --out-dir DIR), or remove them from the file',
    );
  const seen = new Set<string>();
  return chosen.map(({ name, stage }) => {
    if (seen.has(name)) throw new ConfigError(`--tenants: ${name} is listed twice`, [], 'list each tenant once');
    seen.add(name);
    const file = available.get(name) as string;
    return { name, file, env: readEnv(file), ...(stage !== undefined && { stage }) };
  });
}

/**
 * A regular file of reasonable size, parsed as `docker run --env-file` and process.loadEnvFile read it.
 * Followed through symbolic links: a Kubernetes Secret volume lays its keys out as links (NAME.env ->
 * ..data/NAME.env), and the directory is the operator's own.
 */
function readEnv(file: string): Record<string, string> {
  const stat = statSync(file);
  if (!stat.isFile() || stat.size > MAX_ENV_BYTES)
    throw new ConfigError(
      `--envs: ${file} is not a regular file of at most ${MAX_ENV_BYTES / 1024} KiB`,
      [],
      'the .env files of provision are regular files; remove or replace this one',
    );
  return parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
}
