/**
 * The report of `fleet check` / `fleet bootstrap`: one row per instance, a summary, and three renderings: the
 * table the operator reads at the terminal, CSV for a spreadsheet, JSON for a program.
 *
 * Every text of a row (name, stage, message) goes through redact() in every rendering: a message can quote a
 * driver error holding a connection URL, and this is the last line of defence.
 */
import { formatDuration, visible } from '../log.js';
import { redact } from '../redact.js';
import { formatTimeLeft } from './progress.js';

export type FleetStatus =
  | 'ok'
  | 'pending'
  | 'drifted'
  | 'failed'
  | 'complete'
  | 'bootstrapped'
  | 'not-started'
  | 'interrupted';
// check: ok (checks pass, nothing to do), pending (checks pass but the bootstrap has work: migrations pending, setup
// not completed, admin missing), drifted (schema differs from its migrations), failed.
// bootstrap: complete (nothing was left to do), bootstrapped (it did work), failed, not-started (a stage or
// --max-failures stopped before it), interrupted (SIGINT).

/** The statuses in the order of the summary. */
export const FLEET_STATUSES: readonly FleetStatus[] = [
  'ok',
  'pending',
  'drifted',
  'complete',
  'bootstrapped',
  'failed',
  'interrupted',
  'not-started',
];

export interface FleetRow {
  name: string;
  status: FleetStatus;
  exit_code: number;
  applied: number | null;
  pending: number | null;
  setup_completed: boolean | null;
  admin_present: boolean | null;
  /** Number of differences, null when not checked. */
  drift: number | null;
  /** 'canary', 'rest', or the tenants file's stage value. */
  stage: string | null;
  duration_ms: number;
  /** The first failure's message, or a one-line summary. */
  message: string;
}

export interface FleetSummary {
  total: number;
  by_status: Partial<Record<FleetStatus, number>>;
  by_exit_code: Record<string, number>;
  /** The 5 slowest, slowest first. */
  slowest: Array<{ name: string; duration_ms: number }>;
  /** The run's wall time (given). */
  duration_ms: number;
}

/** The CSV columns: the FleetRow fields, in their order. */
export const FLEET_CSV_COLUMNS = [
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
] as const satisfies ReadonlyArray<keyof FleetRow>;

const SLOWEST = 5;

/** Messages longer than this are cut in the table (CSV and JSON keep them whole). */
export const TABLE_MESSAGE_WIDTH = 100;

