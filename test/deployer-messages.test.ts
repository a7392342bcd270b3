// Every message names the variables the operator actually set: provision and deprovision name the
// deployer's PROVISION_* variables (never the instance's DATABASE_URL, DATABASE_CONNECT_TIMEOUT or
// DATABASE_SSL, which the deployment machine does not have), and the bootstrap names its own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertExit, runCli, type RunResult } from './harness/cli.js';
import { instanceEnv } from './harness/instance.js';
import { freePort } from './harness/net.js';
import { createTenant, type PgServer, startPostgres } from './harness/postgres.js';

/** An instance variable named on its own (not as the end of a PROVISION_* name). */
const INSTANCE_VARIABLE = /(?<![A-Z_])(DATABASE_URL|DATABASE_CONNECT_TIMEOUT|DATABASE_SSL|STORAGE_[A-Z_]+)\b/;

function assertDeployerWords(r: RunResult, ...expected: RegExp[]): void {
  for (const pattern of expected) assert.match(r.output, pattern);
  assert.doesNotMatch(r.output, INSTANCE_VARIABLE, `an instance variable named to the deployer:\n${r.output}`);
  assert.doesNotMatch(r.output, /PROVISION_STORAGE_TIMEOUT/, 'a variable that does not exist');
}

let pg: PgServer;
let closed: number;

before(async () => {
  pg = await startPostgres({ tls: false });
  await pg.admin.unsafe(`create role deployer login createrole password 'Deployer-Password-42'`);
  closed = await freePort();
});
after(() => pg?.stop());

const provision = (env: Record<string, string>, ...args: string[]) =>
  runCli(env, { args: ['provision', '--tenant', 'alpha', ...args] });

describe('provision names the PROVISION_* variables', () => {
  it('an unreachable server: PROVISION_DATABASE_URL and PROVISION_CONNECT_TIMEOUT (exit 3)', async () => {
    const r = await provision({
      PROVISION_DATABASE_URL: `postgres://deployer:pw@127.0.0.1:${closed}/postgres`,
      PROVISION_CONNECT_TIMEOUT: '1',
    });
    assertExit(r, 3);
    assertDeployerWords(r, /PROVISION_CONNECT_TIMEOUT/, /in PROVISION_DATABASE_URL/);
  });

  it('a wrong password: the user and password in PROVISION_DATABASE_URL (exit 3)', async () => {
    const r = await provision({ PROVISION_DATABASE_URL: pg.url('deployer', 'Wrong-Password-42') });
    assertExit(r, 3);
    assertDeployerWords(r, /refused the password of user "deployer" \(PROVISION_DATABASE_URL\)/);
  });

  it('TLS required by the URL, not offered: what to change is in PROVISION_DATABASE_URL (exit 3)', async () => {
    const r = await provision({
      PROVISION_DATABASE_URL: pg.url('deployer', 'Deployer-Password-42', { sslmode: 'require' }),
    });
    assertExit(r, 3, /does not offer TLS/);
    assertDeployerWords(r, /in PROVISION_DATABASE_URL/);
  });

  it('an unreachable S3 endpoint: PROVISION_STORAGE_ENDPOINT (exit 6), no timeout variable invented', async () => {
    const r = await provision({
      PROVISION_DATABASE_URL: pg.url('deployer', 'Deployer-Password-42'),
      PROVISION_STORAGE_ENDPOINT: `http://127.0.0.1:${closed}`,
      PROVISION_STORAGE_ACCESS_KEY: 'deployer-key',
      PROVISION_STORAGE_SECRET_KEY: 'deployer-secret-key',
      PROVISION_STORAGE_BUCKET: 'superfasttt-central',
    });
    assertExit(r, 6);
    assertDeployerWords(r, /check PROVISION_STORAGE_ENDPOINT/);
  });
});

describe('the bootstrap names its own variables', () => {
  it('an unreachable server: DATABASE_URL and DATABASE_CONNECT_TIMEOUT (exit 3)', async () => {
    const tenant = await createTenant(pg);
    const r = await runCli(
      instanceEnv(tenant, {
        DATABASE_URL: `postgres://${tenant.role}:pw@127.0.0.1:${closed}/postgres`,
        DATABASE_CONNECT_TIMEOUT: '1',
      }),
    );
    assertExit(r, 3, /raise DATABASE_CONNECT_TIMEOUT/, /in DATABASE_URL/);
    assert.doesNotMatch(r.output, /PROVISION_/);
  });
});
