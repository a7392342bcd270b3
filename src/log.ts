/**
 * One line per event. Text for people (colours unless NO_COLOR or not a TTY), or with LOG_FORMAT=json
 * exactly one JSON object per line on stdout and stderr, for log pipelines. Every line is redacted.
 */
import { redact } from './redact.js';

export type Level = 'info' | 'warn' | 'error';

export interface LogFields {
  step?: string;
  durationMs?: number;
  /** Extra structured context (never secrets); printed in JSON, appended in text. */
  [key: string]: unknown;
}

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  format: 'text' | 'json';
  color: boolean;
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
}

const COLORS: Record<Level, string> = { info: '\x1b[32m', warn: '\x1b[33m', error: '\x1b[31m' };
const MARKS: Record<Level, string> = { info: 'ok', warn: 'warn', error: 'FAIL' };

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.stdout ?? ((line: string) => process.stdout.write(line + '\n'));
  const err = opts.stderr ?? ((line: string) => process.stderr.write(line + '\n'));

  const write = (level: Level, message: string, fields: LogFields = {}) => {
    const { step, durationMs, ...rest } = fields;
    let line: string;
    if (opts.format === 'json') {
      line = JSON.stringify({
        time: new Date().toISOString(),
        level,
        step: step ?? null,
        message,
        duration_ms: durationMs ?? null,
        ...rest,
      });
    } else {
      const mark = opts.color ? `${COLORS[level]}${MARKS[level]}\x1b[0m` : MARKS[level];
      const where = step ? `[${step}] ` : '';
      const took = durationMs === undefined ? '' : ` (${formatDuration(durationMs)})`;
      line = `${mark.padEnd(opts.color ? 13 : 4)} ${where}${visible(message)}${took}`;
      // A failure's details, indented under it: what to correct, then how.
      const problems = Array.isArray(rest.problems) ? (rest.problems as string[]) : [];
      for (const problem of problems) line += `\n       - ${visible(problem)}`;
      if (typeof rest.fix === 'string') line += `\n     fix: ${visible(rest.fix)}`;
      if (typeof rest.stack === 'string') line += `\n${rest.stack}`;
    }
    (level === 'info' ? out : err)(redact(line));
  };

  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

/**
 * Control characters shown as \xNN: messages quote names other roles chose (a table, a trigger, a
 * bucket key), and a newline or an escape sequence in one must not forge a log line nor drive the
 * operator's terminal. (JSON logs escape them by themselves.)
 */
export function visible(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A closed stdout or stderr (`... | head -1`, a log collector gone, a redirection to a full disk)
 * neither crashes the program nor changes its outcome: a write error on either (EPIPE, EBADF, ENOSPC,
 * ...) is ignored, what is written to it afterwards is lost, and the run goes on and ends with its own
 * exit code, as if its output had been read. main.ts calls this before anything is printed, so it
 * holds for every command and for everything printed (logs, reports, --help, --version).
 */
export function tolerateClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    // Without a listener, Node turns the stream's 'error' event into an uncaught exception (exit 1).
    if (!stream.listeners('error').includes(ignoreOutputError)) stream.on('error', ignoreOutputError);
  }
}

/** Nobody is reading any more: there is no one to tell, and nothing of the run depends on it. */
function ignoreOutputError(): void {}

/** Options from the raw environment: the logger must work before (and when) validation fails. */
export function loggerOptionsFromEnv(env: NodeJS.ProcessEnv): LoggerOptions {
  return {
    format: env.LOG_FORMAT === 'json' ? 'json' : 'text',
    color: !env.NO_COLOR && process.stdout.isTTY === true && env.TERM !== 'dumb',
  };
}
