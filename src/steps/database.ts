/** Step 1: connect to PostgreSQL (with retries) and report what we are talking to, warning when it is outside the supported versions. */
import { DatabaseError } from '../errors.js';
import { connect } from '../db/connect.js';
import { POSTGRES_MAX_SUPPORTED, POSTGRES_MIN_SUPPORTED, unsupportedServerWarning } from '../db/server-version.js';
import type { Step } from './step.js';

export const databaseStep: Step = {
  name: 'database',
  errorClass: DatabaseError,
  async run(ctx) {
    ctx.db = await connect(ctx.env, ctx.log, ctx.signal, {
      readOnly: ctx.mode === 'check',
      bounds: {
        lockTimeoutSec: ctx.env.DATABASE_LOCK_TIMEOUT,
        statementTimeoutSec: ctx.env.DATABASE_STATEMENT_TIMEOUT,
      },
    });
    const { host, port, user, database } = ctx.env.DATABASE_URL;
    const session = ctx.mode === 'check' ? ', read-only session' : '';
    const unsupported = unsupportedServerWarning(ctx.db.serverVersion);
    if (unsupported) ctx.log.warn(unsupported, { step: 'database' });
    // Also in the result line, so that check's table and JSON report show it.
    const support = unsupported
      ? `, not a supported version (${POSTGRES_MIN_SUPPORTED} to ${POSTGRES_MAX_SUPPORTED})`
      : '';
    return `connected to ${host}:${port}/${database} as ${user} (PostgreSQL ${ctx.db.serverVersion}${support}, TLS ${ctx.db.tls ? 'on' : 'off'}${session})`;
  },
};
