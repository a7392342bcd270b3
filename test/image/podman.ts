/**
 * Runs the built image with podman as users run it (docker run's flags are the same): the test
 * servers listen on 127.0.0.1, so containers use the host's network. `--runtime runc`: crun fails on
 * these machines (see test/image/build.sh).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Env, RunResult } from '../harness/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const VERSION = (JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { version: string }).version;
/** What test/image/build.sh builds, tagged with the one version of package.json. */
export const IMAGE = process.env.SUPERFASTTT_IMAGE ?? `superfasttt/bootstrap:${VERSION}`;

export interface ContainerOptions {
  env?: Env;
  /** host path, container path, and `ro` unless said otherwise. */
  mounts?: Array<{ host: string; container: string; writable?: boolean }>;
  /** The image's own user (65532) unless given. */
  user?: string;
  args?: string[];
  timeoutMs?: number;
}

export function podman(args: string[], timeoutMs = 120_000): Promise<RunResult> {
  const child = spawn('podman', ['--runtime', 'runc', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), (output += d)));
  child.stderr.setEncoding('utf8').on('data', (d: string) => ((stderr += d), (output += d)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output });
    });
  });
}

/** `docker run --rm --read-only --network host [-u USER] [-e ...] [-v ...] IMAGE [args]`. */
export function runImage(opts: ContainerOptions = {}): Promise<RunResult> {
  const flags = [
    'run',
    '--rm',
    '--read-only',
    '--network',
    'host',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
  ];
  if (opts.user) flags.push('--user', opts.user);
  for (const [key, value] of Object.entries(opts.env ?? {}))
    if (value !== undefined) flags.push('--env', `${key}=${value}`);
  for (const m of opts.mounts ?? []) flags.push('--volume', `${m.host}:${m.container}:${m.writable ? 'rw' : 'ro'}`);
  return podman([...flags, IMAGE, ...(opts.args ?? [])], opts.timeoutMs);
}
