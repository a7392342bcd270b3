// Every wait and every read is bounded, whatever the S3, SMTP or SendGrid server does. A property
// over {service} × {behaviour} × {phase of the conversation}: hostile servers of the tests' own
// making (test/harness/hostile-servers.ts) drip one byte every 200 ms, flood without end, or lie,
// at one phase and behave before it. Every cell must end on its own (the spawn's kill is only a
// safety net, and the test fails if it fired) with the documented exit code (6 storage, 7 email;
// 0 where the lie is indistinguishable from success), a message naming what to check, no stack
// trace, no secret, and a peak RSS under the Kubernetes memory limit. No wall-clock assertion.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { ADMIN, instanceEnv } from './harness/instance.js';
import { selfSignedCert, tempDir } from './harness/net.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';
import {
  HTTP_BEHAVIOURS,
  S3_PHASES,
  SENDGRID_BEHAVIOURS,
  SENDGRID_PHASES,
  SMTP_BEHAVIOURS,
  SMTP_PHASES,
  startHostileS3,
  startHostileSendgrid,
  startHostileSmtp,
  type HostileServer,
} from './harness/hostile-servers.js';

/** deploy/kubernetes/deployment.yaml: resources.limits.memory. */
const MEMORY_LIMIT_MIB = 160;
const RSS_PROBE = fileURLToPath(new URL('./bench/rss-probe.mjs', import.meta.url));
/** The safety net only: every cell's documented bound is a few seconds (3 × 1 + 2 s, 2 × 2 s). */
const KILL_AFTER_MS = 60_000;
const STORAGE_TIMEOUT = 1;
/**
 * 2 s, not 1: the honest phases before a lie (verifying, before a send that lies) must answer within
 * it on a loaded 2-core machine, where a bootstrap's start can keep its event loop busy for a while.
 */
const EMAIL_TIMEOUT = 2;

let pg: PgServer;
const rssDir = tempDir('sf-rss-');
const peaks: Array<{ cell: string; mib: number }> = [];
const secrets: string[] = [ADMIN.password];

before(async () => {
  pg = await startPostgres({ tls: false });
});
after(async () => {
  await pg?.stop();
  peaks.sort((a, b) => b.mib - a.mib);
  const top = peaks
    .slice(0, 3)
    .map((p) => `${p.cell} ${p.mib.toFixed(1)} MiB`)
    .join(', ');
  process.stderr.write(`# bounded: ${peaks.length} cells, highest peak RSS: ${top}\n`);
});

interface Cell {
  name: string;
  start(): Promise<HostileServer>;
  env(server: HostileServer): Env;
  exit: number;
  /** What the message must say (the variable to check, or what was cut). */
  says: RegExp;
  secrets: string[];
}

async function runCell(cell: Cell): Promise<void> {
  const server = await cell.start();
  let result: RunResult;
  const rssFile = join(rssDir, `${cell.name.replace(/\W+/g, '_')}.rss`);
  try {
    const tenant = await createTenant(pg);
    secrets.push(tenant.password);
    result = await runCli(
      instanceEnv(tenant, { ...cell.env(server), BENCH_RSS_FILE: rssFile }),
      // The image's Node options (its ENTRYPOINT), and the probe that records the peak RSS.
      { nodeArgs: ['--max-semi-space-size=1', '--import', RSS_PROBE], timeoutMs: KILL_AFTER_MS },
    );
  } finally {
    await server.stop();
  }
  if (process.env.BOUNDED_SHOW)
    process.stderr.write(
      `## ${cell.name}: exit ${result.code}\n${result.output
        .split('\n')
        .filter((l) => /FAIL|fix:|\[(storage|email|welcome)\]/.test(l))
        .join('\n')}\n`,
    );
  assert.equal(
    result.signal,
    null,
    `${cell.name}: killed by the test's safety net: the run did not end on its own\n${result.output}`,
  );
  assertExit(result, cell.exit, cell.says);
  assert.doesNotMatch(result.output, /internal error/);
  assertNoSecrets(result, [...secrets, ...cell.secrets]);
  const mib = Number(readFileSync(rssFile, 'utf8')) / 1024;
  peaks.push({ cell: cell.name, mib });
  assert.ok(
    mib < MEMORY_LIMIT_MIB,
    `${cell.name}: peak RSS ${mib.toFixed(1)} MiB, over the ${MEMORY_LIMIT_MIB} MiB limit`,
  );
}

// -------------------------------------------------------------------------------------------
// The matrix. Each behaviour meets each phase once; the transport (HTTP or HTTPS, plaintext SMTP
// or STARTTLS) alternates, so that every behaviour is seen on both.

const storageKey = {
  id: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
  secret: randomBytes(30).toString('base64url'),
};

// HEAD answers have no body (RFC 9110): bytes after HeadBucket's headers are no answer's, and
// whether the next request meets them depends on connection reuse. HeadBucket gets the header cells.
const HEAD_BEHAVIOURS = new Set(['drip-headers', 'flood-headers']);

