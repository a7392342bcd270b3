// The `superfasttt-bootstrap` command (package.json's `bin`): the built entry is executable and
// starts the same program whichever way it is started, and an `--env-file` meant for `check` is
// always the program's (exit 2 when the file is missing), never Node's own option (exit 9), except
// with a bare `node SCRIPT`, which docs/deployment.md tells not to use for that reason.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertExit, BUNDLE, runCli, type RunResult } from './harness/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};
const dist = join(root, 'dist');
const MISSING = /FAIL --env-file: missing\.env does not exist\n\s+fix: give the path of the instance \.env file/;

/**
 * Runs a command as a shell would: PATH holds `dirs` first, then this Node's directory
 * (the one the entry's `exec node` finds).
 */
function run(command: string, args: string[], opts: { dirs?: string[]; cwd?: string } = {}): Promise<RunResult> {
  const PATH = [...(opts.dirs ?? []), dirname(process.execPath), '/usr/bin', '/bin'].join(delimiter);
  const child = spawn(command, args, {
    cwd: opts.cwd ?? root,
    env: { PATH, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on(
      'close',
      (code, signal) => (clearTimeout(timer), resolve({ code, signal, stdout, stderr, output: stdout + stderr })),
    );
  });
}

describe('the superfasttt-bootstrap command (bin)', () => {
  let tmp: string;
  let pathDir: string;
  let npmPrefix: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'sf-bin-'));
    // What `npm link` / `npm install -g` make: a symlink named after the command, in a PATH directory.
    pathDir = join(tmp, 'bin');
    mkdirSync(pathDir);
    symlinkSync(BUNDLE, join(pathDir, 'superfasttt-bootstrap'));
    npmPrefix = join(tmp, 'npm-global');
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('package.json names the built entry, which is executable and starts with its launcher lines', () => {
    assert.deepEqual(pkg.bin, { 'superfasttt-bootstrap': 'dist/superfasttt-bootstrap.mjs' });
    assert.equal(join(root, pkg.bin['superfasttt-bootstrap']!), BUNDLE);
    assert.equal(statSync(BUNDLE).mode & 0o777, 0o755);
    accessSync(BUNDLE, constants.X_OK);
    const [first, second] = readFileSync(BUNDLE, 'utf8').split('\n');
    assert.equal(first, '#!/bin/sh');
    assert.equal(second, '":" //; exec node -- "$0" "$@"');
  });

  it('the chunks, imported by the entry and never started, get no launcher lines', () => {
    const chunks = readdirSync(dist).filter((f) => f.endsWith('.mjs') && join(dist, f) !== BUNDLE);
    assert.ok(chunks.length > 3);
    for (const chunk of chunks)
      assert.ok(!readFileSync(join(dist, chunk), 'utf8').startsWith('#!'), `${chunk} starts with #!`);
  });

  const ways: Array<[string, (args: string[]) => Promise<RunResult>]> = [
    [
      'the executable itself (./dist/superfasttt-bootstrap.mjs)',
      (args) => run('./dist/superfasttt-bootstrap.mjs', args),
    ],
    [
      'a symlink named superfasttt-bootstrap on PATH (npm link)',
      (args) => run('superfasttt-bootstrap', args, { dirs: [pathDir] }),
    ],
    ['sh dist/superfasttt-bootstrap.mjs', (args) => run('sh', ['dist/superfasttt-bootstrap.mjs', ...args])],
    ['node -- dist/superfasttt-bootstrap.mjs (the image ENTRYPOINT)', (args) => runCli({}, { args })],
  ];
  for (const [how, start] of ways) {
    it(`${how}: --version, and check --env-file of a missing file is the program's exit 2`, async () => {
      const version = await start(['--version']);
      assertExit(version, 0);
      assert.equal(version.stdout, `${pkg.version}\n`);
      assertExit(await start(['check', '--env-file', 'missing.env']), 2, MISSING);
    });
  }

  it('npm install -g of the checkout (offline, in a temporary prefix) installs a working command', async () => {
    execFileSync(
      'npm',
      ['install', '--global', '--prefix', npmPrefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund', root],
      {
        env: { ...process.env, npm_config_update_notifier: 'false' },
        stdio: 'ignore',
        timeout: 60_000,
      },
    );
    const bin = join(npmPrefix, 'bin');
    const version = await run('superfasttt-bootstrap', ['--version'], { dirs: [bin] });
    assertExit(version, 0);
    assert.equal(version.stdout, `${pkg.version}\n`);
    assertExit(await run('superfasttt-bootstrap', ['check', '--env-file', 'missing.env'], { dirs: [bin] }), 2, MISSING);
  });

  it('an --env-file that exists is read by the program, not by Node', async () => {
    const envFile = join(tmp, 'client.env');
    writeFileSync(envFile, 'SKIP_SETUP=perhaps\n');
    const r = await run('superfasttt-bootstrap', ['check', '--env-file', envFile], { dirs: [pathDir] });
    assertExit(r, 2, /SKIP_SETUP: must be one of: true, false/);
  });

  it(
    'a bare `node dist/superfasttt-bootstrap.mjs` (no --) lets Node take --env-file: ' +
      'exit 9, as docs/deployment.md warns',
    async () => {
      // Node scans its whole command line up to `--` for --env-file, script arguments included, and
      // exits 9 before any of the program runs when the file is missing. Nothing in the bundle can
      // change that: the README and docs/ always write `node --`. If this starts failing, Node stopped
      // doing it: the warnings of docs/deployment.md ("The `superfasttt-bootstrap` command") and
      // docs/operations.md ("Diagnostics: `check`") can go.
      const r = await run('node', ['dist/superfasttt-bootstrap.mjs', 'check', '--env-file', 'missing.env']);
      assert.equal(r.code, 9, r.output);
      assert.match(r.stderr, /missing\.env: not found/);
      assert.doesNotMatch(r.output, /FAIL/);
    },
  );
});
