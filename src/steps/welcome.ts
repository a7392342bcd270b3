/**
 * Welcome step (AUTO_SUPERADMIN_WELCOME_EMAIL=true): one email to the super admin with the login
 * link, never the password. The superadmin step records it as pending when it creates the
 * account (instance_settings key welcome_email); this step sends it and records it as sent. If
 * sending fails the run exits 7 and the next run sends it: at least once, never for an account
 * that already existed.
 */
import { EmailError } from '../errors.js';
import type { Mail } from '../email/provider.js';
import { dbOf, type Step } from './step.js';

export const WELCOME_KEY = 'welcome_email';

export const welcomeStep: Step = {
  name: 'welcome',
  errorClass: EmailError,
  needs: ['superadmin', 'email'],
  async run(ctx) {
    const env = ctx.env;
    if (!env.AUTO_SUPERADMIN_WELCOME_EMAIL) return 'AUTO_SUPERADMIN_WELCOME_EMAIL is not true: no welcome email';
    const { sql } = dbOf(ctx);
    if (ctx.mode === 'check') {
      const [table] = await sql<{ ready: boolean }[]>`select to_regclass('instance_settings') is not null as ready`;
      const [pending] = table?.ready
        ? await sql<{ value: { status?: string } }[]>`select value from instance_settings where key = ${WELCOME_KEY}`
        : [];
      return pending
        ? `welcome email ${pending.value.status}`
        : 'no welcome email recorded (sent when the bootstrap creates the account)';
    }
    const [row] = await sql<
      { value: { status?: string; to?: string } }[]
    >`select value from instance_settings where key = ${WELCOME_KEY}`;
    if (row?.value.status === 'sent') return `welcome email already sent to ${row.value.to}`;
    if (row?.value.status !== 'pending') return 'the super admin account existed before: no welcome email';
    if (!ctx.email) throw new Error('internal: welcome email pending without an email provider');

    const to = row.value.to ?? env.AUTO_SUPERADMIN_EMAIL;
    await ctx.email.send(welcomeMail(to, env.AUTO_SUPERADMIN_FIRSTNAME, env.APP_URL!), ctx.signal);
    await sql`update instance_settings set value = ${sql.json({ status: 'sent', to, sent_at: new Date().toISOString() })}, updated_at = now()
              where key = ${WELCOME_KEY}`;
    ctx.changes.push(`welcome email sent to ${to}`);
    return `welcome email sent to ${to}`;
  },
};

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
    `<p>Hello ${escapeHtml(firstName)},</p><p>Your superfasttt instance is ready and your super admin account has been created.</p>` +
    `<p><a href="${escapeHtml(link)}">Sign in</a> with this email address (${escapeHtml(to)}).</p>` +
    '<p>Your password was set by whoever deployed the instance; it is not sent by email.</p>';
  return { to, subject: 'Your superfasttt instance is ready', text, html };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