export function summarize(rows: FleetRow[], durationMs: number): FleetSummary {
  const by_status: Partial<Record<FleetStatus, number>> = {};
  for (const status of FLEET_STATUSES) {
    const n = rows.filter((r) => r.status === status).length;
    if (n > 0) by_status[status] = n;
  }
  const by_exit_code: Record<string, number> = {};
  for (const code of [...new Set(rows.map((r) => r.exit_code))].sort((a, b) => a - b)) {
    by_exit_code[String(code)] = rows.filter((r) => r.exit_code === code).length;
  }
  const slowest = [...rows]
    .sort((a, b) => b.duration_ms - a.duration_ms || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .slice(0, SLOWEST)
    .map((r) => ({ name: r.name, duration_ms: r.duration_ms }));
  return { total: rows.length, by_status, by_exit_code, slowest, duration_ms: durationMs };
}

/** Whether the run succeeded: no instance failed or was interrupted. */
export function fleetOk(rows: readonly FleetRow[]): boolean {
  return rows.every((r) => r.status !== 'failed' && r.status !== 'interrupted');
}

/** Redacted, control characters made visible: safe to print on one line. */
const shown = (text: string) => visible(redact(text));

const yesNo = (value: boolean | null) => (value === null ? '-' : value ? 'yes' : 'no');

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 3)}...`;
}

/** 850 ms, 12.30 s, then 1 min 05 s past a minute. */
export function formatWallTime(ms: number): string {
  return ms < 60_000 ? formatDuration(ms) : formatTimeLeft(Math.round(ms / 1000));
}

export function renderFleetTable(rows: FleetRow[], summary: FleetSummary): string {
  const withStage = rows.some((r) => r.stage !== null);
  const columns: Array<{ title: string; right?: boolean; cell: (r: FleetRow) => string }> = [
    { title: 'NAME', cell: (r) => shown(r.name) },
    ...(withStage ? [{ title: 'STAGE', cell: (r: FleetRow) => shown(r.stage ?? '-') }] : []),
    { title: 'STATUS', cell: (r) => r.status },
    { title: 'EXIT', right: true, cell: (r) => String(r.exit_code) },
    {
      title: 'MIGRATIONS',
      cell: (r) => (r.applied === null && r.pending === null ? '-' : `${r.applied ?? '-'}/${r.pending ?? '-'}`),
    },
    { title: 'SETUP', cell: (r) => yesNo(r.setup_completed) },
    { title: 'ADMIN', cell: (r) => yesNo(r.admin_present) },
    { title: 'DRIFT', right: true, cell: (r) => (r.drift === null ? '-' : String(r.drift)) },
    { title: 'TIME', right: true, cell: (r) => formatDuration(r.duration_ms) },
  ];
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((line) => line[i]?.length ?? 0)));
  const line = (texts: string[], message: string) =>
    texts.map((t, i) => (columns[i]?.right ? t.padStart(widths[i] ?? 0) : t.padEnd(widths[i] ?? 0))).join('  ') +
    `  ${message}`;
  const titles = columns.map((c) => c.title);
  const lines = [line(titles, 'MESSAGE')];
  rows.forEach((r, i) => {
    lines.push(line(cells[i] ?? [], cut(shown(r.message), TABLE_MESSAGE_WIDTH)).trimEnd());
  });
  lines.push('', ...summaryLines(summary));
  return lines.join('\n');
}

function summaryLines(summary: FleetSummary): string[] {
  const statuses = FLEET_STATUSES.filter((s) => summary.by_status[s]).map((s) => `${s} ${summary.by_status[s]}`);
  const codes = Object.entries(summary.by_exit_code).map(([code, n]) => `exit ${code}: ${n}`);
  const slowest = summary.slowest.map((s) => `${shown(s.name)} (${formatDuration(s.duration_ms)})`);
  const lines = [`Instances: ${summary.total}${statuses.length > 0 ? ` (${statuses.join(', ')})` : ''}`];
  if (codes.length > 0) lines.push(`Exit codes: ${codes.join(', ')}`);
  if (slowest.length > 0) lines.push(`Slowest: ${slowest.join(', ')}`);
  lines.push(`Wall time: ${formatWallTime(summary.duration_ms)}`);
  return lines;
}

/** A text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe. */
function defuse(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  if (typeof value !== 'string') return String(value);
  const text = defuse(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** RFC 4180: a header row of the FleetRow fields, then one record per instance, every line ended by CRLF. */
export function renderFleetCsv(rows: FleetRow[]): string {
  const records = [FLEET_CSV_COLUMNS.join(',')];
  for (const r of rows) {
    const row = redactRow(r);
    records.push(FLEET_CSV_COLUMNS.map((column) => csvField(row[column])).join(','));
  }
  return records.map((record) => `${record}\r\n`).join('');
}

function redactRow(row: FleetRow): FleetRow {
  return {
    ...row,
    name: redact(row.name),
    stage: row.stage === null ? null : redact(row.stage),
    message: redact(row.message),
  };
}

/** `{ ...meta, ok, summary, instances }`, 2-space indented, without a final newline. */
export function renderFleetJson(rows: FleetRow[], summary: FleetSummary, meta: Record<string, unknown>): string {
  const document = {
    ...meta,
    // The command may say more (fleet check: a drifted instance is not ok either).
    ok: typeof meta.ok === 'boolean' ? meta.ok : fleetOk(rows),
    summary: { ...summary, slowest: summary.slowest.map((s) => ({ ...s, name: redact(s.name) })) },
    instances: rows.map(redactRow),
  };
  return JSON.stringify(document, null, 2);
}
