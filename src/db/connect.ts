/**
 * The PostgreSQL connection of the run (the lock step opens a second session for its lock).
 * Unreachable servers are retried with capped exponential backoff until DATABASE_CONNECT_TIMEOUT;
 * answers that will not change by waiting (bad password, unknown database, TLS refused) fail at once.
 */
import postgres from 'postgres';
import { BootstrapError, DatabaseError } from '../errors.js';
import type { DatabaseTarget } from '../config/targets.js';
import type { Logger } from '../log.js';
import { formatDuration } from '../log.js';
import { sleep } from '../sleep.js';
import { guardedSocket } from './guard.js';
import { fallsBack, TlsNotOffered, tlsPlan } from './tls.js';
import { isTlsFailure } from '../tls-failure.js';

export type Sql = postgres.Sql;

/** Error codes worth waiting for: the server (or its DNS name) is not there yet, or still starting. */
const RETRYABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND', // compose and Kubernetes register a service's name only once it runs
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P03', // cannot_connect_now: the database system is starting up
  '53300', // too_many_connections
]);

export interface Connection {
  sql: Sql;
  serverVersion: string;
  tls: boolean;
  /** Another session with the same settings and retries (the lock step holds its lock in one of its own). */
  anotherSession(): Promise<Sql>;
}

/** What bounds every statement of a session: the target's lock_timeout and statement_timeout. */
export type SessionBounds = Pick<DatabaseTarget, 'lockTimeoutSec' | 'statementTimeoutSec'>;

/**
 * Every session's own settings, whatever the role's or database's defaults say (a DBA's
 * statement_timeout = 0, or 1 s; a search_path with a schema other roles can create in):
 * - search_path pg_catalog: until the schema step sets it to the tenant schema, no function of
 *   another role (in public, say) can shadow a built-in our queries call;
 * - lock_timeout and statement_timeout: no statement waits or runs unbounded;
 * - client_connection_check_interval: a backend blocked on a lock notices within 1 s that we closed
 *   the socket (SIGTERM), cancels the statement and rolls back; without it the statement and its
 *   transaction would live on until the blocker goes. It exists from PostgreSQL 14;
 * - idle_session_timeout 0: the run's session waits idle while the password is hashed and while
 *   storage and email are verified (a role's 50 ms would close it under the super admin step);
 * - default_transaction_read_only: off for bootstrap and provision (a role or database read-only by
 *   default would otherwise refuse every write: a DBA's default, not a decision about this run), on
 *   for check; default_transaction_isolation read committed (what the steps are written for: a
 *   role's serializable would fail concurrent replicas with serialization errors), not deferrable;
 * - exit_on_error off: some errors are expected and handled (a lock taken NOWAIT, a catalog race);
 *   with exit_on_error on, each would end the session;
 * - how values are written: DateStyle ISO (postgres.js reads timestamps with new Date(), which
 *   cannot read German, SQL or Postgres styles: Invalid Date), TimeZone UTC, IntervalStyle postgres,
 *   extra_float_digits 1 (exact), bytea_output hex (what postgres.js decodes),
 *   standard_conforming_strings on (the migrations' string literals, and the parser that reads
 *   them, take backslashes literally), quote_all_identifiers off, xmloption content;
 * - client_min_messages warning: notices are ignored (onnotice) and a role's debug5 would send
 *   one for every statement. lc_messages is not set: only a superuser may, and nothing reads a
 *   server message's text (errors are told apart by SQLSTATE).
 */
export function sessionSettings(bounds: SessionBounds, readOnly: boolean): Record<string, string> {
  return {
    search_path: 'pg_catalog',
    lock_timeout: `${bounds.lockTimeoutSec}s`,
    statement_timeout: `${bounds.statementTimeoutSec}s`,
    // Our transactions are short, except the lock step's, which must live as long as the run.
    idle_in_transaction_session_timeout: '0',
    client_connection_check_interval: '1000',
    idle_session_timeout: '0',
    // Read-only sessions (check): the server itself refuses any write, whatever a step would do.
    default_transaction_read_only: readOnly ? 'on' : 'off',
    default_transaction_isolation: 'read committed',
    default_transaction_deferrable: 'off',
    exit_on_error: 'off',
    DateStyle: 'ISO, MDY',
    IntervalStyle: 'postgres',
    TimeZone: 'UTC',
    extra_float_digits: '1',
    bytea_output: 'hex',
    standard_conforming_strings: 'on',
    quote_all_identifiers: 'off',
    xmloption: 'content',
    client_min_messages: 'warning',
  };
}

