// The built image, run as operators run it (npm run test:image, after test/image/build.sh):
// read-only root, user 65532, secrets as plain `docker compose` mounts them (a bind mount of a host
// file with the host's owner and mode), a termination-log file as Kubernetes mounts it, against
// PostgreSQL with verify-full, S3 over HTTPS and SMTP with STARTTLS on this machine.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertExit, assertNoSecrets, type Env, type RunResult } from '../harness/cli.js';
import { ADMIN, setupState, users } from '../harness/instance.js';
import { tempDir } from '../harness/net.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from '../harness/postgres.js';
import { startS3, type S3Server } from '../harness/s3.js';
import { startSmtp, type SmtpServer } from '../harness/smtp.js';
import { IMAGE, podman, runImage, VERSION, type ContainerOptions } from './podman.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let pg: PgServer;
let s3: S3Server;
let smtp: SmtpServer;
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];
/** A user of the host that is neither root nor the container's: the operator who ran make-secrets.sh. */
const OPERATOR = 1000;

before(async () => {
  [pg, s3, smtp] = await Promise.all([startPostgres({ tls: true }), startS3(), startSmtp('starttls')]);
  await s3.createBucket('superfasttt-image');
  secrets.push(s3.admin.secretAccessKey, smtp.password);
});
after(async () => {
  await Promise.all([pg?.stop(), s3?.stop(), smtp?.stop()]);
  for (const r of outputs) assertNoSecrets(r, secrets);
});

async function run(opts: ContainerOptions): Promise<RunResult> {
  const r = await runImage(opts);
  outputs.push(r);
  return r;
}

/** The certificate every test server presents (its own CA), where the container reads it. */
const CA = '/etc/superfasttt/ca.pem';

/** The instance's plain variables; every secret is a _FILE under /run/secrets. */
function plainEnv(tenant: Tenant, bucket = 'superfasttt-image'): Env {
  return {
    SKIP_SETUP: 'true',
    DATABASE_URL_FILE: '/run/secrets/database_url',
    DATABASE_SCHEMA: tenant.schema,
    DATABASE_SSL_CA_FILE: CA,
    DATABASE_CONNECT_TIMEOUT: '10',
    NODE_EXTRA_CA_CERTS: CA, // S3 and SMTP present the same self-signed certificate
    STORAGE_PROVIDER: 's3',
    STORAGE_ENDPOINT: s3.httpsEndpoint,
    STORAGE_BUCKET: bucket,
    STORAGE_PREFIX: `${tenant.schema}/`,
    STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
    STORAGE_SECRET_KEY_FILE: '/run/secrets/s3_secret_key',
    EMAIL_PROVIDER: 'smtp',
    EMAIL_FROM: 'noreply@client.example',
    SMTP_HOST: smtp.host,
    SMTP_PORT: String(smtp.port),
    SMTP_USERNAME: smtp.username,
    SMTP_PASSWORD_FILE: '/run/secrets/smtp_password',
    AUTO_SUPERADMIN_EMAIL: ADMIN.email,
    AUTO_SUPERADMIN_FIRSTNAME: ADMIN.firstName,
    AUTO_SUPERADMIN_LASTNAME: ADMIN.lastName,
    AUTO_SUPERADMIN_PASSWORD_FILE: '/run/secrets/admin_password',
  };
}

/**
 * The secrets as deploy/compose/make-secrets.sh lays them out (run for real, in a scratch directory,
 * then filled with this tenant's values), owned by an ordinary host user: what compose mounts.
 */
function composeSecrets(tenant: Tenant): { dir: string; mounts: NonNullable<ContainerOptions['mounts']> } {
  const cwd = tempDir('sf-image-');
  execFileSync('sh', [join(root, 'deploy/compose/make-secrets.sh')], { cwd, stdio: 'ignore' });
  const dir = join(cwd, 'secrets');
  const url = new URL(tenant.url);
  url.searchParams.set('sslmode', 'verify-full');
  const values: Record<string, string> = {
    database_url: url.toString(),
    admin_password: ADMIN.password,
    s3_secret_key: s3.admin.secretAccessKey,
    smtp_password: smtp.password,
  };
  for (const [name, value] of Object.entries(values)) writeFileSync(join(dir, name), value); // keeps the file's mode
  for (const name of readdirSync(dir)) chownSync(join(dir, name), OPERATOR, OPERATOR);
  chownSync(dir, OPERATOR, OPERATOR);
  secrets.push(tenant.password);
  return {
    dir,
    mounts: Object.keys(values).map((name) => ({ host: join(dir, name), container: `/run/secrets/${name}` })),
  };
}

/** Kubernetes mounts an empty, writable file at /dev/termination-log. */
function terminationLog(): string {
  const file = join(tempDir('sf-image-'), 'termination-log');
  writeFileSync(file, '');
  chmodSync(file, 0o666);
  return file;
}

const caMount = () => ({ host: pg.caFile!, container: CA });

