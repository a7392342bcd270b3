/**
 * The super admin exists with role super_admin, the non-secret settings are recorded, and the
 * completion marker is set, in ONE transaction: a crash can never leave an instance marked done
 * without its admin or its settings.
 * An existing account keeps its password and names (it may have changed them since) unless
 * AUTO_SUPERADMIN_RESET_PASSWORD=true; a non-admin account is promoted.
 */
import { type AdminTarget, instanceSettings } from '../config/targets.js';
import { type Db, kyselyOver, kyselyOverLoaded, loadKysely } from '../db/kysely.js';
import {
  findUserByEmail,
  insertSuperAdmin,
  markSetupCompleted,
  markWelcomePending,
  promoteToSuperAdmin,
  readSetupState,
  recordSettingIfChanged,
  setPasswordHash,
  tablesExist,
  type UserLogin,
} from '../db/queries.js';
import { SuperAdminError } from '../errors.js';
import { hashPassword, verifyPassword } from '../password.js';
import { emailStep } from './email.js';
import { type MigratedSession, migrationsStep } from './migrations.js';
import { defineStep, done, type Facts, type StepContext } from './step.js';
import { storageStep } from './storage.js';

export const superAdminStep = defineStep({
  name: 'superadmin',
  errorClass: SuperAdminError,
  needs: { db: migrationsStep },
  // Nothing is marked done before storage and email passed.
  after: [storageStep, emailStep],
  prepare() {
    loadKysely().catch(() => {}); // the step awaits it again and reports
  },
  async inspect(ctx, { db }) {
    const found = await report(ctx, await kyselyOver(db.sql));
    // Rehearsed only on the tables the bootstrap would write (no migration pending), and not with
    // --no-write (check then writes nothing at all).
    if (found.ready && db.pendingMigrations === 0 && ctx.write) await rehearse(ctx, db);
    return done(found.summary, undefined, undefined, found.facts);
  },
  async apply(ctx, { db }) {
    const email = ctx.config.admin.email;
    // Hashed outside the transaction: the lock step already keeps other bootstraps away.
    const plan = await planAdmin(db, ctx.config.admin);
    const kysely = await loadKysely();
    const { actions, marked } = await db.sql.begin((tx) => writeAdmin(kyselyOverLoaded(kysely, tx), ctx, plan));
    if (marked) actions.push('setup marked as completed');
    const summary =
      actions.length > 0
        ? actions.join('; ')
        : `super admin ${email} already present; setup already completed (nothing changed)`;
    return done(summary, undefined, actions);
  },
});

/** A new account and its hash, or the existing one with a new hash only when its password is reset. */
type AdminPlan = { existing: undefined; hash: string } | { existing: UserLogin; hash: string | undefined };

async function planAdmin(db: MigratedSession, admin: AdminTarget): Promise<AdminPlan> {
  const existing = await findUserByEmail(await kyselyOver(db.sql), admin.email);
  if (!existing) return { existing, hash: await hashPassword(admin.password) };
  const reset = admin.resetPassword && !(await verifyPassword(existing.password_hash, admin.password));
  return { existing, hash: reset ? await hashPassword(admin.password) : undefined };
}

/** The super admin, the settings and the marker: the body of the one transaction. */
async function writeAdmin(
  tx: Db,
  ctx: StepContext,
  plan: AdminPlan,
  rehearsal = false,
): Promise<{ actions: string[]; marked: boolean }> {
  const admin = ctx.config.admin;
  const email = admin.email;
  const actions: string[] = [];
  if (!plan.existing) {
    await insertSuperAdmin(tx, {
      email,
      first_name: admin.firstName,
      last_name: admin.lastName,
      phone: admin.phone,
      password_hash: plan.hash,
    });
    actions.push(`super admin ${email} created`);
    if (admin.welcome) await markWelcomePending(tx, email);
  } else {
    const existing = plan.existing;
    if (existing.role !== 'super_admin') {
      await promoteToSuperAdmin(tx, existing.id);
      actions.push(`existing user ${email} promoted from ${existing.role} to super_admin`);
      if (!rehearsal) {
        ctx.log.warn(`user ${email} existed with role ${existing.role}: promoted to super_admin`, {
          step: 'superadmin',
        });
      }
    }
    if (plan.hash) {
      await setPasswordHash(tx, existing.id, plan.hash);
      actions.push(`password of ${email} reset (AUTO_SUPERADMIN_RESET_PASSWORD=true)`);
    }
  }
  // Recorded only when different, so a re-run writes nothing.
  const changed: string[] = [];
  for (const [key, value] of Object.entries(instanceSettings(ctx.config))) {
    if (await recordSettingIfChanged(tx, key, value)) changed.push(key);
  }
  if (changed.length > 0) actions.push(`settings recorded (${changed.join(', ')})`);
  return { actions, marked: await markSetupCompleted(tx, ctx.version) };
}

/** Thrown to roll the rehearsal back. */
class Rehearsed extends Error {}

/**
 * check: the bootstrap's very transaction, in a transaction explicitly READ WRITE (the session's
 * default stays read-only) that is always rolled back, so that whatever would refuse it (a
 * constraint, a column the app added NOT NULL, a lock past DATABASE_LOCK_TIMEOUT) fails check as
 * it would fail the bootstrap. Nothing is kept but sequence values (nextval is not rolled back: a
 * column the app added with a default from a sequence would advance it); only the migrations' own
 * triggers can run (the schema step made sure of it).
 */
async function rehearse(ctx: StepContext, db: MigratedSession): Promise<void> {
  const plan = await planAdmin(db, ctx.config.admin);
  const kysely = await loadKysely();
  await db.sql
    .begin('read write', async (tx) => {
      await writeAdmin(kyselyOverLoaded(kysely, tx), ctx, plan, true);
      // Deferred constraints (the app's) are checked at COMMIT, which a rehearsal never reaches.
      await tx`set constraints all immediate`;
      throw new Rehearsed();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Rehearsed)) throw error;
    });
}

/** check: what the bootstrap would find, without changing it. */
async function report(ctx: StepContext, db: Db): Promise<{ ready: boolean; summary: string; facts: Facts }> {
  const email = ctx.config.admin.email;
  if (!(await tablesExist(db, ['users', 'setup_state']))) {
    return {
      ready: false,
      summary: `super admin ${email} missing, setup not completed (tables not created yet: the bootstrap creates them)`,
      facts: { admin_present: false, setup_completed: false },
    };
  }
  const user = await findUserByEmail(db, email);
  const state = await readSetupState(db);
  const admin = !user
    ? `super admin ${email} missing (the bootstrap creates it)`
    : user.role === 'super_admin'
      ? `super admin ${email} present`
      : `user ${email} present as ${user.role}, not super_admin (the bootstrap promotes it)`;
  const marker = state?.completed
    ? `setup completed by ${state.completed_by} at ${state.completed_at?.toISOString()}`
    : 'setup not completed (the setup wizard is still enabled)';
  const facts = { admin_present: user?.role === 'super_admin', setup_completed: state?.completed === true };
  return { ready: true, summary: `${admin}; ${marker}`, facts };
}