export async function connect(
  target: DatabaseTarget,
  log: Logger,
  signal: AbortSignal,
  opts: { readOnly?: boolean; max?: number } = {},
): Promise<Connection> {
  const { host, port, user, password, database } = target.url;
  const plan = tlsPlan(target);
  const deadline = Date.now() + target.connectTimeoutSec * 1000;
  const attemptTimeout = () => Math.max(1, Math.min(10, Math.ceil((deadline - Date.now()) / 1000)));

  const max = opts.max ?? 1;
  const settings = sessionSettings(target, opts.readOnly ?? false);
  const options = {
    host,
    port,
    user,
    pass: password,
    database,
    max, // one connection, unless a pool is asked for: session settings (search_path) hold for every statement
    idle_timeout: 0,
    max_lifetime: null,
    connect_timeout: attemptTimeout(),
    fetch_types: false, // saves a catalog query per start; we use no array or custom types
    onnotice: () => {}, // "already exists, skipping" notices are not for the operator
    // In the startup packet, so that they hold from the first statement on (a role's default
    // statement_timeout of 1 ms would cancel the one that sets them) and on every pooled connection;
    // and again by the first query: PgBouncer refuses unknown startup parameters unless told to
    // ignore them (ignore_startup_parameters), and then only that query applies them.
    connection: { application_name: 'superfasttt-bootstrap', ...settings },
  } satisfies postgres.Options<Record<string, never>>;
  // libpq's attempts in its order (allow: plaintext then TLS; prefer: TLS then plaintext), each with its own client.
  const open = async (): Promise<Connection> => {
    let first: unknown;
    for (const [i, leg] of plan.attempts.entries()) {
      const timeout = attemptTimeout();
      // Sockets (and TLS) from guard.ts: every answer bounded in time and size, client-side.
      const socket = guardedSocket({
        host,
        port,
        leg,
        connectTimeoutMs: timeout * 1000,
        statementTimeoutSec: target.statementTimeoutSec,
        vars: target.vars,
        onFatal: () => void sql.end({ timeout: 0 }),
      });
      const sql = postgres({ ...options, ssl: false, socket, connect_timeout: timeout } as postgres.Options<
        Record<string, never>
      >);
      try {
        return await session(sql);
      } catch (error) {
        await sql.end({ timeout: 0 });
        if (i + 1 < plan.attempts.length && fallsBack(error, leg)) {
          first ??= error;
          continue;
        }
        // allow: the server refused plaintext and offers no TLS either; its refusal says more.
        throw error instanceof TlsNotOffered && first !== undefined ? first : error;
      }
    }
    throw new Error('no connection attempt');
  };
  // A server without TLS where TLS is asked for: the guard's SSLRequest finds it (TlsNotOffered).
  const session = async (sql: Sql): Promise<Connection> => {
    const [row] = await sql<{ version: string; num: number; tls: boolean }[]>`
      select (select count(pg_catalog.set_config(key, value, false))
                from pg_catalog.json_each_text(${JSON.stringify(settings)}::text::pg_catalog.json)) as applied,
             pg_catalog.current_setting('server_version') as version,
             pg_catalog.current_setting('server_version_num')::int as num,
             coalesce((select ssl from pg_catalog.pg_stat_ssl where pid = pg_catalog.pg_backend_pid()), false) as tls`;
    if (!row) throw new Error('no answer to the version query');
    if (row.num < 140000) {
      throw new DatabaseError(`PostgreSQL ${row.version} is too old: 14 or newer is required`, 'upgrade the server');
    }
    return {
      sql,
      serverVersion: row.version,
      tls: row.tls,
      anotherSession: async () => (await connect(target, log, signal, { ...opts, max: 1 })).sql,
    };
  };

  let delay = 250;
  let lastWaitLog = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      const code = errorCode(error);
      const remaining = deadline - Date.now();
      if (error instanceof BootstrapError || !RETRYABLE.has(code) || remaining <= 0 || signal.aborted) {
        throw error instanceof BootstrapError ? error : classifyConnectError(error, target);
      }
      if (Date.now() - lastWaitLog > 10_000) {
        lastWaitLog = Date.now();
        log.warn(
          `PostgreSQL at ${host}:${port} not reachable yet (${code}); retrying for up to ${formatDuration(remaining)}`,
          {
            step: 'database',
            attempt,
          },
        );
      }
      const jittered = Math.min(delay, remaining) * (0.75 + Math.random() * 0.5);
      await sleep(jittered, signal);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** The server went away in the middle of the run (restart, failover, terminated backend). */
// Only used after a successful connect: a refused reconnect then means the server went away too.
const CONNECTION_LOST =
  /^(CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|ECONNRESET|ECONNREFUSED|EPIPE|57P0[1-3]|08\w\w\w)$/;

export function connectionLost(error: unknown, during: string): DatabaseError | undefined {
  const code = errorCode(error);
  if (!CONNECTION_LOST.test(code)) return undefined;
  return new DatabaseError(
    `the connection to PostgreSQL was lost during ${during} (${code}: ${(error as Error).message}); nothing was ` +
      `half-applied (each change is one transaction)`,
    'run again once the server is back: the bootstrap resumes where it stopped',
    { cause: error },
  );
}

export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Turns a driver or socket error into a message an operator can act on. Never includes the URL. */
export function classifyConnectError(error: unknown, target: DatabaseTarget): DatabaseError {
  const { host, port, user, database } = target.url;
  const vars = target.vars;
  const code = errorCode(error);
  const detail = (error as Error)?.message ?? String(error);
  const where = `PostgreSQL at ${host}:${port}`;
  const cause = { cause: error };
  const requireTls = vars.requireTls ? `${vars.requireTls}=true` : `sslmode=require in ${vars.url}`;
  const timeout = `${vars.connectTimeout}=${target.connectTimeoutSec} s`;
  switch (code) {
    case '28P01':
      return new DatabaseError(
        `${where} refused the password of user "${user}" (${vars.url})`,
        `check the user and password in ${vars.url} (percent-encode special characters such as @ : / in the password)`,
        cause,
      );
    case '28000':
      return new DatabaseError(
        `${where} refused user "${user}" on database "${database}": ${detail}`,
        `allow this role and client in pg_hba.conf, or enable TLS ` +
          `(${requireTls}) if the server only accepts TLS connections`,
        cause,
      );
    case '42501':
      return new DatabaseError(
        `${where}: role "${user}" may not connect to database "${database}" (${detail})`,
        `as the database owner, run: GRANT CONNECT ON DATABASE "${database}" TO "${user}";`,
        cause,
      );
    case '42704': // an unknown startup parameter: client_connection_check_interval exists from 14 on
      return new DatabaseError(
        `${where} does not know a session setting this program needs (${detail}): PostgreSQL 14 or newer is required`,
        'upgrade the server to PostgreSQL 14 or newer',
        cause,
      );
    case '3D000':
      return new DatabaseError(
        `${where}: database "${database}" does not exist`,
        `check the database name at the end of ${vars.url}`,
        cause,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new DatabaseError(
        `PostgreSQL host "${host}" could not be resolved (DNS, ${code}) within ${timeout}`,
        `check the host in ${vars.url} and the DNS / service name`,
        cause,
      );
  }
  if (isTlsFailure(code, detail)) {
    const ca = vars.ca ?? `sslrootcert in ${vars.url}`;
    return new DatabaseError(
      `TLS connection to ${where} failed: ${detail}`,
      `give the CA that signed the server certificate in ${ca} (or NODE_EXTRA_CA_CERTS), check that the host in ` +
        `${vars.url} matches the certificate, or use sslmode=require to encrypt without verifying`,
      cause,
    );
  }
  if (code === 'CONNECT_TIMEOUT') {
    return new DatabaseError(
      `no answer from ${where} within ${timeout} (the connection ` +
        `was not established, or established and never answered)`,
      `check host and port in ${vars.url} (is it PostgreSQL listening there?) and that the network lets this ` +
        `container reach it; raise ${vars.connectTimeout} if it starts slowly`,
      cause,
    );
  }
  if (RETRYABLE.has(code)) {
    return new DatabaseError(
      `${where} unreachable for ${target.connectTimeoutSec} s (${code}: ${detail})`,
      `check host and port in ${vars.url}, that the server runs and that the network lets this container reach it; ` +
        `raise ${vars.connectTimeout} if it starts slowly`,
      cause,
    );
  }
  return new DatabaseError(
    `cannot connect to ${where} as "${user}": ${detail}${code ? ` (${code})` : ''}`,
    `check ${vars.url} and the server log`,
    cause,
  );
}
