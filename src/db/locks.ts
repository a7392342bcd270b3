/**
 * Who holds a lock we waited for. Every statement runs with a lock_timeout; when it expires
 * (SQLSTATE 55P03) the operator needs the table and the session to stop, not "lock timeout".
 * By then our wait has ended (pg_blocking_pids is empty), so this lists the other sessions that
 * hold locks on tables of the schema.
 */
import type { TransactionSql } from 'postgres';
import { SchemaError } from '../errors.js';
import { errorCode, type Sql } from './connect.js';

export const LOCK_TIMEOUT = '55P03';
export const STATEMENT_TIMEOUT = '57014';

interface Holder {
  relname: string;
  mode: string;
  pid: number;
  role: string | null;
  application_name: string | null;
  since: Date | null;
  state: string | null;
}

/**
 * The other sessions holding locks on tables of the schema, strongest first (a row lock of an open
 * transaction blocks an UPDATE or a DROP as surely as a table lock), as "table users:
 * AccessExclusiveLock held by pid 42 (role tenant_x, psql, idle in transaction since ...)", at most 5.
 */
export async function lockHolders(
  sql: Sql | TransactionSql,
  schema: string,
  /** conflicting: only locks an EXCLUSIVE lock waits for (every mode but ACCESS SHARE). */
  opts: { relation?: string; exclude?: string; conflicting?: boolean } = {},
): Promise<string[]> {
  const rows = await sql<Holder[]>`
    select c.relname, l.mode, l.pid, a.usename as role, nullif(a.application_name, '') as application_name,
           coalesce(a.xact_start, a.backend_start) as since, a.state
    from pg_locks l
    join pg_class c on c.oid = l.relation
    left join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'relation' and l.granted and l.pid <> pg_backend_pid()
      and c.relnamespace = (select oid from pg_namespace where nspname = ${schema})
      and (${opts.relation ?? null}::text is null or c.relname = ${opts.relation ?? null})
      and (${opts.exclude ?? null}::text is null or c.relname <> ${opts.exclude ?? null})
      and (${opts.conflicting ?? false}::text::boolean is false or l.mode <> 'AccessShareLock')
    order by array_position(array['AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock',
             'ShareUpdateExclusiveLock', 'RowExclusiveLock', 'RowShareLock', 'AccessShareLock'], l.mode::text),
             since nulls last, l.pid
    limit 5`;
  return rows.map(describe);
}

function describe(h: Holder): string {
  // Another role's session shows neither its start nor its state to us: say only what we know.
  const who = [
    h.role && `role ${h.role}`,
    h.application_name,
    h.state && `${h.state}${h.since ? ` since ${h.since.toISOString()}` : ''}`,
  ].filter(Boolean);
  return (
    `table ${h.relname}: ${h.mode} held by PostgreSQL backend pid ` +
    `${h.pid}${who.length > 0 ? ` (${who.join(', ')})` : ''}`
  );
}

/** What to tell the operator when a statement gave up waiting: the holders, and how to stop one. */
async function lockTimeoutMessage(
  sql: Sql,
  /** Where the holder may be: the tenant's schema, and for provisioning the deployer's. */
  schemas: readonly string[],
  during: string,
  variable: string,
  seconds: number,
  opts: { exclude?: string } = {},
): Promise<{ message: string; fix: string }> {
  const holders: string[] = [];
  for (const schema of schemas) holders.push(...(await lockHolders(sql, schema, opts).catch(() => [] as string[])));
  const pid = /pid (\d+)/.exec(holders[0] ?? '')?.[1] ?? '<pid>';
  const where = schemas.map((schema) => `'${schema.replace(/'/g, "''")}'`).join(', ');
  return {
    message:
      `${during} waited ${seconds} s (${variable}) for a lock in schema ${schemas.join(' or ')} and gave up: ` +
      `${holders.length > 0 ? holders.join('; ') : 'the holder is gone or not visible to this role'}`,
    fix:
      `end that session's transaction (commit, or SELECT pg_terminate_backend(${pid}); as its role or a ` +
      `superuser), then run again; or raise ${variable}. Inspect: SELECT l.pid, l.mode, c.relname, a.usename, ` +
      `a.application_name, a.state, a.xact_start FROM pg_locks l JOIN pg_class c ON c.oid = l.relation LEFT JOIN ` +
      `pg_stat_activity a ON a.pid = l.pid WHERE c.relnamespace IN ` +
      `(SELECT oid FROM pg_namespace WHERE nspname IN (${where}));`,
  };
}

/** The failure of a statement that gave up waiting: exit 4 (SchemaError), naming who holds the lock. */
export async function lockTimeoutError(
  sql: Sql,
  schemas: readonly string[],
  during: string,
  variable: string,
  seconds: number,
  cause: unknown,
  opts: { exclude?: string } = {},
): Promise<SchemaError> {
  const { message, fix } = await lockTimeoutMessage(sql, schemas, during, variable, seconds, opts);
  return new SchemaError(message, fix, { cause });
}

export function isLockTimeout(error: unknown): boolean {
  return errorCode(error) === LOCK_TIMEOUT;
}
