import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckReport } from './check-report.js';
import { renderTable } from './check-table.js';

const report = (over: Partial<CheckReport> = {}): CheckReport => ({
  version: '1.2.3',
  ok: false,
  exit_code: 6,
  skip_setup: 'true',
  checks: [
    { name: 'config', status: 'pass', message: 'configuration valid', fix: null, exit_code: null, duration_ms: 3 },
    {
      name: 'storage',
      status: 'fail',
      message: 'bucket missing\u001b[31m',
      fix: 'create it',
      exit_code: 6,
      duration_ms: 1500,
    },
    {
      name: 'superadmin',
      status: 'skip',
      message: 'skipped: storage did not pass',
      fix: null,
      exit_code: null,
      duration_ms: 0,
    },
  ],
  secrets: { DATABASE_URL: 'env', AUTO_SUPERADMIN_PASSWORD: 'file', STORAGE_SECRET_KEY: 'unset' },
  ...over,
});

describe('renderTable', () => {
  it('one line per check with its mark, name, time and result; the fix under a failure', () => {
    const lines = renderTable(report()).split('\n');
    assert.equal(lines[0], 'superfasttt-bootstrap 1.2.3 check (SKIP_SETUP=true: the bootstrap sets the instance up)');
    assert.match(lines[2] ?? '', /^STATUS CHECK\s+TIME {2}RESULT$/);
    assert.match(lines[3] ?? '', /^ok {5}config\s+3 ms {2}configuration valid$/);
    assert.match(lines[4] ?? '', /^FAIL {3}storage\s+1\.50 s {2}bucket missing/);
    assert.match(lines[5] ?? '', /^\s+fix: create it$/);
    // A skipped check shows no time.
    assert.match(lines[6] ?? '', /^skip {3}superadmin {11}skipped: storage did not pass$/);
  });

  it('escapes control characters of messages (a server cannot forge lines or colours)', () => {
    const text = renderTable(report());
    assert.ok(!text.includes('\u001b'), 'no escape character in the table');
    assert.match(text, /bucket missing\\x1b\[31m/);
  });

  it('names where each secret came from, never its value', () => {
    const secrets =
      'Secrets: DATABASE_URL (env), AUTO_SUPERADMIN_PASSWORD (AUTO_SUPERADMIN_PASSWORD_FILE), ' +
      'STORAGE_SECRET_KEY (unset)';
    assert.ok(renderTable(report()).includes(secrets));
  });

  it('ends with the result and the exit code', () => {
    assert.match(renderTable(report()), /Result: 1 check\(s\) failed \(exit 6\)$/);
    const passed = report({ ok: true, exit_code: 0, checks: report().checks.slice(0, 1), skip_setup: null });
    assert.match(renderTable(passed), /Result: all checks passed \(exit 0\)$/);
    assert.match(renderTable(passed), /SKIP_SETUP=unset: the bootstrap changes nothing, the setup wizard stays/);
  });

  it('a warning (drift) is marked WARN with its fix, and named in the result; the exit code stays', () => {
    const drift = {
      name: 'drift',
      status: 'warn',
      message: 'schema differs from migrations 0001_initial in 1 place(s): extra column users.nickname',
      fix: 'restore it',
      exit_code: null,
      duration_ms: 12,
    } as const;
    const warned = report({ ok: true, exit_code: 0, checks: [report().checks[0]!, drift], skip_setup: null });
    const lines = renderTable(warned).split('\n');
    assert.match(lines[4] ?? '', /^WARN {3}drift\s+12 ms {2}schema differs from migrations 0001_initial/);
    assert.match(lines[5] ?? '', /^\s+fix: restore it$/);
    assert.match(renderTable(warned), /Result: all checks passed \(exit 0\); 1 warning\(s\): drift$/);
  });
});
