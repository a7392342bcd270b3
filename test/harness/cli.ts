/**
 * Runs the built executable (dist/) as a child process, as the container does, and captures
 * everything it prints, so tests assert on exit codes and messages and scan for secrets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const BUNDLE = fileURLToPath(new URL('../../dist/superfasttt-bootstrap.mjs', import.meta.url));

export type Env = Record<string, string | undefined>;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for secret scans and message searches. */
  output: string;
}

export interface RunOptions {
  args?: string[];
  /** Node binary; the machine's by default. */
  node?: string;
  /** Node's own options, before the script (the image's ENTRYPOINT has some). */
  nodeArgs?: string[];
  cwd?: string;
  bundle?: string;
  timeoutMs?: number;
  /** Run as this user and group (the image's USER), which needs root. */
  uid?: number;
  gid?: number;
}

/** A clean environment: only what the test gives, so the developer's shell cannot leak in. */
function childEnv(env: Env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { PATH: process.env.PATH, NO_COLOR: '1' };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

export function spawnCli(env: Env, opts: RunOptions = {}): { child: ChildProcess; result: Promise<RunResult> } {
  // `--` as in the image's ENTRYPOINT: Node would otherwise read an `--env-file` meant for `check` itself.
  const child = spawn(
    opts.node ?? process.execPath,
    [...(opts.nodeArgs ?? []), '--', opts.bundle ?? BUNDLE, ...(opts.args ?? [])],
    {
      env: childEnv(env),
      cwd: opts.cwd,
      ...(opts.uid !== undefined && { uid: opts.uid, gid: opts.gid ?? opts.uid }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => ((stdout += d), (output += d)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => ((stderr += d), (output += d)));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const result = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output });
    });
  });
  return { child, result };
}

export function runCli(env: Env, opts: RunOptions = {}): Promise<RunResult> {
  return spawnCli(env, opts).result;
}

/** Exit code as expected, with the output in the failure message to make failures readable. */
export function assertExit(result: RunResult, code: number, ...patterns: RegExp[]): void {
  assert.equal(
    result.code,
    code,
    `expected exit ${code}, got ${result.code} (signal ${result.signal}); output:\n${result.output}`,
  );
  for (const pattern of patterns) assert.match(result.output, pattern);
  // An operational failure never prints a stack trace (only exit 1, a bug, does).
  if (code !== 1)
    assert.doesNotMatch(result.output, /\n\s+at .+\(.+:\d+:\d+\)/, `stack trace in output:\n${result.output}`);
}

/** No secret, in any encoding a library might use, appears in what the process printed. */
export function assertNoSecrets(result: RunResult | string, secrets: Array<string | undefined>): void {
  const text = typeof result === 'string' ? result : result.output;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')])) {
      assert.ok(!text.includes(form), `a secret (${secret.length} characters) appears in the output:\n${text}`);
    }
  }
}
