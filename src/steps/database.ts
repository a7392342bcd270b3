/** Step 1: connect to PostgreSQL (with retries) and report what we are talking to. */
import { DatabaseError } from '../errors.js';
import { connect } from '../db/connect.js';
import type { Step } from './step.js';

export const databaseStep: Step = {
  name: 'database',
  errorClass: DatabaseError,
  async run(ctx) {
    ctx.db = await connect(ctx.env, ctx.log, ctx.signal, { readOnly: ctx.mode === 'check' });
    const { host, port, user, database } = ctx.env.DATABASE_URL;
    const session = ctx.mode === 'check' ? ', read-only session' : '';
    return `connected to ${host}:${port}/${database} as ${user} (PostgreSQL ${ctx.db.serverVersion}, TLS ${ctx.db.tls ? 'on' : 'off'}${session})`;
  },
};
