/**
 * The instance's .env, written by the deployment machine: mode 0600, never over an existing one
 * without --force, and never where git would commit it (the seed forbids clear-text passwords in a
 * repository): inside a git work tree the path must be ignored.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/** Refuses an output directory whose .env files git would track. */
export function assertSafeOutDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const probe = join(resolve(dir), 'tenant.env');
  const inside = spawnSync('git', ['-C', resolve(dir), 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
  if (inside.status !== 0 || inside.stdout.trim() !== 'true') return; // not in a repository (or no git)
  const ignored = spawnSync('git', ['-C', resolve(dir), 'check-ignore', '-q', probe]);
  if (ignored.status !== 0) {
    throw new ConfigError(
      `--out-dir ${dir} is inside a git work tree and its .env files are not ignored: they hold clear-text passwords, which must never be committed`,
      [],
      `write them outside the repository, or add the directory to .gitignore (e.g. echo '${dir.replace(/\/$/, '')}/' >> .gitignore)`,
    );
  }
}

/** KEY=value lines, unquoted: `docker run --env-file` takes values literally, quotes included. */
export function renderEnv(values: Record<string, string | undefined>, header: string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (/[\r\n]/.test(value)) throw new ConfigError(`${key}: a value for a .env file cannot hold a line break`, [], 'correct that value in the tenants file');
    lines.push(`${key}=${value}`);
  }
  return lines.join('\n') + '\n';
}

/** Writes the file with mode 0600; returns false when it exists and may not be overwritten. */
export function writeEnvFile(path: string, content: string, overwrite: boolean): boolean {
  try {
    writeFileSync(path, content, { mode: 0o600, flag: overwrite ? 'w' : 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  chmodSync(path, 0o600); // an overwritten file keeps its old mode otherwise
  return true;
}
