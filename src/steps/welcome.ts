/**
 * Welcome step (AUTO_SUPERADMIN_WELCOME_EMAIL=true): one email to the super admin with the login
 * link, never the password. The superadmin step records it as pending when it creates the
 * account (instance_settings key welcome_email); this step sends it and records it as sent. If
 * sending fails the run exits 7 and the next run sends it: at least once, never for an account
 * that already existed.
 */
import { kyselyOver } from '../db/kysely.js';
import { markWelcomeSent, readWelcomeEmail, tablesExist } from '../db/queries.js';
import { EmailError } from '../errors.js';
import type { Mail } from '../email/mail.js';
import { emailStep } from './email.js';
import { migrationsStep } from './migrations.js';
import { defineStep, done } from './step.js';
import { superAdminStep } from './superadmin.js';

export const welcomeStep = defineStep({
  name: 'welcome',
  errorClass: EmailError,
  needs: { db: migrationsStep, admin: superAdminStep, email: emailStep },
  async inspect(ctx, { db }) {
    if (!ctx.config.admin.welcome) return done(NOT_ASKED, undefined);
    const kysely = await kyselyOver(db.sql);
    const state = (await tablesExist(kysely, ['instance_settings'])) ? await readWelcomeEmail(kysely) : undefined;
    const summary = state
      ? `welcome email ${state.status}`
      : 'no welcome email recorded (sent when the bootstrap creates the account)';
    return done(summary, undefined);
  },
  async apply(ctx, { db, email }) {
    const welcome = ctx.config.admin.welcome;
    if (!welcome) return done(NOT_ASKED, undefined);
    const kysely = await kyselyOver(db.sql);
    const state = await readWelcomeEmail(kysely);
    if (state?.status === 'sent') return done(`welcome email already sent to ${state.to}`, undefined);
    if (state?.status !== 'pending') return done('the super admin account existed before: no welcome email', undefined);
    // The configuration gives a welcome email its provider (instance.ts), so the email step made one.
    if (!email) throw new Error('internal: welcome email pending without an email provider');

    const to = state.to ?? ctx.config.admin.email;
    await email.send(welcomeMail(to, ctx.config.admin.firstName, welcome.appUrl), ctx.signal);
    await markWelcomeSent(kysely, to);
    return done(`welcome email sent to ${to}`, undefined, [`welcome email sent to ${to}`]);
  },
});

const NOT_ASKED = 'AUTO_SUPERADMIN_WELCOME_EMAIL is not true: no welcome email';

export function loginUrl(appUrl: string): string {
  return `${appUrl.replace(/\/+$/, '')}/login`;
}

function welcomeMail(to: string, firstName: string, appUrl: string): Mail {
  const link = loginUrl(appUrl);
  const text = [
    `Hello ${firstName},`,
    '',
    'Your superfasttt instance is ready and your super admin account has been created.',
    `Sign in at ${link} with this email address (${to}).`,
    '',
    'Your password was set by whoever deployed the instance; it is not sent by email.',
  ].join('\n');
  const html =
    `<p>Hello ${escapeHtml(firstName)},</p><p>Your superfasttt instance ` +
    `is ready and your super admin account has been created.</p>` +
    `<p><a href="${escapeHtml(link)}">Sign in</a> with this email address (${escapeHtml(to)}).</p>` +
    '<p>Your password was set by whoever deployed the instance; it is not sent by email.</p>';
  return { to, subject: 'Your superfasttt instance is ready', text, html };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
