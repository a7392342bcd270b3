/**
 * The `bootstrap` command: the SKIP_SETUP gate, the configuration, then the steps (pipeline.ts),
 * one log line each, and one summary line.
 */
import { loadConfig } from '../config/load.js';
import { BootstrapError, ConfigError } from '../errors.js';
import { formatDuration } from '../log.js';
import { BOOTSTRAP_STEPS } from '../steps/pipeline.js';
import { Resources, runSteps, type StepContext, type StepResult, throwIfAborted } from '../steps/step.js';
import type { CommandInput } from './input.js';

export async function bootstrap(input: CommandInput): Promise<number> {
  await runBootstrap(input);
  return 0;
}

/**
 * The bootstrap of one instance from `input.env`: what changed (empty: nothing was left to do), or
 * undefined when SKIP_SETUP leaves the wizard. Throws the first failure (a BootstrapError).
 */
export async function runBootstrap({ env: raw, log, signal, version }: CommandInput): Promise<string[] | undefined> {
  const started = performance.now();
  const skip = raw.SKIP_SETUP ?? '';
  if (skip === '' || skip === 'false') {
    const value = skip === '' ? 'not set' : 'false';
    log.info(`SKIP_SETUP is ${value}: the setup wizard stays enabled; nothing was changed`, { step: 'setup' });
    return undefined;
  }
  if (skip !== 'true') {
    throw new ConfigError(
      `SKIP_SETUP must be true or false, not ${JSON.stringify(skip.slice(0, 40))}: an instance left in wizard mode ` +
        `by a typo can be claimed by whoever opens it first`,
      [],
      'set SKIP_SETUP=true to bootstrap, or remove it (or set false) to keep the setup wizard',
    );
  }

  const { config, warnings } = loadConfig(raw);
  for (const warning of warnings) log.warn(warning, { step: 'config' });
  log.info(`configuration valid for schema ${config.schema}`, {
    step: 'config',
    durationMs: performance.now() - started,
  });

  const resources = new Resources();
  const ctx: StepContext = { config, log, signal, version, write: true, resources };
  // Closing the sockets is what stops a statement blocked on the server (see database.ts).
  const destroy = () => resources.destroyAll();
  signal.addEventListener('abort', destroy, { once: true });
  let results: StepResult[];
  try {
    results = await runSteps(BOOTSTRAP_STEPS, ctx, 'apply', (result) => {
      if (result.status === 'pass') log.info(result.summary, { step: result.step.name, durationMs: result.durationMs });
    });
  } finally {
    signal.removeEventListener('abort', destroy);
    await resources.closeAll();
  }
  // A signal stops the run with its own exit code, whatever the steps it cut short reported.
  throwIfAborted(signal);
  // Every failure is shown; the first in the steps' order decides the exit code, so that it does
  // not depend on which server answered first.
  const [first, ...others] = results.filter((r) => r.status === 'fail').map((r) => r.error);
  for (const error of others) {
    if (error instanceof BootstrapError)
      log.error(error.message, { ...(error.fix && { fix: error.fix }), exit_code: error.exitCode });
  }
  if (first !== undefined) throw first;

  const changes = results.flatMap((r) => r.changes);
  const outcome = changes.length > 0 ? changes.join('; ') : 'already bootstrapped, nothing changed';
  const took = performance.now() - started;
  log.info(`bootstrap of ${config.schema} complete in ${formatDuration(took)}: ${outcome}`, {
    step: 'summary',
    durationMs: took,
  });
  return changes;
}
