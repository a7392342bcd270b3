import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { registerSecret } from '../redact.js';
import {
  FLEET_CSV_COLUMNS,
  type FleetRow,
  renderFleetCsv,
  renderFleetJson,
  renderFleetTable,
  summarize,
} from './fleet-report.js';

const SECRET = 'fleet-report-s3cret-pw';
registerSecret(SECRET);

const row = (over: Partial<FleetRow> & { name: string }): FleetRow => ({
  status: 'ok',
  exit_code: 0,
  applied: 12,
  pending: 0,
  setup_completed: true,
  admin_present: true,
  drift: 0,
  stage: null,
  duration_ms: 1200,
  message: 'all checks passed',
  ...over,
});

const rows: FleetRow[] = [
  row({ name: 'acme' }),
  row({ name: 'beta', status: 'pending', pending: 2, setup_completed: false, duration_ms: 800, message: '2 pending' }),
  row({
    name: 'gamma',
    status: 'failed',
    exit_code: 3,
    applied: null,
    pending: null,
    setup_completed: null,
    admin_present: null,
    drift: null,
    duration_ms: 5000,
    message: `connection refused: postgres://app:${SECRET}@db:5432/x\u001b[31m`,
  }),
  row({ name: 'delta', status: 'drifted', exit_code: 5, drift: 3, duration_ms: 300, message: '3 differences' }),
];

describe('summarize', () => {
  it('counts per status and exit code, the 5 slowest first, the given wall time', () => {
    const many = [...rows, ...[1, 2, 3].map((i) => row({ name: `z${i}`, duration_ms: 100 * i }))];
    assert.deepEqual(summarize(many, 65_000), {
      total: 7,
      by_status: { ok: 4, pending: 1, drifted: 1, failed: 1 },
      by_exit_code: { '0': 5, '3': 1, '5': 1 },
      slowest: [
        { name: 'gamma', duration_ms: 5000 },
        { name: 'acme', duration_ms: 1200 },
        { name: 'beta', duration_ms: 800 },
        { name: 'delta', duration_ms: 300 },
        { name: 'z3', duration_ms: 300 },
      ],
      duration_ms: 65_000,
    });
  });

  it('of no rows', () => {
    assert.deepEqual(summarize([], 5), { total: 0, by_status: {}, by_exit_code: {}, slowest: [], duration_ms: 5 });
  });
});

describe('renderFleetTable', () => {
  it('a header, one aligned line per instance, then the summary', () => {
    const text = renderFleetTable(rows, summarize(rows, 65_000));
    assert.deepEqual(text.split('\n'), [
      'NAME   STATUS   EXIT  MIGRATIONS  SETUP  ADMIN  DRIFT    TIME  MESSAGE',
      'acme   ok          0  12/0        yes    yes        0  1.20 s  all checks passed',
      'beta   pending     0  12/2        no     yes        0  800 ms  2 pending',
      'gamma  failed      3  -           -      -          -  5.00 s  ' +
        'connection refused: postgres://app:***@db:5432/x\\x1b[31m',
      'delta  drifted     5  12/0        yes    yes        3  300 ms  3 differences',
      '',
      'Instances: 4 (ok 1, pending 1, drifted 1, failed 1)',
      'Exit codes: exit 0: 2, exit 3: 1, exit 5: 1',
      'Slowest: gamma (5.00 s), acme (1.20 s), beta (800 ms), delta (300 ms)',
      'Wall time: 1 min 05 s',
    ]);
    assert.ok(!text.includes(SECRET));
    assert.ok(!text.includes('\u001b'));
  });

  it('shows the stage when there is one, cuts long messages, makes names visible', () => {
    const staged = [
      row({ name: 'a\nb', stage: 'canary', status: 'bootstrapped', message: 'x'.repeat(300) }),
      row({ name: 'c', status: 'not-started', message: 'the canary stage failed', duration_ms: 0 }),
    ];
    const lines = renderFleetTable(staged, summarize(staged, 999)).split('\n');
    assert.equal(lines[0], 'NAME    STAGE   STATUS        EXIT  MIGRATIONS  SETUP  ADMIN  DRIFT    TIME  MESSAGE');
    assert.equal(
      lines[1],
      `a\\x0ab  canary  bootstrapped     0  12/0        yes    yes        0  1.20 s  ${'x'.repeat(97)}...`,
    );
    assert.equal(
      lines[2],
      'c       -       not-started      0  12/0        yes    yes        0    0 ms  the canary stage failed',
    );
    assert.equal(lines.at(-1), 'Wall time: 999 ms');
    assert.equal(lines.at(-4), 'Instances: 2 (bootstrapped 1, not-started 1)');
  });
});

