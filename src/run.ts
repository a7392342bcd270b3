/**
 * Parse the command line, run the command, map the outcome to an exit code.
 * Operational failures (BootstrapError) print one clear message and its fix; anything else is a
 * bug and is the only case that prints a stack trace (exit 1).
 */
import { BootstrapError, ConfigError, INTERNAL_ERROR_EXIT_CODE, InterruptedError } from './errors.js';
import { renderHelp } from './config/docs.js';
import { createLogger, loggerOptionsFromEnv, type Logger } from './log.js';
import { redact } from './redact.js';
import { libpqEnvironmentWarning, neutraliseLibpqEnvironment } from './db/libpq-env.js';
import { writeTerminationLog } from './termination-log.js';
import { bootstrap } from './commands/bootstrap.js';

async function runCommand(argv: string[], VERSION: string): Promise<number> {
  const env = process.env;
  // Before anything can read them: postgres.js takes PGHOST, PGPASSWORD, PGSSLMODE... as defaults.
  const ignoredPg = neutraliseLibpqEnvironment(env);
  // The AWS SDK warns about Node versions on stderr: noise for the operator, not an action.
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = createLogger(loggerOptionsFromEnv(env));
  // Node's own warnings would break one-JSON-object-per-line and are noise for the operator.
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn(`node: ${warning.message}`));
  // Libraries print advice with console.*: through the logger it stays one line, redacted, JSON when asked.
  const library = (...args: unknown[]) => log.warn(args.map(String).join(' ').trim(), { step: 'library' });
  console.log = console.info = console.warn = console.error = console.debug = library;

  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn(`received ${signal}: stopping; nothing will be marked as done`);
    controller.abort(signal);
    // Whatever is in flight is cancelled by the steps; never hang on the way out.
    setTimeout(() => {
      const stopped = new InterruptedError(signal);
      log.error(`${stopped.message} (an operation did not stop within 5 s)`, { exit_code: stopped.exitCode });
      process.exit(stopped.exitCode);
    }, 5000).unref();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  try {
    const { command, args } = parseArgs(argv);
    // Commands other than bootstrap print their report on stdout: every log line goes to stderr.
    const toStderr = createLogger({
      ...loggerOptionsFromEnv(env),
      stdout: (line) => process.stderr.write(line + '\n'),
    });
    const input = { env, log: toStderr, signal: controller.signal, version: VERSION };
    const pgWarning = libpqEnvironmentWarning(ignoredPg);
    if (pgWarning && command !== 'help' && command !== 'version')
      (command === 'bootstrap' ? log : toStderr).warn(pgWarning, { step: 'config' });
    switch (command) {
      case 'help':
        process.stdout.write(renderHelp(VERSION) + '\n');
        return 0;
      case 'version':
        process.stdout.write(VERSION + '\n');
        return 0;
      case 'bootstrap':
        return await bootstrap({ env, log, signal: controller.signal, version: VERSION });
      // The other commands are loaded only when asked for: every pod start runs the bootstrap alone.
      case 'check': {
        const { check, checkOptions } = await import('./commands/check.js');
        return await check(input, checkOptions(args));
      }
      case 'provision': {
        const { provision, provisionOptions } = await import('./commands/provision.js');
        return await provision(input, provisionOptions(args));
      }
      case 'deprovision': {
        const { deprovision, deprovisionOptions } = await import('./commands/deprovision.js');
        return await deprovision(input, deprovisionOptions(args));
      }
      case 'fleet': {
        const { fleet, fleetOptions } = await import('./commands/fleet.js');
        return await fleet(input, fleetOptions(args));
      }
    }
  } catch (error) {
    return reportFailure(error, log, env.TERMINATION_LOG);
  }
}

type Command = 'bootstrap' | 'check' | 'provision' | 'deprovision' | 'fleet' | 'help' | 'version';

function parseArgs(argv: string[]): { command: Command; args: string[] } {
  const [first, ...args] = argv;
  const command = first === undefined ? 'bootstrap' : ALIASES[first];
  if (!command) throw new ConfigError(`unknown command or option: ${first}`, [], 'run with --help to see the commands');
  if (args.length > 0 && !['check', 'provision', 'deprovision', 'fleet'].includes(command)) {
    throw new ConfigError(
      `unexpected arguments for ${command}: ${args.join(' ')}`,
      [],
      'run with --help to see the commands',
    );
  }
  return { command, args };
}

const ALIASES: Record<string, Command> = {
  bootstrap: 'bootstrap',
  check: 'check',
  provision: 'provision',
  deprovision: 'deprovision',
  fleet: 'fleet',
  '--help': 'help',
  '-h': 'help',
  help: 'help',
  '--version': 'version',
  '-V': 'version',
  version: 'version',
};

function reportFailure(error: unknown, log: Logger, terminationLog: string | undefined): number {
  if (error instanceof BootstrapError) {
    const problems = error instanceof ConfigError ? error.problems : [];
    log.error(error.message, {
      ...(problems.length > 0 && { problems }),
      ...(error.fix && { fix: error.fix }),
      exit_code: error.exitCode,
    });
    writeTerminationLog(
      [error.message, ...problems.map((p) => `  - ${p}`), ...(error.fix ? [`fix: ${error.fix}`] : [])].join('\n'),
      terminationLog,
    );
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? (error.stack ?? message) : message;
  log.error(`internal error (a bug, please report it): ${message}`, { stack });
  writeTerminationLog(`internal error: ${stack}`, terminationLog);
  return INTERNAL_ERROR_EXIT_CODE;
}

export function start(argv: string[], version: string): void {
  runCommand(argv, version).then(
    (code) => {
      process.exitCode = code;
      // Safety net: a forgotten handle must not keep a one-shot container alive.
      setTimeout(() => process.exit(code), 2000).unref();
    },
    (error: unknown) => {
      process.stderr.write(redact(String((error as Error)?.stack ?? error)) + '\n');
      process.exit(INTERNAL_ERROR_EXIT_CODE);
    },
  );
}
