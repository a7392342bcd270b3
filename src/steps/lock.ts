/**
 * Serialise bootstraps of the same schema (replicas starting together).
 *
 * Protocol: an EXCLUSIVE lock on the table superfasttt_lock in the tenant's own schema, taken in a
 * transaction of a second session that stays open until the run ends (PostgreSQL releases it when
 * that session ends, including when the process is killed). A lock on an object of the schema, not
 * an advisory key: advisory keys are one space shared by every role of the database, so any tenant
 * could take another tenant's key and keep its init container failing; LOCK TABLE needs rights on
 * the table itself, which only the tenant's role has. Per schema, so thousands of tenants never wait for each other.
 * The wait is bounded by lock_timeout (DATABASE_LOCK_TIMEOUT); on timeout the holder is named.
 * Another run that finished meanwhile leaves nothing to do: every later step is idempotent.
 * Runs after the schema step: nothing (not even this table) is created in a schema that is not ours.
 */
import migrations from 'virtual:migrations';
import { SchemaError } from '../errors.js';
import { errorCode, type Sql } from '../db/connect.js';
import { sleep } from '../sleep.js';
import { isLockTimeout, lockHolders, lockTimeoutError } from '../db/locks.js';
import { assertSchemaIsOurs, ourObjects } from './schema-owner.js';
import { completeAlready } from './completion.js';
import { type TenantSession, schemaStep } from './schema.js';
import { defineStep, done, type StepContext, throwIfAborted } from './step.js';
import { BOOTSTRAP_LOCK_TABLE } from '../db/tables.js';

export const lockStep = defineStep({
  name: 'lock',
  errorClass: SchemaError,
  needs: { db: schemaStep },
  async inspect(ctx, { db }) {
    await assertPrimary(ctx, db);
    // As the bootstrap: a complete instance is confirmed without waiting for a running bootstrap.
    const complete = await completeAlready(ctx, db);
    if (complete) return done(`${complete}: a bootstrap would confirm it without the lock`, db);
    return done(await waitLikeBootstrap(ctx, db), db);
  },
  async apply(ctx, { db }) {
    await assertPrimary(ctx, db);
    // A complete instance (any restart of any replica) is confirmed read-only: no lock, no queue.
    // The later steps then find nothing to write.
    const complete = await completeAlready(ctx, db);
    if (complete) return done(`${complete}: nothing to do, confirmed without the lock`, db);
    await createLockTable(db.sql, db.schema);
    const started = Date.now();
    const outcome = await takeLock(ctx, db);
    const after = outcome === 'took' ? '' : ` after waiting ${Date.now() - started} ms`;
    if (typeof outcome === 'object')
      return done(`${outcome.confirmed}: another bootstrap finished it${after}, confirmed without the lock`, db);
    // Checked again under the lock: a role with CREATE on the schema could have added something
    // between the schema step and now, and migrations and the super admin come next.
    await assertSchemaIsOurs(db.sql, db.schema, ourObjects(migrations));
    return done(`acquired the bootstrap lock of schema ${db.schema}${after}`, db);
  },
});

/** A standby (in recovery) refuses every write: the bootstrap fails here, and so does check. */
async function assertPrimary(ctx: StepContext, db: TenantSession): Promise<void> {
  const [recovery] = await db.sql<{ standby: boolean }[]>`select pg_is_in_recovery() as standby`;
  if (!recovery?.standby) return;
  const { url, vars } = ctx.config.database;
  throw new SchemaError(
    `PostgreSQL at ${url.host}:${url.port} is a standby (in recovery): ` +
      `it refuses every write, so the bootstrap cannot run there`,
    `point ${vars.url} at the primary (read-write) server, or at a pooler or service that routes to it`,
  );
}

/**
 * check: what the bootstrap's wait would end in, without taking the lock (taking it, or queueing
 * for it, could make a starting replica wait for us). A holder is watched for as long as the
 * bootstrap would wait (DATABASE_LOCK_TIMEOUT): gone by then, the check passes; still there, it
 * fails as the bootstrap would (exit 4, naming the holder).
 */
