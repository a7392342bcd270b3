/**
 * The rows of a --tenants file: CSV with a header line (name,email,first_name,last_name,phone,...)
 * as spreadsheets export it, or JSON lines (one object per line). Blank lines and lines starting
 * with # are skipped. CSV: fields quoted with "..." may hold the separator, quotes ("") and line
 * breaks; a UTF-8 byte order mark and CRLF line endings are accepted; the separator is , or ; (what
 * spreadsheets in French and other locales export), whichever the header line holds more of.
 * Malformed input is a ConfigError naming the line: nothing is guessed.
 */
import { readFileSync } from 'node:fs';
import { CsvError, parse } from 'csv-parse/sync';
import { ConfigError } from '../errors.js';

export type TenantRow = Record<string, unknown>;

const CSV_FIX = 'first line: name,email,first_name,last_name,phone (or ; between fields)';

export function readTenantsFile(file: string): TenantRow[] {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `--tenants: cannot read ${file} (${(error as NodeJS.ErrnoException).code})`,
      [],
      'give the path of a CSV or JSON-lines file',
    );
  }
  content = content.replace(/^\uFEFF/, '');
  const lines = content.split(/\r?\n/);
  const first = lines.find(isContent) ?? '';
  if (first.trimStart().startsWith('{')) return jsonLines(lines, file);
  return csvRows(content, separatorOf(first), file);
}

/** Neither blank nor a comment. */
function isContent(line: string): boolean {
  return line.trim() !== '' && !line.startsWith('#');
}

function separatorOf(header: string): ',' | ';' {
  const unquoted = header.replace(/"[^"]*"/g, '');
  const count = (c: string) => unquoted.split(c).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

function jsonLines(lines: string[], file: string): TenantRow[] {
  const rows: TenantRow[] = [];
  for (const [i, line] of lines.entries()) {
    if (!isContent(line)) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new ConfigError(`--tenants: line ${i + 1} of ${file} is not valid JSON`, [], 'one JSON object per line');
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new ConfigError(`--tenants: line ${i + 1} of ${file} is not a JSON object`, [], 'one JSON object per line');
    rows.push(row as TenantRow);
  }
  return rows;
}

function csvRows(content: string, delimiter: ',' | ';', file: string): TenantRow[] {
  let records: string[][];
  /** The line each record ends on (the last one: an unterminated quote opened after it). */
  const lineOf: number[] = [];
  try {
    records = parse(content, {
      delimiter,
      comment: '#',
      comment_no_infix: true,
      trim: true,
      skip_empty_lines: true,
      // A " inside an unquoted field is kept as it is (Bob "the" Builder), as it always was.
      relax_quotes: true,
      // Ragged rows are refused below, with the line and the counts.
      relax_column_count: true,
      on_record: (cells, context) => {
        lineOf.push(context.lines);
        return cells;
      },
    });
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    throw csvError(error, content, lineOf.at(-1) ?? 0, delimiter, file);
  }
  const [header, ...data] = records;
  if (!header?.includes('name'))
    throw new ConfigError(`--tenants: ${file} has no header line with a name column`, [], CSV_FIX);
  return data.map((cells, i) => {
    if (cells.length !== header.length) {
      throw new ConfigError(
        `--tenants: line ${lineOf[i + 1]} of ${file} has ${cells.length} field(s), its header line ${header.length}`,
        [],
        `quote a value that holds the separator ${delimiter} ("Martin${delimiter} Jr."); give every line as many ` +
          `fields as the header (empty ones included)`,
      );
    }
    return Object.fromEntries(
      header.map((key, i) => [key, cells[i] || undefined]).filter(([, value]) => value !== undefined),
    );
  });
}

function csvError(error: CsvError, content: string, lastLine: number, delimiter: string, file: string): ConfigError {
  const at = (error as CsvError & { lines?: number }).lines;
  if (error.code === 'CSV_QUOTE_NOT_CLOSED') {
    // The record that never ends starts at the first line of content after the last complete one.
    const lines = content.split(/\r?\n/);
    const start = lines.findIndex((line, i) => i >= lastLine && isContent(line)) + 1 || at;
    return new ConfigError(
      `--tenants: line ${start} of ${file} opens a quoted field that is never closed`,
      [],
      'close the quote ("..."), or double a quote inside a quoted field ("")',
    );
  }
  if (error.code === 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE' || error.code === 'CSV_INVALID_CLOSING_QUOTE') {
    return new ConfigError(
      `--tenants: line ${at} of ${file} has characters after the closing quote of a field`,
      [],
      `quote the whole field, up to the separator ${delimiter}, and double the quotes inside it ("")`,
    );
  }
  return new ConfigError(`--tenants: line ${at} of ${file} is not valid CSV (${error.message})`, [], CSV_FIX);
}
