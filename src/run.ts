/**
 * Parse the command line, run the command, map the outcome to an exit code.
 * Operational failures (BootstrapError) print one clear message and its fix; anything else is a
 * bug and is the only case that prints a stack trace (exit 1).
 */
import { BootstrapError, ConfigError, INTERNAL_ERROR_EXIT_CODE, InterruptedError } from './errors.js';
import { renderHelp } from './config/docs.js';
import { createLogger, loggerOptionsFromEnv, type Logger } from './log.js';
import { redact } from './redact.js';
import { writeTerminationLog } from './termination-log.js';
import { bootstrap } from './commands/bootstrap.js';
import { check, type CheckOptions } from './commands/check.js';

async function main(argv: string[], VERSION: string): Promise<number> {
  const env = process.env;
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
    setTimeout(() => process.exit(new InterruptedError(signal).exitCode), 5000).unref();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  try {
    const { command, options } = parseArgs(argv);
    switch (command) {
      case 'help':
        process.stdout.write(renderHelp(VERSION) + '\n');
        return 0;
      case 'version':
        process.stdout.write(VERSION + '\n');
        return 0;
      case 'bootstrap':
        return await bootstrap({ env, log, signal: controller.signal, version: VERSION });
      case 'check': {
        // stdout carries the report only (one JSON document with --json): every log line goes to stderr.
        const checkLog = createLogger({ ...loggerOptionsFromEnv(env), stdout: (line) => process.stderr.write(line + '\n') });
        return await check({ env, log: checkLog, signal: controller.signal, version: VERSION }, options);
      }
    }
  } catch (error) {
    return reportFailure(error, log, env.TERMINATION_LOG);
  }
}

type Command = 'bootstrap' | 'check' | 'help' | 'version';

function parseArgs(argv: string[]): { command: Command; options: CheckOptions } {
  const [first, ...rest] = argv;
  const options: CheckOptions = { json: false, write: true };
  const usage = 'run with --help to see the commands';
  let command: Command;
  switch (first) {
    case undefined:
    case 'bootstrap':
      command = 'bootstrap';
      break;
    case 'check':
      command = 'check';
      break;
    case '--help':
    case '-h':
    case 'help':
      command = 'help';
      break;
    case '--version':
    case '-V':
    case 'version':
      command = 'version';
      break;
    default:
      throw new ConfigError(`unknown command or option: ${first}`, [], usage);
  }
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (command === 'check' && arg === '--json') options.json = true;
    else if (command === 'check' && arg === '--no-write') options.write = false;
    else if (command === 'check' && (arg === '--env-file' || arg.startsWith('--env-file='))) {
      const value = arg.includes('=') ? arg.slice('--env-file='.length) : rest[++i];
      if (!value) throw new ConfigError('--env-file needs a path', [], usage);
      options.envFile = value;
    } else throw new ConfigError(`unexpected argument for ${command}: ${arg}`, [], usage);
  }
  return { command, options };
}

function reportFailure(error: unknown, log: Logger, terminationLog: string | undefined): number {
  if (error instanceof BootstrapError) {
    const problems = error instanceof ConfigError ? error.problems : [];
    log.error(error.message, { ...(problems.length > 0 && { problems }), ...(error.fix && { fix: error.fix }), exit_code: error.exitCode });
    writeTerminationLog([error.message, ...problems.map((p) => `  - ${p}`), ...(error.fix ? [`fix: ${error.fix}`] : [])].join('\n'), terminationLog);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? (error.stack ?? message) : message;
  log.error(`internal error (a bug, please report it): ${message}`, { stack });
  writeTerminationLog(`internal error: ${stack}`, terminationLog);
  return INTERNAL_ERROR_EXIT_CODE;
}

export function start(argv: string[], version: string): void {
  main(argv, version).then(
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
