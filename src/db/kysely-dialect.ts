/**
 * Kysely's query builder over a connection the program already holds: a postgres.js `Sql` (the
 * run's one session, search_path = the tenant schema) or a `TransactionSql` (inside
 * `sql.begin(tx => ...)`). Loaded only through kysely.ts' loadKysely(): this module is where kysely
 * enters the bundle, in a chunk of its own.
 *
 * Not kysely-postgres-js' PostgresJSDialect: it calls `reserve()` for every query (a
 * TransactionSql has none: it would be taken for a factory and called) and its destroy() calls
 * `end()` on the Sql it was given, closing the run's connection. Here the driver only delegates
 * each compiled query to `sql.unsafe(text, parameters)`: it never opens, reserves, ends or
 * transacts; destroy() does nothing; Kysely's own transactions are refused (use sql.begin and
 * kyselyOver(tx)).
 */
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from 'kysely';
import type postgres from 'postgres';
import type { Database } from './database.js';

/** What the driver uses of a postgres.js client: a session's `sql` or a transaction's `tx`. */
export type QuerySql = Pick<postgres.Sql, 'unsafe'> | Pick<postgres.TransactionSql, 'unsafe'>;

const COUNTED = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * No plain object as a parameter: postgres.js serializes it by the type the server infers for its
 * place, JSON for a jsonb column but the text "[object Object]" for a text one. jsonb values go
 * through queries.ts' jsonb() (their JSON text, cast), and the types of database.ts ask for it.
 */
function checkParameter(value: unknown, index: number): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    throw new TypeError(
      `query parameter $${index + 1} is a plain object: write jsonb values with jsonb() of src/db/queries.ts`,
    );
  }
}

class BoundConnection implements DatabaseConnection {
  constructor(private readonly sql: QuerySql) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    query.parameters.forEach(checkParameter);
    const result = await this.sql.unsafe(query.sql, [...query.parameters] as never[]);
    return {
      ...(COUNTED.has(result.command) && { numAffectedRows: BigInt(result.count) }),
      rows: Array.from(result) as R[],
    };
  }

  // biome-ignore lint/correctness/useYield: refused before the first row
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('kysely over postgres.js: streaming is not supported; select what you need');
  }
}

const NO_KYSELY_TRANSACTIONS =
  'kysely over postgres.js: no Kysely transaction; run the queries in sql.begin(async (tx) => ...) with kyselyOver(tx)';

class BoundDriver implements Driver {
  readonly #connection: BoundConnection;
  constructor(sql: QuerySql) {
    this.#connection = new BoundConnection(sql);
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }
  async releaseConnection(): Promise<void> {}
  async beginTransaction(): Promise<void> {
    throw new Error(NO_KYSELY_TRANSACTIONS);
  }
  async commitTransaction(): Promise<void> {
    throw new Error(NO_KYSELY_TRANSACTIONS);
  }
  async rollbackTransaction(): Promise<void> {
    throw new Error(NO_KYSELY_TRANSACTIONS);
  }
  /** The connection belongs to the caller: nothing to end here. */
  async destroy(): Promise<void> {}
}

class BoundDialect implements Dialect {
  constructor(private readonly sql: QuerySql) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver() {
    return new BoundDriver(this.sql);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}

/** A Kysely whose every query runs on `sql` (a session or a transaction), as `sql.unsafe(text, parameters)`. */
export function kyselyOn(sql: QuerySql): Kysely<Database> {
  return new Kysely<Database>({ dialect: new BoundDialect(sql) });
}
