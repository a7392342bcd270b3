/**
 * Is there anything left for the bootstrap to do? Read-only, on the tenant's session: every
 * migration applied (same checksums), the setup marked as completed, the super admin present with
 * its role (and its password when AUTO_SUPERADMIN_RESET_PASSWORD=true), the settings as recorded,
 * no welcome email pending. When all hold, every later step would change nothing: the lock step
 * then confirms the instance without taking the lock, so that the replicas of a complete instance
 * (every restart of a Deployment of 50) never queue behind each other, and the waiters of a first
 * bootstrap are all released together when it ends. Anything else, or any doubt (a changed
 * migration, a table missing): undefined, and the bootstrap takes the lock and does, or reports, it.
 */
import { isDeepStrictEqual } from 'node:util';
import migrations from 'virtual:migrations';
import { instanceSettings } from '../config/targets.js';
import { kyselyOver } from '../db/kysely.js';
import { findUserByEmail, readHistory, readSetupState, readWelcomeEmail, tablesExist } from '../db/queries.js';
import { HISTORY_TABLE } from '../db/tables.js';
import { verifyPassword } from '../password.js';
import { pendingMigrations } from './migration-plan.js';
import type { TenantSession } from './schema.js';
import type { StepContext } from './step.js';

/** A one-line account of a complete instance, or undefined when the bootstrap has work (or doubts). */
export async function completeAlready(ctx: StepContext, db: TenantSession): Promise<string | undefined> {
  const kysely = await kyselyOver(db.sql);
  if (!(await tablesExist(kysely, [HISTORY_TABLE, 'users', 'setup_state', 'instance_settings']))) return undefined;
  let pending: number;
  try {
    pending = pendingMigrations(migrations, await readHistory(kysely)).length;
  } catch {
    return undefined; // a changed or unknown migration: the migrations step reports it
  }
  // Before any other table is read: a bootstrap migrating now holds its tables' locks, but its
  // migration is not in the history until it commits, so this returns before reading them.
  if (pending > 0) return undefined;
  const state = await readSetupState(kysely);
  if (!state?.completed) return undefined;
  const { admin } = ctx.config;
  const user = await findUserByEmail(kysely, admin.email);
  if (user?.role !== 'super_admin') return undefined;
  if (admin.resetPassword && !(await verifyPassword(user.password_hash, admin.password))) return undefined;
  if (admin.welcome && (await readWelcomeEmail(kysely))?.status === 'pending') return undefined;
  // As jsonb compares them (recordSettingIfChanged): key order does not matter, undefined fields are not stored.
  const wanted = Object.entries(instanceSettings(ctx.config));
  const stored = await kysely
    .selectFrom('instance_settings')
    .select(['key', 'value'])
    .where(
      'key',
      'in',
      wanted.map(([key]) => key),
    )
    .execute();
  const recorded = new Map(stored.map((row) => [row.key, row.value]));
  for (const [key, value] of wanted) {
    if (!isDeepStrictEqual(recorded.get(key), JSON.parse(JSON.stringify(value)))) return undefined;
  }
  return (
    `schema ${db.schema} is bootstrapped and up to date (${migrations.length} migration(s), super admin ` +
    `${admin.email}, setup completed)`
  );
}
