/**
 * Step 4: apply the migrations bundled from migrations/*.sql, inside the tenant schema (the
 * session's search_path), each in its own transaction with its history row, so a crash leaves
 * either all of a migration or none of it. The history table lives in the tenant schema and keeps
 * a checksum per migration: a migration changed after it was applied is refused, and so is a
 * history written by a newer version (never downgrade a schema). Concurrency: the lock step.
 */
import migrations from 'virtual:migrations';
import { MigrationError } from '../errors.js';
import { connectionLost, errorCode, type Sql } from '../db/connect.js';
import { isLockTimeout, STATEMENT_TIMEOUT } from '../db/locks.js';
import { kyselyOver, kyselyOverLoaded, loadKysely } from '../db/kysely.js';
import { insertHistory, readHistory, tablesExist } from '../db/queries.js';
import { HISTORY_TABLE } from '../db/tables.js';
import { createdTables, type Migration, pendingMigrations } from './migration-plan.js';
import { lockStep } from './lock.js';
import { schemaStep, type TenantSession } from './schema.js';
import { type Done, defineStep, done, throwIfAborted } from './step.js';

/** The session once the migrations step passed, with what is left to apply (check; 0 after a bootstrap). */
export interface MigratedSession extends TenantSession {
  readonly pendingMigrations: number;
}

export const migrationsStep = defineStep({
  name: 'migrations',
  errorClass: MigrationError,
  needs: { db: schemaStep },
  // Only under the bootstrap lock: two replicas never apply the same migration.
  after: [lockStep],
  async inspect(_ctx, { db }): Promise<Done<MigratedSession>> {
    const { sql } = db;
    // Read-only: no history table yet means nothing was applied.
    const kysely = await kyselyOver(sql);
    const applied = (await tablesExist(kysely, [HISTORY_TABLE])) ? await readHistory(kysely) : [];
    const pending = pendingMigrations(migrations, applied); // throws on changed or unknown ones
    await assertNotAppliedYet(sql, db.schema, pending); // as the bootstrap would fail
    const summary =
      pending.length === 0
        ? `up to date: ${applied.length} applied, none pending`
        : `${applied.length} applied, ${pending.length} pending ` +
          `(${pending.map((m) => m.name).join(', ')}): the bootstrap applies them`;
    return done(summary, { ...db, pendingMigrations: pending.length }, undefined, {
      applied: applied.length,
      pending: pending.length,
    });
  },
  async apply(ctx, { db }): Promise<Done<MigratedSession>> {
    const { sql } = db;
    // Unqualified names resolve in the tenant schema (search_path set by the schema step).
    await sql`create table if not exists ${sql(HISTORY_TABLE)} (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now(),
        bootstrap_version text not null
      )`;
    const kysely = await loadKysely();
    const pending = pendingMigrations(migrations, await readHistory(kyselyOverLoaded(kysely, sql)));
    await assertNotAppliedYet(sql, db.schema, pending);

    for (const migration of pending) {
      throwIfAborted(ctx.signal);
      const started = performance.now();
      try {
        await sql.begin(async (tx) => {
          await tx.unsafe(migration.sql).simple(); // simple protocol: a file holds several statements
          const row = { name: migration.name, checksum: migration.checksum, bootstrap_version: ctx.version };
          await insertHistory(kyselyOverLoaded(kysely, tx), row);
        });
      } catch (error) {
        throwIfAborted(ctx.signal);
        // A lock held by the app, or a statement past its timeout: the runner names the holder.
        if (isLockTimeout(error) || errorCode(error) === STATEMENT_TIMEOUT) throw error;
        const lost = connectionLost(error, `migration ${migration.name} (rolled back)`);
        if (lost) throw lost;
        const code = errorCode(error);
        throw new MigrationError(
          `migration ${migration.name} failed and was rolled back: ` +
            `${(error as Error).message}${code ? ` (SQLSTATE ${code})` : ''}`,
          code === '42501'
            ? 'the role lacks a privilege the migration needs; grant it ' +
                '(see docs/provisioning.md, "What is created, per tenant and per database") and run again'
            : 'nothing of this migration was applied; fix the cause above and run again',
          { cause: error },
        );
      }
      ctx.log.info(`applied ${migration.name}`, { step: 'migrations', durationMs: performance.now() - started });
    }
    const summary =
      pending.length === 0
        ? `schema is up to date (${migrations.length} migration(s) applied before)`
        : `applied ${pending.length} migration(s); ${migrations.length} in total`;
    const changes = pending.length > 0 ? [`${pending.length} migration(s) applied`] : [];
    return done(summary, { ...db, pendingMigrations: 0 }, changes);
  },
});

/**
 * A pending migration's tables must not exist yet: one created without IF NOT EXISTS that is there
 * already would fail the migration (a history that lost its rows, or tables made by hand). Checked
 * the same way by bootstrap and check, so that check predicts the failure (exit 5).
 */
async function assertNotAppliedYet(sql: Sql, schema: string, pending: readonly Migration[]): Promise<void> {
  const created = pending.flatMap((m) => createdTables(m.sql).map((table) => ({ migration: m.name, table })));
  if (created.length === 0) return;
  const found = await sql<{ relname: string }[]>`
    select c.relname from pg_class c
    where c.relnamespace = ${schema}::regnamespace
      and c.relname in (
        select value from json_array_elements_text(${JSON.stringify(created.map((c) => c.table))}::text::json))
    order by 1`;
  if (found.length === 0) return;
  const names = found.map((r) => r.relname);
  const migration = created.find((c) => names.includes(c.table))?.migration;
  throw new MigrationError(
    `migration ${migration} is not in the history (${HISTORY_TABLE}), but table(s) it creates already exist in ` +
      `schema ${schema}: ${names.join(', ')}; applying it would fail. ` +
      `The history lost rows, or these tables were made by hand`,
    `if this schema was migrated by superfasttt-bootstrap, restore the missing rows of ${HISTORY_TABLE} (name and ` +
      `checksum of each applied migration) from a backup; otherwise give the instance an empty schema`,
  );
}