describe('renderFleetCsv', () => {
  const hostile: FleetRow[] = [
    row({ name: 'plain' }),
    row({ name: 'a,b', stage: 'canary', message: 'said "no", then\r\nleft' }),
    row({ name: '=cmd()', status: 'failed', exit_code: 4, message: '+SUM(A1)' }),
    row({ name: '@x', applied: null, pending: null, setup_completed: false, drift: null, message: '-1\n"' }),
    row({ name: '\ttab', message: `password ${SECRET} leaked` }),
  ];

  it('RFC 4180 with CRLF, parsed back to the rows (formulas defused, secrets masked)', () => {
    const text = renderFleetCsv(hostile);
    assert.ok(text.startsWith(`${FLEET_CSV_COLUMNS.join(',')}\r\n`));
    assert.ok(text.endsWith('\r\n'));
    assert.ok(!text.includes(SECRET));
    const parsed: string[][] = parse(text);
    assert.deepEqual(parsed[0], [
      'name',
      'status',
      'exit_code',
      'applied',
      'pending',
      'setup_completed',
      'admin_present',
      'drift',
      'stage',
      'duration_ms',
      'message',
    ]);
    assert.deepEqual(parsed.slice(1), [
      ['plain', 'ok', '0', '12', '0', 'true', 'true', '0', '', '1200', 'all checks passed'],
      ['a,b', 'ok', '0', '12', '0', 'true', 'true', '0', 'canary', '1200', 'said "no", then\r\nleft'],
      ["'=cmd()", 'failed', '4', '12', '0', 'true', 'true', '0', '', '1200', "'+SUM(A1)"],
      ["'@x", 'ok', '0', '', '', 'false', 'true', '', '', '1200', `'-1\n"`],
      ["'\ttab", 'ok', '0', '12', '0', 'true', 'true', '0', '', '1200', 'password *** leaked'],
    ]);
  });

  it('quotes only what needs it', () => {
    const text = renderFleetCsv([row({ name: 'a,b', message: 'he said "hi"' })]);
    assert.equal(text.split('\r\n')[1], '"a,b",ok,0,12,0,true,true,0,,1200,"he said ""hi"""');
  });

  it('of no rows: the header alone', () => {
    assert.equal(renderFleetCsv([]), `${FLEET_CSV_COLUMNS.join(',')}\r\n`);
  });
});

describe('renderFleetJson', () => {
  it('one document: meta, ok, summary and the rows, messages redacted', () => {
    const summary = summarize(rows, 4000);
    const text = renderFleetJson(rows, summary, { command: 'fleet check', version: '1.2.3' });
    assert.ok(!text.includes(SECRET));
    assert.match(text, /^\{\n {2}"command": "fleet check",\n {2}"version": "1\.2\.3",\n {2}"ok": false,/);
    const document = JSON.parse(text);
    assert.deepEqual(Object.keys(document), ['command', 'version', 'ok', 'summary', 'instances']);
    assert.deepEqual(document.summary, summary);
    assert.deepEqual(document.instances, [
      rows[0],
      rows[1],
      { ...rows[2], message: 'connection refused: postgres://app:***@db:5432/x\u001b[31m' },
      rows[3],
    ]);
  });

  it('ok without failed or interrupted instances', () => {
    const ok = [row({ name: 'a' }), row({ name: 'b', status: 'not-started' })];
    assert.equal(JSON.parse(renderFleetJson(ok, summarize(ok, 1), {})).ok, true);
    const interrupted = [row({ name: 'a', status: 'interrupted', exit_code: 130 })];
    assert.equal(JSON.parse(renderFleetJson(interrupted, summarize(interrupted, 1), {})).ok, false);
  });
});
