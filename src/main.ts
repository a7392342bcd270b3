/**
 * The entry point is kept tiny: `--version` answers without loading anything but the logger (it is
 * what health checks and operators call most), every other command loads run.ts.
 */
import { tolerateClosedOutput } from './log.js';

declare const __VERSION__: string;
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';

// First of all: a reader that closes stdout or stderr early must not crash any command.
tolerateClosedOutput();

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version')) {
  process.stdout.write(VERSION + '\n');
} else {
  void import('./run.js').then((run) => run.start(argv, VERSION));
}
