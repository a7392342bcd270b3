/**
 * What `fleet check` and `fleet bootstrap` run for one instance: the very `check` and bootstrap of
 * an init container, in this process, with the instance's .env as their whole environment, turned
 * into the instance's row.
 */
import migrations from 'virtual:migrations';
import { runBootstrap } from '../commands/bootstrap.js';
import { ConfigError } from '../errors.js';
import { DRIFT_CHECK, runChecks } from '../report/check-report.js';
import type { RunInstance } from './fleet-run.js';

export const checkInstance: RunInstance = async (_instance, input, opts) => {
  const report = await runChecks(input, { write: opts.write });
  for (const c of report.checks) {
    const fields = { step: c.name, durationMs: c.duration_ms, ...(c.fix && { fix: c.fix }) };
    if (c.status === 'fail') input.log.error(c.message, { ...fields, exit_code: c.exit_code });
    else if (c.status === 'warn') input.log.warn(c.message, fields);
    else input.log.info(c.message, fields);
  }
  const line = (name: string) => report.checks.find((c) => c.name === name);
  const migrated = line('migrations')?.facts;
  const admin = line('superadmin')?.facts;
  const failed = report.checks.find((c) => c.status === 'fail');
  const facts = {
    applied: typeof migrated?.applied === 'number' ? migrated.applied : null,
    pending: typeof migrated?.pending === 'number' ? migrated.pending : null,
    setup_completed: typeof admin?.setup_completed === 'boolean' ? admin.setup_completed : null,
    admin_present: typeof admin?.admin_present === 'boolean' ? admin.admin_present : null,
    drift: line(DRIFT_CHECK)?.drift?.length ?? null,
  };
  if (failed) {
    return {
      status: input.signal.aborted ? 'interrupted' : 'failed',
      exit_code: failed.exit_code ?? 1,
      ...facts,
      message: `${failed.name}: ${failed.message}`,
    };
  }
  // A warning with no differences listed: the schema could not be compared, which is no "ok" either.
  const driftLine = line(DRIFT_CHECK);
  if (driftLine?.status === 'warn') return { status: 'drifted', exit_code: 0, ...facts, message: driftLine.message };
  const todo = [
    facts.pending ? `${facts.pending} migration(s) pending` : '',
    facts.setup_completed === false ? 'setup not completed' : '',
    facts.admin_present === false ? 'super admin missing' : '',
  ].filter(Boolean);
  if (todo.length > 0)
    return { status: 'pending', exit_code: 0, ...facts, message: `the bootstrap has work: ${todo.join(', ')}` };
  return { status: 'ok', exit_code: 0, ...facts, message: 'bootstrapped and up to date' };
};

export const bootstrapInstance: RunInstance = async (instance, input) => {
  if (input.env.SKIP_SETUP !== 'true')
    throw new ConfigError(
      `SKIP_SETUP is not true in ${instance.file}: its bootstrap would change nothing (the setup wizard stays)`,
      [],
      'provision writes SKIP_SETUP=true; set it in that .env, or leave the instance out of the run',
    );
  const changes = (await runBootstrap(input)) ?? [];
  return {
    status: changes.length > 0 ? 'bootstrapped' : 'complete',
    exit_code: 0,
    applied: migrations.length,
    pending: 0,
    setup_completed: true,
    admin_present: true,
    drift: null,
    message: changes.length > 0 ? changes.join('; ') : 'nothing to do: already bootstrapped and up to date',
  };
};
