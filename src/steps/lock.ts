/**
 * Step 2: serialise bootstraps of the same schema (replicas starting together).
 *
 * Protocol: a session-level advisory lock on (LOCK_NAMESPACE, hashtext(schema)), held by our one
 * connection until the process ends (PostgreSQL releases it if we crash or are killed). Per schema,
 * so thousands of tenants in one database never wait for each other (unlike a global migration
 * lock). The wait is bounded by DATABASE_LOCK_TIMEOUT through lock_timeout; on timeout we name the
 * holder so the operator can find and stop it. Another run that finished meanwhile simply leaves
 * nothing to do for us: every later step is idempotent.
 */
import { SchemaError } from '../errors.js';
import { errorCode } from '../db/connect.js';
import { dbOf, type Step } from './step.js';

/** First key of the two-key advisory lock: "superfasttt-bootstrap" in our own number space. */
export const LOCK_NAMESPACE = 0x5f_b0_07;

export const lockStep: Step = {
  name: 'lock',
  errorClass: SchemaError,
  needs: ['database'],
  async run(ctx) {
    const { sql } = dbOf(ctx);
    const schema = ctx.env.DATABASE_SCHEMA;
    // check: report who holds it; taking it could make a starting replica wait for us.
    if (ctx.mode === 'check') {
      const holder = await lockHolder(ctx);
      return holder === NO_HOLDER ? `no bootstrap of schema ${schema} is running` : `a bootstrap of schema ${schema} is running (${holder})`;
    }
    const [got] = await sql<{ locked: boolean }[]>`select pg_try_advisory_lock(${LOCK_NAMESPACE}, hashtext(${schema})) as locked`;
    if (got?.locked) return `acquired the bootstrap lock of schema ${schema}`;

    const holder = await lockHolder(ctx);
    ctx.log.info(`another bootstrap of schema ${schema} is running (${holder}); waiting up to ${ctx.env.DATABASE_LOCK_TIMEOUT} s`, { step: 'lock' });
    const started = Date.now();
    try {
      await sql`select set_config('lock_timeout', ${`${ctx.env.DATABASE_LOCK_TIMEOUT}s`}, false)`;
      await sql`select pg_advisory_lock(${LOCK_NAMESPACE}, hashtext(${schema}))`;
    } catch (error) {
      if (errorCode(error) !== '55P03') throw error;
      throw new SchemaError(
        `timed out after ${ctx.env.DATABASE_LOCK_TIMEOUT} s waiting for another bootstrap of schema ${schema} (${await lockHolder(ctx)})`,
        'if that process is stuck, stop it (SELECT pg_terminate_backend(<pid>) as its role or a superuser) and run again; or raise DATABASE_LOCK_TIMEOUT',
        { cause: error },
      );
    } finally {
      // Never let this mask the real error (a lost connection, say).
      await sql`select set_config('lock_timeout', '0', false)`.catch(() => {});
    }
    return `acquired the bootstrap lock of schema ${schema} after waiting ${Date.now() - started} ms`;
  },
};

const NO_HOLDER = 'holder not visible';

async function lockHolder(ctx: Parameters<Step['run']>[0]): Promise<string> {
  const { sql } = dbOf(ctx);
  const [row] = await sql<{ pid: number; application_name: string | null; client_addr: string | null; since: Date | null }[]>`
    select a.pid, a.application_name, host(a.client_addr) as client_addr, a.backend_start as since
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database())
      and l.classid = ${LOCK_NAMESPACE}::oid and l.objid = hashtext(${ctx.env.DATABASE_SCHEMA})::oid and l.objsubid = 2`;
  if (!row) return NO_HOLDER;
  const from = [row.application_name, row.client_addr].filter(Boolean).join(' from ');
  // Another role's session shows no start time to us: say only what we know.
  return `held by PostgreSQL backend pid ${row.pid}${from ? ` (${from})` : ''}${row.since ? ` since ${row.since.toISOString()}` : ''}`;
}
