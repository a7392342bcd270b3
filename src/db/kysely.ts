/**
 * Typed queries (Kysely's query builder) on the connection of the run, loaded lazily: kysely is
 * imported on first use only (its chunk, kysely-dialect.ts, is not loaded by `--version`, nor
 * before a step asks for it). A step can start the load early from its prepare() with
 * loadKysely(), so that it overlaps the network waits before it.
 *
 *   const db = await kyselyOver(sql);                    // the run's session
 *   await sql.begin(async (tx) => {
 *     const db = kyselyOverLoaded(await loadKysely(), tx); // or: await kyselyOver(tx)
 *     await markSetupCompleted(db, version);               // runs inside tx
 *   });
 *
 * The Kysely never owns the connection: it runs each query with `sql.unsafe(text, parameters)` on
 * the Sql or TransactionSql it was given, its destroy() ends nothing, and Kysely's own
 * transactions are refused (postgres.js' sql.begin is the transaction). Table names are
 * unqualified: the session's search_path (the tenant schema, set by the schema step) resolves them.
 */
import type { Kysely } from 'kysely';
import type { Database } from './database.js';
import type { QuerySql } from './kysely-dialect.js';

export type { QuerySql };
export type Db = Kysely<Database>;
export type KyselyModule = typeof import('./kysely-dialect.js');

let loading: Promise<KyselyModule> | undefined;

/** Starts the import once (later calls share it). Never an unhandled rejection: the awaiting caller gets it. */
export function loadKysely(): Promise<KyselyModule> {
  if (!loading) {
    loading = import('./kysely-dialect.js');
    loading.catch(() => {
      loading = undefined; // a later call tries again
    });
  }
  return loading;
}

/** A Kysely over `sql` (a postgres.js Sql, or the TransactionSql of sql.begin), kysely loaded if needed. */
export async function kyselyOver(sql: QuerySql): Promise<Db> {
  return (await loadKysely()).kyselyOn(sql);
}

/** The same, synchronous, with the module loadKysely() resolved to (e.g. inside a transaction). */
export function kyselyOverLoaded(mod: KyselyModule, sql: QuerySql): Db {
  return mod.kyselyOn(sql);
}
