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
import { errorCode, sleep, type Sql } from '../db/connect.js';
import { isLockTimeout, lockHolders, lockTimeoutError } from '../db/locks.js';
import { assertSchemaIsOurs, ourObjects } from './schema-owner.js';
import { dbOf, throwIfAborted, type RunContext, type Step } from './step.js';
import { BOOTSTRAP_LOCK_TABLE } from './tables.js';

/** The lock of this run: held until release() (end of run) or destroy() (signal). */
export interface HeldLock {
  release(): Promise<void>;
  destroy(): void;
}

export const lockStep: Step = {
  name: 'lock',
  errorClass: SchemaError,
  needs: ['schema'],
  async run(ctx) {
    const schema = ctx.env.DATABASE_SCHEMA;
    const { sql } = dbOf(ctx);
    // A standby (in recovery) refuses every write: the bootstrap fails here, and so does check.
    const [recovery] = await sql<{ standby: boolean }[]>`select pg_is_in_recovery() as standby`;
    if (recovery?.standby) {
      throw new SchemaError(
        `PostgreSQL at ${ctx.env.DATABASE_URL.host}:${ctx.env.DATABASE_URL.port} is a standby (in recovery): it refuses every write, so the bootstrap cannot run there`,
        'point DATABASE_URL at the primary (read-write) server, or at a pooler or service that routes to it',
      );
    }
    if (ctx.mode === 'check') return await waitLikeBootstrap(ctx);
    await createLockTable(sql, schema);
    const started = Date.now();
    const waited = await takeLock(ctx);
    // Checked again under the lock: a role with CREATE on the schema could have added something
    // between the schema step and now, and migrations and the super admin come next.
    await assertSchemaIsOurs(sql, schema, ourObjects(migrations));
    return waited
      ? `acquired the bootstrap lock of schema ${schema} after waiting ${Date.now() - started} ms`
      : `acquired the bootstrap lock of schema ${schema}`;
  },
};

/**
 * check: what the bootstrap's wait would end in, without taking the lock (taking it, or queueing
 * for it, could make a starting replica wait for us). A holder is watched for as long as the
 * bootstrap would wait (DATABASE_LOCK_TIMEOUT): gone by then, the check passes; still there, it
 * fails as the bootstrap would (exit 4, naming the holder).
 */
async function waitLikeBootstrap(ctx: RunContext): Promise<string> {
  const schema = ctx.env.DATABASE_SCHEMA;
  const { sql } = dbOf(ctx);
  const holders = () => lockHolders(sql, schema, { relation: BOOTSTRAP_LOCK_TABLE, conflicting: true });
  const [holder] = await holders();
  if (!holder) return `no bootstrap of schema ${schema} is running`;
  const started = Date.now();
  const deadline = started + ctx.env.DATABASE_LOCK_TIMEOUT * 1000;
  ctx.log.info(
    `another bootstrap of schema ${schema} is running (${holder}); watching it for up to ${ctx.env.DATABASE_LOCK_TIMEOUT} s, as long as the bootstrap would wait`,
    { step: 'lock' },
  );
  while (Date.now() < deadline) {
    await sleep(Math.min(250, deadline - Date.now()), ctx.signal);
    throwIfAborted(ctx.signal);
    if ((await holders()).length === 0)
      return `a bootstrap of schema ${schema} was running (${holder}); it ended after ${Date.now() - started} ms, within DATABASE_LOCK_TIMEOUT`;
  }
  throw await lockTimeoutError(
    sql,
    [schema],
    'the lock step (another bootstrap of this schema)',
    'DATABASE_LOCK_TIMEOUT',
    ctx.env.DATABASE_LOCK_TIMEOUT,
    undefined,
  );
}

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
 * Takes the lock in a transaction of its own session and keeps it open; true when it had to wait.
 * Plain BEGIN/COMMIT on a one-connection session rather than sql.begin(): when the server goes away
 * mid-wait, sql.begin() queues a ROLLBACK on the dead socket, which the driver then writes to null.
 */
async function takeLock(ctx: RunContext): Promise<boolean> {
  const schema = ctx.env.DATABASE_SCHEMA;
  const session = await dbOf(ctx).anotherSession();
  // Closed by a signal while it waits, too: the wait is the likeliest moment for a SIGTERM.
  ctx.heldLock = {
    async release() {
      await session`commit`.catch(() => {});
      await session.end({ timeout: 5 });
    },
    destroy() {
      void session.end({ timeout: 0 });
    },
  };
  const lock = (wait: boolean) =>
    session`lock table ${session(schema)}.${session(BOOTSTRAP_LOCK_TABLE)} in exclusive mode ${wait ? session`` : session`nowait`}`;
  let waited = false;
  try {
    await session`begin`;
    try {
      await lock(false);
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      waited = true;
      await session`rollback`;
      const [holder] = await lockHolders(session, schema, { relation: BOOTSTRAP_LOCK_TABLE });
      ctx.log.info(
        `another bootstrap of schema ${schema} is running (${holder ?? 'holder not visible'}); waiting up to ${ctx.env.DATABASE_LOCK_TIMEOUT} s`,
        { step: 'lock' },
      );
      await session`begin`;
      await lock(true); // bounded by the session's lock_timeout
    }
  } catch (error) {
    ctx.heldLock = undefined;
    await session.end({ timeout: 0 });
    if (!isLockTimeout(error)) throw error;
    throw await lockTimeoutError(
      dbOf(ctx).sql,
      [schema],
      'the lock step (another bootstrap of this schema)',
      'DATABASE_LOCK_TIMEOUT',
      ctx.env.DATABASE_LOCK_TIMEOUT,
      error,
    );
  }
  return waited;
}
