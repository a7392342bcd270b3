// npm run demo: the first run of a newcomer. Starts the same local servers as the tests
// (PostgreSQL with TLS, S3, SMTP), provisions one tenant schema and role as a deployment machine
// would, runs the real bootstrap against them, shows what it did, runs it again to show that a
// re-run changes nothing, and stops everything.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BUNDLE } from '../harness/cli.js';
import { instanceEnv, setupState, users, verifiedServices } from '../harness/instance.js';
import { createTenant, startPostgres } from '../harness/postgres.js';
import { startS3 } from '../harness/s3.js';
import { startSmtp } from '../harness/smtp.js';

const say = (text: string) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);

async function runBootstrap(env: Record<string, string | undefined>): Promise<number | null> {
  const child = spawn(process.execPath, [BUNDLE], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [code] = (await once(child, 'close')) as [number | null];
  console.log(`(exit code ${code})`);
  return code;
}

say(
  'starting local servers: PostgreSQL 16 (TLS, scram-sha-256), ' +
    'S3 (s3rver behind a SigV4 front, HTTPS), SMTP (STARTTLS + AUTH)',
);
const [pg, s3, smtp] = await Promise.all([startPostgres({ tls: true }), startS3(), startSmtp('starttls')]);
try {
  say('provisioning, as the deployment machine: a tenant role and its schema (USAGE + CREATE only), a shared bucket');
  const tenant = await createTenant(pg, { schema: 'tenant_demo' });
  await s3.createBucket('superfasttt-central');
  console.log(`schema ${tenant.schema}, role ${tenant.role}, bucket superfasttt-central`);

  const env = instanceEnv(tenant, {
    DATABASE_URL: Object.assign(new URL(tenant.url), { search: '?sslmode=verify-full' }).toString(),
    ...verifiedServices(tenant, s3, smtp, 'superfasttt-central'),
    AUTO_SUPERADMIN_WELCOME_EMAIL: 'true',
    APP_URL: 'https://clienta.superfasttt.example',
  });

  say('first run: node dist/superfasttt-bootstrap.mjs with SKIP_SETUP=true');
  if ((await runBootstrap(env)) !== 0) process.exitCode = 1;

  say('resulting state');
  for (const u of await users(pg, tenant.schema))
    console.log(`user      ${u.email}  role=${u.role}  hash=${u.password_hash.slice(0, 30)}...`);
  const state = await setupState(pg, tenant.schema);
  console.log(`marker    completed=${state?.completed} by=${state?.completed_by} version=${state?.bootstrap_version}`);
  console.log(
    `storage   ${[...(await s3.listObjects('superfasttt-central')).keys()].join(', ')} ` +
      `(folder marker; the probe was deleted)`,
  );
  for (const mail of smtp.mails)
    console.log(`email     to ${mail.to.join(', ')}: "${mail.subject}" (login link, no password)`);

  say('second run: nothing to do, nothing changed');
  if ((await runBootstrap(env)) !== 0) process.exitCode = 1;

  say(`a mistake: wrong admin password policy (exit 2), nothing touched`);
  await runBootstrap({ ...env, AUTO_SUPERADMIN_PASSWORD: 'changeme' });
} finally {
  say('stopping the local servers');
  await Promise.all([pg.stop(), s3.stop(), smtp.stop()]);
}