describe('the image', () => {
  it('is tagged with the version it prints, and carries it as its OCI label', async () => {
    const r = await run({ args: ['--version'] });
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), VERSION);
    const inspect = await podman([
      'image',
      'inspect',
      IMAGE,
      '--format',
      '{{ index .Labels "org.opencontainers.image.version" }} {{ .Config.User }}',
    ]);
    assert.equal(inspect.stdout.trim(), `${VERSION} 65532:65532`);
  });

  it('--help: the commands, variables and exit codes', async () => {
    assertExit(await run({ args: ['--help'] }), 0, /Usage|usage/, /DATABASE_URL/, /Exit codes|exit codes/i);
  });

  it(
    'check --env-file with a mounted file: ' +
      "every check passes (exit 0), and a missing file is our exit 2, never Node's 9",
    async () => {
      const tenant = await createTenant(pg);
      const { mounts } = composeSecrets(tenant);
      const envFile = join(tempDir('sf-image-'), 'instance.env');
      const { NODE_EXTRA_CA_CERTS, ...fileEnv } = plainEnv(tenant);
      writeFileSync(
        envFile,
        Object.entries(fileEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n') + '\n',
        { mode: 0o644 },
      );
      const r = await run({
        env: { NODE_EXTRA_CA_CERTS },
        mounts: [...mounts, caMount(), { host: envFile, container: '/config/instance.env' }],
        args: ['check', '--env-file', '/config/instance.env'],
      });
      assertExit(r, 0, /Result: all checks passed \(exit 0\)/, /TLS on/);
      const missing = await run({ args: ['check', '--env-file', '/config/missing.env'] });
      assertExit(missing, 2, /--env-file: \/config\/missing\.env does not exist/);
    },
  );

  it(
    "bootstraps read-only as 65532 with compose's secret mounts and a termination log; " + 'the re-run changes nothing',
    async () => {
      const tenant = await createTenant(pg);
      const { mounts } = composeSecrets(tenant);
      const log = terminationLog();
      const options = {
        env: plainEnv(tenant),
        mounts: [...mounts, caMount(), { host: log, container: '/dev/termination-log', writable: true }],
      };
      const first = await run(options);
      assertExit(
        first,
        0,
        /connected to .* \(PostgreSQL 16\.\d+, TLS on\)/,
        /storage/,
        /super admin .* created/,
        /setup marked as completed/,
      );
      assert.equal((await setupState(pg, tenant.schema))?.completed, true);
      assert.deepEqual(
        (await users(pg, tenant.schema)).map((u) => u.role),
        ['super_admin'],
      );
      const again = await run(options);
      assertExit(again, 0, /already bootstrapped, nothing changed/);
      assert.equal(readFileSync(log, 'utf8'), '', 'nothing is written to the termination log on success');
    },
  );

  it(
    'a secret file only its owner can read (0600, as before): ' +
      'exit 2 naming the variable, the message in the termination log',
    async () => {
      const tenant = await createTenant(pg);
      const { dir, mounts } = composeSecrets(tenant);
      chmodSync(join(dir, 'admin_password'), 0o600);
      const log = terminationLog();
      const r = await run({
        env: plainEnv(tenant),
        mounts: [...mounts, caMount(), { host: log, container: '/dev/termination-log', writable: true }],
      });
      assertExit(r, 2, /AUTO_SUPERADMIN_PASSWORD_FILE: cannot read the file \/run\/secrets\/admin_password \(EACCES\)/);
      assert.match(readFileSync(log, 'utf8'), /AUTO_SUPERADMIN_PASSWORD_FILE: cannot read the file/);
      assertNoSecrets(readFileSync(log, 'utf8'), secrets);
      assert.equal(
        (await setupState(pg, tenant.schema).catch(() => undefined))?.completed,
        undefined,
        'nothing was created',
      );
    },
  );

  it('a wrong database password: exit 3, the fix in the termination log, no secret anywhere', async () => {
    const tenant = await createTenant(pg);
    const { dir, mounts } = composeSecrets(tenant);
    const url = new URL(readFileSync(join(dir, 'database_url'), 'utf8'));
    url.password = 'Wrong-Password-123';
    writeFileSync(join(dir, 'database_url'), url.toString());
    const log = terminationLog();
    const r = await run({
      env: plainEnv(tenant),
      mounts: [...mounts, caMount(), { host: log, container: '/dev/termination-log', writable: true }],
    });
    assertExit(r, 3, /refused the password of user/);
    assert.match(readFileSync(log, 'utf8'), /refused the password[\s\S]*fix: /);
    assertNoSecrets(r, ['Wrong-Password-123']);
  });
});

describe("the compose example's scripts", () => {
  it('pass shellcheck', () => {
    const scripts = readdirSync(join(root, 'deploy/compose'))
      .filter((f) => f.endsWith('.sh'))
      .map((f) => join(root, 'deploy/compose', f));
    execFileSync('shellcheck', scripts, { stdio: 'pipe' });
  });

  it('make-secrets.sh: files a container user can read, in a directory no other host user can open', () => {
    const cwd = tempDir('sf-image-');
    execFileSync('sh', [join(root, 'deploy/compose/make-secrets.sh')], { cwd, stdio: 'ignore' });
    assert.equal(statSync(join(cwd, 'secrets')).mode & 0o777, 0o700);
    for (const name of readdirSync(join(cwd, 'secrets')))
      assert.equal(statSync(join(cwd, 'secrets', name)).mode & 0o777, 0o644, name);
  });
});
