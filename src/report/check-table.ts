/** check's report as the table the operator reads at the terminal. */
import { formatDuration, visible } from '../log.js';
import type { CheckReport } from './check-report.js';

const MARK = { pass: 'ok', fail: 'FAIL', skip: 'skip', warn: 'WARN' } as const;

export function renderTable(report: CheckReport): string {
  const skip =
    report.skip_setup === 'true'
      ? 'true: the bootstrap sets the instance up'
      : `${report.skip_setup ?? 'unset'}: the bootstrap changes nothing, the setup wizard stays`;
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [`superfasttt-bootstrap ${report.version} check (SKIP_SETUP=${skip})`, ''];
  lines.push(`${'STATUS'.padEnd(6)} ${'CHECK'.padEnd(width)} ${'TIME'.padStart(8)}  RESULT`);
  for (const c of report.checks) {
    const time = c.status === 'skip' ? '' : formatDuration(c.duration_ms);
    lines.push(`${MARK[c.status].padEnd(6)} ${c.name.padEnd(width)} ${time.padStart(8)}  ${visible(c.message)}`);
    if (c.fix) lines.push(`${' '.repeat(width + 18)}fix: ${visible(c.fix)}`);
  }
  const secrets = Object.entries(report.secrets).map(
    ([name, from]) => `${name} (${from === 'file' ? `${name}_FILE` : from})`,
  );
  lines.push('', `Secrets: ${secrets.join(', ')}`);
  const failures = report.checks.filter((c) => c.status === 'fail').length;
  const warnings = report.checks.filter((c) => c.status === 'warn').map((c) => c.name);
  const warned = warnings.length > 0 ? `; ${warnings.length} warning(s): ${warnings.join(', ')}` : '';
  lines.push(
    (report.ok
      ? 'Result: all checks passed (exit 0)'
      : `Result: ${failures} check(s) failed (exit ${report.exit_code})`) + warned,
  );
  return lines.join('\n');
}
