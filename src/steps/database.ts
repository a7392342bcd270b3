/**
 * Connect to PostgreSQL (with retries) and report what we are talking to,
 * warning when it is outside the supported versions.
 */
import { type Connection, connect } from '../db/connect.js';
import { POSTGRES_MAX_SUPPORTED, POSTGRES_MIN_SUPPORTED, unsupportedServerWarning } from '../db/server-version.js';
import { DatabaseError } from '../errors.js';
import { defineStep, done, type StepContext } from './step.js';

export const databaseStep = defineStep({
  name: 'database',
  errorClass: DatabaseError,
  needs: {},
  inspect: (ctx) => open(ctx, true),
  apply: (ctx) => open(ctx, false),
});

/** check's session is read-only: whatever a step would write by mistake, the server refuses. */
async function open(ctx: StepContext, readOnly: boolean) {
  const target = ctx.config.database;
  const db: Connection = await connect(target, ctx.log, ctx.signal, { readOnly });
  // Closing the sockets is what stops a statement blocked on the server (a signal): with
  // client_connection_check_interval its backend notices within a second, cancels it and rolls back.
  ctx.resources.add({ close: () => db.sql.end({ timeout: 5 }), destroy: () => void db.sql.end({ timeout: 0 }) });
  const { host, port, user, database } = target.url;
  const unsupported = unsupportedServerWarning(db.serverVersion);
  if (unsupported) ctx.log.warn(unsupported, { step: 'database' });
  // Also in the result line, so that check's table and JSON report show it.
  const support = unsupported
    ? `, not a supported version (${POSTGRES_MIN_SUPPORTED} to ${POSTGRES_MAX_SUPPORTED})`
    : '';
  const session = readOnly ? ', read-only session' : '';
  return done(
    `connected to ${host}:${port}/${database} as ${user} (PostgreSQL ${db.serverVersion}${support}, TLS ` +
      `${db.tls ? 'on' : 'off'}${session})`,
    db,
  );
}
