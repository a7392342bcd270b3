/**
 * The deadline of one email operation (an SMTP verification or send, a SendGrid request): the
 * libraries' own timeouts are idle timeouts, which a server sending one byte a second never trips.
 */

/** One operation in all: 2 × EMAIL_TIMEOUT. */
export function emailDeadlineMs(timeoutSec: number): number {
  return 2 * timeoutSec * 1000;
}

/** The reason an operation is abandoned when its deadline passes. */
export class EmailDeadline extends Error {
  override name = 'EmailDeadline';
  readonly code = 'EDEADLINE';
  constructor(readonly ms: number) {
    super(`the operation did not complete within ${ms / 1000} s`);
  }
}

/** Aborted by the run's signal, or when the deadline passes (its reason then an EmailDeadline). */
export function withDeadline(signal: AbortSignal, ms: number): AbortSignal {
  const timer = new AbortController();
  setTimeout(() => timer.abort(new EmailDeadline(ms)), ms).unref();
  return AbortSignal.any([signal, timer.signal]);
}
