/**
 * The super admin exists with role super_admin, the non-secret settings are recorded, and the
 * completion marker is set, in ONE transaction: a crash can never leave an instance marked done
 * without its admin or its settings.
 * An existing account keeps its password and names (it may have changed them since) unless
 * AUTO_SUPERADMIN_RESET_PASSWORD=true; a non-admin account is promoted.
 */
import type { TransactionSql } from 'postgres';
import { SuperAdminError } from '../errors.js';
import { hashPassword, verifyPassword } from '../password.js';
import { type AdminTarget, instanceSettings } from '../config/targets.js';
import { emailStep } from './email.js';
import { type MigratedSession, migrationsStep } from './migrations.js';
import { defineStep, done, type StepContext } from './step.js';
import { storageStep } from './storage.js';
import { WELCOME_KEY } from './tables.js';

interface ExistingUser {
  id: string;
  role: string;
  password_hash: string;
}

export const superAdminStep = defineStep({
  name: 'superadmin',
  errorClass: SuperAdminError,
  needs: { db: migrationsStep },
  // Nothing is marked done before storage and email passed.
  after: [storageStep, emailStep],
  async inspect(ctx, { db }) {
    const found = await report(ctx, db);
    // Rehearsed only on the tables the bootstrap would write (no migration pending), and not with
    // --no-write (check then writes nothing at all).
    if (found.ready && db.pendingMigrations === 0 && ctx.write) await rehearse(ctx, db);
    return done(found.summary, undefined);
  },
  async apply(ctx, { db }) {
    const { sql } = db;
    const email = ctx.config.admin.email;
    // Hashed outside the transaction: the lock step already keeps other bootstraps away.
    const plan = await planAdmin(db, ctx.config.admin);
    const { actions, marked } = await sql.begin((tx) => writeAdmin(tx, ctx, plan));
    if (marked) actions.push('setup marked as completed');
    const summary =
      actions.length > 0
        ? actions.join('; ')
        : `super admin ${email} already present; setup already completed (nothing changed)`;
    return done(summary, undefined, actions);
  },
});

/** A new account and its hash, or the existing one with a new hash only when its password is reset. */
type AdminPlan = { existing: undefined; hash: string } | { existing: ExistingUser; hash: string | undefined };

async function planAdmin(db: MigratedSession, admin: AdminTarget): Promise<AdminPlan> {
  const [existing] = await db.sql<
    ExistingUser[]
  >`select id, role, password_hash from users where email = ${admin.email}`;
  if (!existing) return { existing, hash: await hashPassword(admin.password) };
  const reset = admin.resetPassword && !(await verifyPassword(existing.password_hash, admin.password));
  return { existing, hash: reset ? await hashPassword(admin.password) : undefined };
}

/** The super admin, the settings and the marker: the body of the one transaction. */
async function writeAdmin(
  tx: TransactionSql,
  ctx: StepContext,
  plan: AdminPlan,
  rehearsal = false,
): Promise<{ actions: string[]; marked: boolean }> {
  const admin = ctx.config.admin;
  const email = admin.email;
  const actions: string[] = [];
  if (!plan.existing) {
    await tx`insert into users (email, first_name, last_name, phone, password_hash, role)
             values (${email}, ${admin.firstName}, ${admin.lastName},
                     ${admin.phone ?? null}, ${plan.hash}, 'super_admin')`;
    actions.push(`super admin ${email} created`);
    if (admin.welcome) {
      await tx`insert into instance_settings (key, value) values (${WELCOME_KEY}, ${tx.json({ status: 'pending', to: email })})
               on conflict (key) do update set value = excluded.value, updated_at = now()`;
    }
  } else {
    const existing = plan.existing;
    if (existing.role !== 'super_admin') {
      await tx`update users set role = 'super_admin', updated_at = now() where id = ${existing.id}`;
      actions.push(`existing user ${email} promoted from ${existing.role} to super_admin`);
      if (!rehearsal)
        ctx.log.warn(`user ${email} existed with role ${existing.role}: promoted to super_admin`, {
          step: 'superadmin',
        });
    }
    if (plan.hash) {
      await tx`update users set password_hash = ${plan.hash}, updated_at = now() where id = ${existing.id}`;
      actions.push(`password of ${email} reset (AUTO_SUPERADMIN_RESET_PASSWORD=true)`);
    }
  }
  // Recorded only when different, so a re-run writes nothing.
  const changed: string[] = [];
  for (const [key, value] of Object.entries(instanceSettings(ctx.config))) {
    const rows = await tx`insert into instance_settings (key, value) values (${key}, ${tx.json(value as never)})
      on conflict (key) do update set value = excluded.value, updated_at = now()
      where instance_settings.value is distinct from excluded.value returning key`;
    if (rows.count > 0) changed.push(key);
  }
  if (changed.length > 0) actions.push(`settings recorded (${changed.join(', ')})`);
  const rows = await tx`update setup_state
    set completed = true, completed_at = now(), completed_by = 'bootstrap', bootstrap_version = ${ctx.version}
    where not completed returning 1`;
  return { actions, marked: rows.count > 0 };
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
  await db.sql
    .begin('read write', async (tx) => {
      await writeAdmin(tx, ctx, plan, true);
      // Deferred constraints (the app's) are checked at COMMIT, which a rehearsal never reaches.
      await tx`set constraints all immediate`;
      throw new Rehearsed();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Rehearsed)) throw error;
    });
}

/** check: what the bootstrap would find, without changing it. */
async function report(ctx: StepContext, db: MigratedSession): Promise<{ ready: boolean; summary: string }> {
  const { sql } = db;
  const email = ctx.config.admin.email;
  const [tables] = await sql<
    { ready: boolean }[]
  >`select to_regclass('users') is not null and to_regclass('setup_state') is not null as ready`;
  if (!tables?.ready)
    return {
      ready: false,
      summary: `super admin ${email} missing, setup not completed (tables not created yet: the bootstrap creates them)`,
    };
  const [user] = await sql<{ role: string }[]>`select role from users where email = ${email}`;
  const [state] = await sql<
    { completed: boolean; completed_by: string | null; completed_at: Date | null }[]
  >`select completed, completed_by, completed_at from setup_state`;
  const admin = !user
    ? `super admin ${email} missing (the bootstrap creates it)`
    : user.role === 'super_admin'
      ? `super admin ${email} present`
      : `user ${email} present as ${user.role}, not super_admin (the bootstrap promotes it)`;
  const marker = state?.completed
    ? `setup completed by ${state.completed_by} at ${state.completed_at?.toISOString()}`
    : 'setup not completed (the setup wizard is still enabled)';
  return { ready: true, summary: `${admin}; ${marker}` };
}
