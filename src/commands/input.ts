import type { Logger } from '../log.js';

/** What every command receives from main(). */
export interface CommandInput {
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal: AbortSignal;
  version: string;
}
