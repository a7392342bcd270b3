/** The deployer's PostgreSQL session for one provision or deprovision run: opened, used, closed. */
import type { DatabaseTarget } from '../config/targets.js';
import { connect, type Connection } from '../db/connect.js';
import type { Logger } from '../log.js';

/** What a run needs from the command: the environment, where to log, the signal that stops it. */
export interface RunInput {
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal: AbortSignal;
}

/** `max`: connections in the pool (1 unless tenants are handled concurrently). */
export async function withDeployer<T>(
  database: DatabaseTarget,
  ctx: RunInput,
  opts: { max?: number },
  run: (db: Connection) => Promise<T>,
): Promise<T> {
  const db = await connect(database, ctx.log, ctx.signal, opts);
  try {
    return await run(db);
  } finally {
    await db.sql.end({ timeout: 5 });
  }
}