async function waitLikeBootstrap(ctx: StepContext, db: TenantSession): Promise<string> {
  const { schema, sql } = db;
  const { lockTimeoutSec, vars } = ctx.config.database;
  const holders = () => lockHolders(sql, schema, { relation: BOOTSTRAP_LOCK_TABLE, conflicting: true });
  const [holder] = await holders();
  if (!holder) return `no bootstrap of schema ${schema} is running`;
  const started = Date.now();
  const deadline = started + lockTimeoutSec * 1000;
  ctx.log.info(
    `another bootstrap of schema ${schema} is running (${holder}); watching it for up to ${lockTimeoutSec} s, as ` +
      `long as the bootstrap would wait`,
    { step: 'lock' },
  );
  while (Date.now() < deadline) {
    await sleep(Math.min(250, deadline - Date.now()), ctx.signal);
    throwIfAborted(ctx.signal);
    if ((await holders()).length === 0)
      return (
        `a bootstrap of schema ${schema} was running (${holder}); it ` +
        `ended after ${Date.now() - started} ms, within ${vars.lockTimeout}`
      );
  }
  throw await lockTimeoutError(sql, [schema], OTHER_BOOTSTRAP, vars.lockTimeout, lockTimeoutSec, undefined);
}

const OTHER_BOOTSTRAP = 'the lock step (another bootstrap of this schema)';

/** Idempotent; two replicas creating it at the same instant collide on the catalog (23505): retried. */
async function createLockTable(sql: Sql, schema: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`create table if not exists ${sql(schema)}.${sql(BOOTSTRAP_LOCK_TABLE)} ()`;
      return;
    } catch (error) {
      if (!['23505', '42P07'].includes(errorCode(error)) || attempt >= 3) throw error;
    }
  }
}

/**
 * Takes the lock in a transaction of its own session and keeps it open: 'took' at once, 'waited'
 * for another bootstrap first. While another holds it, this run waits in SHARE mode (which every
 * waiter is granted at the same moment, when the holder ends) and then looks again: if that other
 * run completed the instance, there is nothing left to do (`confirmed`, the lock released), so the
 * waiters of a first bootstrap do not each take the lock in turn. Otherwise it queues for the lock.
 * Plain BEGIN/COMMIT on a one-connection session rather than sql.begin(): when the server goes away
 * mid-wait, sql.begin() queues a ROLLBACK on the dead socket, which the driver then writes to null.
 */
async function takeLock(ctx: StepContext, db: TenantSession): Promise<'took' | 'waited' | { confirmed: string }> {
  const { schema } = db;
  const { lockTimeoutSec, vars } = ctx.config.database;
  const session = await db.anotherSession();
  // Held until the run ends: ending the lock's transaction releases the lock. Closed by a signal
  // while it waits, too: the wait is the likeliest moment for a SIGTERM.
  const forget = ctx.resources.add({
    async close() {
      await session`commit`.catch(() => {});
      await session.end({ timeout: 5 });
    },
    destroy() {
      void session.end({ timeout: 0 });
    },
  });
  const table = session`${session(schema)}.${session(BOOTSTRAP_LOCK_TABLE)}`;
  const lock = (wait: boolean) => session`lock table ${table} in exclusive mode ${wait ? session`` : session`nowait`}`;
  let outcome: 'took' | 'waited' | { confirmed: string } = 'took';
  try {
    await session`begin`;
    try {
      await lock(false);
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      outcome = 'waited';
      await session`rollback`;
      const [holder] = await lockHolders(session, schema, { relation: BOOTSTRAP_LOCK_TABLE });
      ctx.log.info(
        `another bootstrap of schema ${schema} is running ` +
          `(${holder ?? 'holder not visible'}); waiting up to ${lockTimeoutSec} s for it to end (and, if it ` +
          `leaves work to do, up to ${lockTimeoutSec} s more for the lock)`,
        { step: 'lock' },
      );
      // Until the holder ends (bounded by the session's lock_timeout); then released at once.
      await session`begin`;
      await session`lock table ${table} in share mode`;
      await session`rollback`;
      const confirmed = await completeAlready(ctx, db);
      if (confirmed) outcome = { confirmed };
      else {
        await session`begin`;
        await lock(true); // bounded by the session's lock_timeout
      }
    }
  } catch (error) {
    forget();
    await session.end({ timeout: 0 });
    if (!isLockTimeout(error)) throw error;
    throw await lockTimeoutError(db.sql, [schema], OTHER_BOOTSTRAP, vars.lockTimeout, lockTimeoutSec, error);
  }
  if (typeof outcome === 'object') {
    forget();
    await session.end({ timeout: 1 });
  }
  return outcome;
}
