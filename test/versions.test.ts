// Every supported PostgreSQL major (14 to 18), TLS on: a non-superuser deployer provisions two
// tenants, each bootstraps from its .env alone, check passes, a re-run changes nothing, and the two
// tenants are isolated both ways. 14 differs: PUBLIC may create in schema public, owned by the
// bootstrap superuser, and CREATEROLE is nearly superuser (15 too).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { POSTGRES_MAX_SUPPORTED, POSTGRES_MIN_SUPPORTED } from '../src/db/server-version.js';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { setupState, users } from './harness/instance.js';
import { tempDir } from './harness/net.js';
import { PG_MAJORS, startPostgres, type PgMajor, type PgServer } from './harness/postgres.js';
import { assertIsolated, readEnvFile, type EnvFile } from './harness/provisioned.js';

const DEPLOYER_PASSWORD = 'Deployer-Password-42';
const TENANTS = ['north', 'south'] as const;

// All servers start at once, as the file loads (initdb is most of a start); each version's before()
// waits for its own server and reports its failure.
const servers = new Map(PG_MAJORS.map((version) => [version, startPostgres({ tls: true, version })] as const));
for (const started of servers.values()) started.catch(() => {});
after(async () => {
  await Promise.all(
    [...servers.values()].map((started) =>
      started.then(
        (pg) => pg.stop(),
        () => {},
      ),
    ),
  );
});

it(`the harness starts every supported major, ${POSTGRES_MIN_SUPPORTED} to ${POSTGRES_MAX_SUPPORTED}`, () => {
  const supported = Array.from(
    { length: POSTGRES_MAX_SUPPORTED - POSTGRES_MIN_SUPPORTED + 1 },
    (_, i) => POSTGRES_MIN_SUPPORTED + i,
  );
  assert.deepEqual(PG_MAJORS, supported);
});

// Two versions at a time (the machine has 2 cores; each waits on its server and its CLI runs),
// each version's tests in order.
describe('every supported PostgreSQL', { concurrency: 2 }, () => {
  for (const version of PG_MAJORS) describeVersion(version);
});

function describeVersion(version: PgMajor): void {
  describe(`PostgreSQL ${version}`, { concurrency: 1 }, () => {
    let pg: PgServer;
    let deployerUrl: string;
    const out = tempDir(`sf-pg${version}-`);
    const envs: Record<string, EnvFile> = {};
    const outputs: RunResult[] = [];

    const cli = async (env: Env, args: string[] = []) => {
      const r = await runCli(env, { args });
      outputs.push(r);
      return r;
    };

    before(async () => {
      pg = await servers.get(version)!;
      // The deployment machine's role: CREATEROLE and the owner of the tenants' database (the harness's own),
      // not a superuser.
      await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
      await pg.admin.unsafe(`alter database ${pg.database} owner to deployer`);
      deployerUrl = pg.url('deployer', DEPLOYER_PASSWORD, { sslmode: 'require' });
    });

    it('provision: two tenants from a file, one .env each', async () => {
      const file = join(out, 'tenants.csv');
      writeFileSync(
        file,
        ['name,email,first_name,last_name', ...TENANTS.map((t) => `${t},admin@${t}.example,Alice,Martin`)].join('\n') +
          '\n',
      );
      const provision = () =>
        cli({ PROVISION_DATABASE_URL: deployerUrl }, ['provision', '--tenants', file, '--out-dir', join(out, 'envs')]);
      const [acl] = await pg.admin<{ create: boolean; owner: string }[]>`
        select has_schema_privilege('public', 'public', 'CREATE') as create, pg_get_userbyid(nspowner) as owner
        from pg_namespace where nspname = 'public'`;
      if (version < 15) {
        // 14: every role may create in public, a schema of the bootstrap superuser that the database
        // owner cannot change. Provision refuses to go on and names the statement; the superuser runs it.
        assert.deepEqual({ ...acl }, { create: true, owner: pg.superuser });
        assertExit(
          await provision(),
          4,
          /could not take PUBLIC's default rights away on database .*: PUBLIC may still create in schema public/,
          /as postgres \(owner of schema public\) or a superuser: REVOKE CREATE ON SCHEMA public FROM PUBLIC/,
        );
        await pg.admin.unsafe('revoke create on schema public from public');
      } else {
        assert.deepEqual({ ...acl }, { create: false, owner: 'pg_database_owner' });
      }
      const r = await provision();
      assertExit(r, 0, /provision: 2 tenant\(s\): 2 created/);
      // CREATEROLE gives the deployer almost any right before 16: provision says so.
      if (version < 16) assert.match(r.output, /CREATEROLE.*superuser/);
      else assert.doesNotMatch(r.output, /CREATEROLE.*superuser/);
      for (const name of TENANTS) envs[name] = readEnvFile(join(out, 'envs', `${name}.env`));
    });

    it('each tenant bootstraps from its .env alone: admin created, setup completed', async () => {
      for (const name of TENANTS) {
        const r = await cli(envs[name]!);
        assertExit(
          r,
          0,
          new RegExp(`PostgreSQL ${version}\\.\\d+, TLS on`),
          new RegExp(`super admin admin@${name}\\.example created`),
        );
        assert.doesNotMatch(r.output, /not a supported version/);
        const schema = `tenant_${name}`;
        assert.deepEqual(
          (await users(pg, schema)).map((u) => [u.email, u.role]),
          [[`admin@${name}.example`, 'super_admin']],
        );
        assert.equal((await setupState(pg, schema))?.completed, true);
      }
    });

    it('check passes on a bootstrapped tenant', async () => {
      const r = await cli(envs.north!, ['check', '--no-write']);
      assertExit(
        r,
        0,
        /Result: all checks passed \(exit 0\)/,
        new RegExp(`PostgreSQL ${version}\\.\\d+, TLS on, read-only session`),
      );
      assert.doesNotMatch(r.output, /not a supported version/);
    });

    it('a re-run of the bootstrap changes nothing', async () => {
      const [before] = await users(pg, 'tenant_south');
      const r = await cli(envs.south!);
      assertExit(r, 0, /schema is up to date/, /already bootstrapped, nothing changed/);
      const [afterRun] = await users(pg, 'tenant_south');
      assert.deepEqual(afterRun, before);
    });

    for (const [me, other] of [
      ['north', 'south'],
      ['south', 'north'],
    ] as const) {
      it(`isolation: ${me} cannot touch ${other}, public, or its own schema's existence`, async () => {
        await assertIsolated(envs[me]!, envs[other]!, pg.admin);
      });
    }

    it('no password appears in the output', () => {
      const secrets = [
        DEPLOYER_PASSWORD,
        ...Object.values(envs).flatMap((e) => [new URL(e.DATABASE_URL!).password, e.AUTO_SUPERADMIN_PASSWORD]),
      ];
      for (const r of outputs) assertNoSecrets(r, secrets);
    });
  });
}
