/**
 * The `bootstrap` command: SKIP_SETUP gate, configuration, then the steps in order.
 * Storage and email verification slot in between migrations and the super admin.
 */
import migrations from 'virtual:migrations';
import { ConfigError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import { formatDuration, type Logger } from '../log.js';
import { databaseStep } from '../steps/database.js';
import { lockStep } from '../steps/lock.js';
import { migrationsStep } from '../steps/migrations.js';
import { schemaStep } from '../steps/schema.js';
import { runSteps, type Pipeline, type RunContext } from '../steps/step.js';
import { emailStep } from '../steps/email.js';
import { storageStep } from '../steps/storage.js';
import { superAdminStep } from '../steps/superadmin.js';
import { welcomeStep } from '../steps/welcome.js';

/**
 * The database chain, storage and email are independent until the super admin: they run at the
 * same time, and all must succeed before the super admin exists and the setup is marked done.
 */
export const BOOTSTRAP_STEPS: Pipeline = [
  { concurrent: [[databaseStep, schemaStep, lockStep, migrationsStep(migrations)], [storageStep], [emailStep]] },
  superAdminStep,
  welcomeStep,
];

export interface CommandInput {
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal: AbortSignal;
  version: string;
}

export async function bootstrap({ env: raw, log, signal, version }: CommandInput): Promise<number> {
  const started = performance.now();
  const skip = raw.SKIP_SETUP ?? '';
  if (skip === '' || skip === 'false') {
    log.info(
      `SKIP_SETUP is ${skip === '' ? 'not set' : 'false'}: the setup wizard stays enabled; nothing was changed`,
      { step: 'setup' },
    );
    return 0;
  }
  if (skip !== 'true') {
    throw new ConfigError(
      `SKIP_SETUP must be true or false, not ${JSON.stringify(skip.slice(0, 40))}: an instance left in wizard mode by a typo can be claimed by whoever opens it first`,
      [],
      'set SKIP_SETUP=true to bootstrap, or remove it (or set false) to keep the setup wizard',
    );
  }

  const config = loadConfig(raw);
  for (const warning of config.warnings) log.warn(warning, { step: 'config' });
  log.info(`configuration valid for schema ${config.env.DATABASE_SCHEMA}`, {
    step: 'config',
    durationMs: performance.now() - started,
  });

  const ctx: RunContext = { mode: 'apply', storageProbe: true, env: config.env, log, signal, version, changes: [] };
  // Closing the sockets is what stops a statement blocked on the server: client_connection_check_interval
  // makes its backend notice within a second, cancel it and roll its transaction back.
  const closeOnAbort = () => {
    ctx.heldLock?.destroy();
    void ctx.db?.sql.end({ timeout: 0 });
  };
  signal.addEventListener('abort', closeOnAbort, { once: true });
  try {
    await runSteps(BOOTSTRAP_STEPS, ctx);
  } finally {
    signal.removeEventListener('abort', closeOnAbort);
    ctx.email?.close();
    // Ending the lock's transaction releases the lock; a failure there must not mask the run's outcome.
    await ctx.heldLock?.release().catch(() => {});
    await ctx.db?.sql.end({ timeout: 5 });
  }
  const outcome = ctx.changes.length > 0 ? ctx.changes.join('; ') : 'already bootstrapped, nothing changed';
  log.info(
    `bootstrap of ${config.env.DATABASE_SCHEMA} complete in ${formatDuration(performance.now() - started)}: ${outcome}`,
    {
      step: 'summary',
      durationMs: performance.now() - started,
    },
  );
  return 0;
}