const S3_CELLS: Cell[] = HTTP_BEHAVIOURS.flatMap((behaviour, b) =>
  S3_PHASES.filter((phase) => phase !== 'HeadBucket' || HEAD_BEHAVIOURS.has(behaviour)).map((phase, p): Cell => {
    const https = (b + p) % 2 === 0;
    return {
      name: `s3 ${https ? 'https' : 'http'} ${phase} ${behaviour}`,
      start: () => startHostileS3({ tls: https, phase, behaviour }),
      env: (server) => ({
        STORAGE_PROVIDER: 's3',
        STORAGE_ENDPOINT: `${https ? 'https' : 'http'}://127.0.0.1:${server.port}`,
        STORAGE_SECURE: String(https),
        STORAGE_BUCKET: 'hostile-bucket',
        STORAGE_ACCESS_KEY: storageKey.id,
        STORAGE_SECRET_KEY: storageKey.secret,
        STORAGE_TIMEOUT: String(STORAGE_TIMEOUT),
        NODE_EXTRA_CA_CERTS: selfSignedCert().caFile,
      }),
      exit: 6,
      says: behaviour.startsWith('drip') ? /storage: .*STORAGE_TIMEOUT/ : /storage: /,
      secrets: [storageKey.secret],
    };
  }),
);

/** The send phases are the welcome email's. */
const WELCOME = { AUTO_SUPERADMIN_WELCOME_EMAIL: 'true', APP_URL: 'https://app.client.example' };
const smtpPassword = `Smtp-${randomBytes(12).toString('base64url')}`;

const SMTP_CELLS: Cell[] = SMTP_BEHAVIOURS.flatMap((behaviour, b) =>
  SMTP_PHASES.map((phase, p): Cell => {
    const starttls = (b + p) % 2 === 0;
    const accepted = phase === 'data' && behaviour === 'lie-250-then-garbage';
    return {
      name: `smtp ${starttls ? 'starttls' : 'plain'} ${phase} ${behaviour}`,
      start: () => startHostileSmtp({ starttls, phase, behaviour }),
      env: (server) => ({
        EMAIL_PROVIDER: 'smtp',
        EMAIL_FROM: 'noreply@client.example',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(server.port),
        SMTP_USERNAME: 'mailer',
        SMTP_PASSWORD: smtpPassword,
        SMTP_SECURE: starttls ? 'starttls' : 'none',
        EMAIL_TIMEOUT: String(EMAIL_TIMEOUT),
        ...WELCOME,
        NODE_EXTRA_CA_CERTS: selfSignedCert().caFile,
      }),
      // A 250 to the end of the message is the server taking it: what follows is no reply of ours.
      exit: accepted ? 0 : 7,
      says: accepted
        ? /welcome email sent/
        : behaviour === 'drip'
          ? /email: .*EMAIL_TIMEOUT/
          : /email: SMTP 127\.0\.0\.1/,
      secrets: [smtpPassword],
    };
  }),
);

const sendgridKey = `SG.${randomBytes(12).toString('base64url')}.${randomBytes(20).toString('base64url')}`;
/** Lies of a send that look like success: SendGrid said 2xx, the mail counts as accepted. */
const ACCEPTED = new Set(['lie-garbage', 'lie-shape']);

const SENDGRID_CELLS: Cell[] = SENDGRID_BEHAVIOURS.flatMap((behaviour) =>
  SENDGRID_PHASES.map((phase): Cell => {
    const accepted = phase === 'send' && ACCEPTED.has(behaviour);
    return {
      name: `sendgrid ${phase} ${behaviour}`,
      start: () => startHostileSendgrid({ phase, behaviour }),
      env: (server) => ({
        EMAIL_PROVIDER: 'sendgrid',
        EMAIL_FROM: 'noreply@client.example',
        SENDGRID_API_KEY: sendgridKey,
        SENDGRID_API_URL: `https://127.0.0.1:${server.port}`,
        EMAIL_TIMEOUT: String(EMAIL_TIMEOUT),
        ...WELCOME,
        NODE_EXTRA_CA_CERTS: selfSignedCert().caFile,
      }),
      exit: accepted ? 0 : 7,
      says: accepted
        ? /welcome email sent/
        : behaviour.startsWith('drip')
          ? /email: .*EMAIL_TIMEOUT/
          : /email: SendGrid https:\/\/127\.0\.0\.1:\d+: /,
      secrets: [sendgridKey],
    };
  }),
);

const ONLY = process.env.BOUNDED_ONLY; // a substring of cell names, to run a few by hand

describe('every wait and every read is bounded (S3, SMTP, SendGrid × drip, flood, lie × phase)', {
  concurrency: 6,
}, () => {
  for (const cell of [...S3_CELLS, ...SMTP_CELLS, ...SENDGRID_CELLS]) {
    if (ONLY && !cell.name.includes(ONLY)) continue;
    it(cell.name, () => runCell(cell));
  }
});
