/**
 * `mkdir -p`, one level at a time. Node's recursive mkdirSync spins forever, blocking the event loop
 * and every signal, where a parent exists but a child cannot be made in it and the error is ENOENT
 * (/proc, some FUSE mounts): an operator's typo must fail, not hang.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Creates `dir` and its missing parents with `mode`; an existing directory is fine. Throws the fs error. */
export function makeDirectory(dir: string, mode = 0o700): void {
  const missing: string[] = [];
  for (let at = resolve(dir); !existsSync(at); at = dirname(at)) missing.unshift(at);
  for (const level of missing) mkdirSync(level, { mode });
}
