/**
 * A one-line progress display for long fleet runs at a terminal:
 *
 *     fleet check  120/1000  3 failed  41.2/s  ~21 s left
 *
 * redrawn in place (`\r` + text + erase to the end of the line), at most 10 times a second, and erased by done()
 * so that the report that follows starts on a clean line. Off a terminal (stdout piped, a log collector,
 * `--format json`) or when disabled, it writes nothing at all, ever: a document is never mixed with it.
 *
 * The rate is measured since the start (finished instances / elapsed time): steadier than a window of the last
 * seconds when instances finish in bursts (a shard of slow tenants, then quick ones), and the time left is the
 * instances left at that rate. Neither is shown before the first instance finishes.
 */
import { visible } from '../log.js';

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** `done` instances finished so far (failed ones included), `failed` of them failed. */
  update(done: number, failed: number): void;
  /** Erases the line (when one was drawn); nothing is drawn afterwards. */
  done(): void;
  /** Writes a line of its own (a log line) above the progress line, which is then drawn again. */
  print(line: string): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream: ProgressStream;
  enabled: boolean;
  /** Milliseconds, for the rate and the throttling; Date.now by default. */
  now?: () => number;
}

/** At most 10 redraws a second. */
export const REDRAW_INTERVAL_MS = 100;

const ERASE_TO_END = '\x1b[K';

/** `21 s`, `1 min 05 s`, `2 h 03 min`: whole seconds, rounded up (a countdown never shows 0 s too early). */
export function formatTimeLeft(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The text of the line (without the control sequences), cut to `columns` when given. */
export function progressText(
  label: string,
  total: number,
  done: number,
  failed: number,
  elapsedMs: number,
  columns?: number,
): string {
  const parts = [visible(label), `${done}/${total}`, `${failed} failed`];
  if (done > 0 && elapsedMs > 0) {
    const rate = done / (elapsedMs / 1000);
    parts.push(`${rate.toFixed(1)}/s`);
    if (done < total) parts.push(`~${formatTimeLeft((total - done) / rate)} left`);
  }
  const text = parts.join('  ');
  // One column short of the width: a character in the last column leaves some terminals about to wrap, and the
  // next `\r` would then return to the start of a new line instead of this one.
  if (columns !== undefined && columns > 1 && text.length > columns - 1) return text.slice(0, columns - 1);
  return text;
}

export function createProgress(opts: ProgressOptions): Progress {
  const { label, total, stream, enabled } = opts;
  if (!enabled || stream.isTTY !== true) return { update() {}, done() {}, print: (line) => stream.write(`${line}\n`) };
  const now = opts.now ?? Date.now;
  const start = now();
  let lastDraw: number | undefined;
  let last = '';
  let drawn = false;
  let finished = false;
  return {
    print(line) {
      stream.write(drawn && !finished ? `\r${ERASE_TO_END}${line}\n${last}${ERASE_TO_END}` : `${line}\n`);
    },
    update(done, failed) {
      if (finished) return;
      const at = now();
      // The final state is always drawn, even within the interval of the previous redraw.
      const final = done >= total;
      if (!final && lastDraw !== undefined && at - lastDraw < REDRAW_INTERVAL_MS) return;
      lastDraw = at;
      drawn = true;
      last = `\r${progressText(label, total, done, failed, at - start, stream.columns)}`;
      stream.write(`${last}${ERASE_TO_END}`);
    },
    done() {
      if (finished) return;
      finished = true;
      if (drawn) stream.write(`\r${ERASE_TO_END}`);
    },
  };
}
