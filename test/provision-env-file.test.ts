// provision's .env files end to end (the built CLI, a real PostgreSQL, a deployer that is NOT a
// superuser): never written through a planted symbolic link nor into a directory another user can
// write; values refused (named, never printed) before anything is created when a .env reader would
// not read them back; accepted ones read back unchanged by util.parseEnv, docker and Compose.
//
// Exit codes: every refusal here is 2 (ConfigError), before any connection to PostgreSQL.
import assert from 'node:assert/strict';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { composeEnv, dockerCliEnv, dockerEnv, hasDockerCli, nodeEnv } from './harness/env-readers.js';
import { startPostgres, type PgServer } from './harness/postgres.js';
import { tempDir } from './harness/net.js';

let pg: PgServer;
let deployerUrl: string;
const DEPLOYER_PASSWORD = 'Deployer-Password-42';

before(async () => {
  pg = await startPostgres({ tls: true });
  // The deployment machine's role: CREATEROLE and the owner of the tenants' database, not a superuser.
  await pg.admin.unsafe(`create role deployer login createrole password '${DEPLOYER_PASSWORD}'`);
  await pg.admin.unsafe('create database tenants owner deployer');
  deployerUrl = pg.url('deployer', DEPLOYER_PASSWORD, { database: 'tenants', sslmode: 'require' });
});
after(async () => {
  await pg?.stop();
});

function provision(args: string[], env: Env = {}, opts: { uid?: number } = {}): Promise<RunResult> {
  return runCli({ PROVISION_DATABASE_URL: deployerUrl, ...env }, { args: ['provision', ...args], ...opts });
}

async function roleCount(name: string): Promise<number> {
  const [row] = await pg.admin<
    { n: number }[]
  >`select count(*)::int as n from pg_roles where rolname = ${`tenant_${name}`}`;
  return row!.n;
}

async function verifier(name: string): Promise<string | null> {
  const [row] = await pg.admin<
    { rolpassword: string | null }[]
  >`select rolpassword from pg_authid where rolname = ${`tenant_${name}`}`;
  return row!.rolpassword;
}

describe('provision never writes a .env through a symbolic link', () => {
  it(
    'a planted <name>.env -> another file, with --force: ' +
      'exit 2 before anything is created; the target is unchanged',
    async () => {
      const out = tempDir('sf-envs-');
      const victim = join(tempDir('sf-victim-'), 'authorized_keys');
      writeFileSync(victim, 'ssh-ed25519 AAAA... someone\n', { mode: 0o644 });
      symlinkSync(victim, join(out, 'planted.env'));
      const r = await provision(['--tenant', 'planted', '--out-dir', out, '--force']);
      assertExit(
        r,
        2,
        new RegExp(
          "planted\\.env is a symbolic link: refusing to write the tenant's passwords through it or over it " +
            '\\(with or without --force\\)',
        ),
        /check who created it and why, remove it/,
      );
      assert.equal(readFileSync(victim, 'utf8'), 'ssh-ed25519 AAAA... someone\n');
      assert.equal(statSync(victim).mode & 0o777, 0o644);
      assert.ok(lstatSync(join(out, 'planted.env')).isSymbolicLink());
      assert.equal(await roleCount('planted'), 0, 'nothing created in PostgreSQL');
    },
  );

  it(
    '--rotate-password through a planted link: ' + 'exit 2, the role keeps its password, the target is unchanged',
    async () => {
      const out = tempDir('sf-envs-');
      assertExit(await provision(['--tenant', 'rotor', '--out-dir', out]), 0, /rotor: created/);
      const kept = await verifier('rotor');
      const victim = join(tempDir('sf-victim-'), 'victim');
      writeFileSync(victim, 'untouched\n');
      unlinkSync(join(out, 'rotor.env'));
      symlinkSync(victim, join(out, 'rotor.env'));
      const r = await provision(['--tenant', 'rotor', '--out-dir', out, '--rotate-password']);
      assertExit(r, 2, /rotor\.env is a symbolic link/);
      assert.equal(readFileSync(victim, 'utf8'), 'untouched\n');
      assert.equal(await verifier('rotor'), kept, 'the password was not rotated');
    },
  );

  it('a directory at <name>.env: exit 2, nothing created', async () => {
    const out = tempDir('sf-envs-');
    mkdirSync(join(out, 'dirname.env'));
    assertExit(await provision(['--tenant', 'dirname', '--out-dir', out]), 2, /dirname\.env is a directory/);
    assert.equal(await roleCount('dirname'), 0);
  });
});

describe('provision refuses an --out-dir other users could write', () => {
  it('mode 0777: exit 2 saying why and how to fix it, nothing created', async () => {
    const out = tempDir('sf-envs-');
    chmodSync(out, 0o777);
    const r = await provision(['--tenant', 'open_dir', '--out-dir', out]);
    assertExit(
      r,
      2,
      new RegExp(
        '--out-dir .* is writable by its group and every user \\(mode 0777\\): another user could plant a file or ' +
          'a symbolic link where a \\.env \\(passwords\\) is written',
      ),
      new RegExp(`chmod 700 ${out}`),
    );
    assert.equal(await roleCount('open_dir'), 0);
    assert.deepEqual(readdirSync(out), []);
  });

  it(
    'inside a directory every user may write (no sticky bit): ' +
      'exit 2, nothing created; under /tmp (sticky) it is fine',
    async () => {
      const open = tempDir('sf-envs-');
      chmodSync(open, 0o777);
      const out = join(open, 'envs');
      const r = await provision(['--tenant', 'open_parent', '--out-dir', out]);
      assertExit(
        r,
        2,
        new RegExp(`--out-dir ${out} is inside ${open}, which every user may write \\(mode 0777, no sticky bit\\)`),
        new RegExp(`chmod go-w ${open}`),
      );
      assert.equal(await roleCount('open_parent'), 0);
    },
  );

  it('a symbolic link as --out-dir: exit 2', async () => {
    const link = join(tempDir('sf-envs-'), 'envs');
    symlinkSync(tempDir('sf-envs-'), link);
    assertExit(
      await provision(['--tenant', 'linked_dir', '--out-dir', link]),
      2,
      /is a symbolic link: the \.env files \(passwords\) would go wherever it points/,
    );
    assert.equal(await roleCount('linked_dir'), 0);
  });

  it(
    'file-system errors are exit 2 with the path and a fix, never a stack: ' + 'ENOTDIR, and EACCES for another user',
    async () => {
      const file = join(tempDir('sf-envs-'), 'file');
      writeFileSync(file, '');
      assertExit(
        await provision(['--tenant', 'fs_error', '--out-dir', join(file, 'envs')]),
        2,
        /cannot read the --out-dir .*file\/envs: a component of the path is not a directory \(ENOTDIR\)/,
      );
      if (process.getuid?.() === 0) {
        const privateDir = tempDir('sf-envs-'); // 0700, root's
        const r = await provision(['--tenant', 'fs_error', '--out-dir', join(privateDir, 'envs')], {}, { uid: 65534 });
        assertExit(
          r,
          2,
          /cannot create the --out-dir .*\/envs: permission denied \(EACCES\)/,
          /run provision as the owner of/,
        );
      }
      assert.equal(await roleCount('fs_error'), 0);
    },
  );
});

describe('a tenant that fails part-way is reported with what to run, and a re-run converges', () => {
  it('the .env cannot be written after the role was created (an out-dir its owner cannot write): ' +
    'failed with the fix; --rotate-password converges', {
    skip: process.getuid?.() !== 0 && 'needs root to run provision as another user',
  }, async () => {
    const parent = tempDir('sf-envs-');
    chmodSync(parent, 0o755);
    const out = join(parent, 'envs');
    mkdirSync(out, { mode: 0o500 });
    const { chownSync } = await import('node:fs');
    chownSync(out, 65534, 65534); // nobody's, and read-only to nobody: the checks pass, the write fails
    const as = { uid: 65534 };
    const r = await provision(['--tenant', 'partway', '--out-dir', out], {}, as);
    assertExit(
      r,
      2,
      /partway: failed, cannot create a temporary file in --out-dir .*envs: permission denied \(EACCES\)/,
      /--rotate-password/,
    );
    assert.equal(await roleCount('partway'), 1, 'the role was created before the write failed');
    chmodSync(out, 0o700);
    // The password is nowhere: the re-run says so, and --rotate-password sets a new one and writes it.
    assertExit(
      await provision(['--tenant', 'partway', '--out-dir', out], {}, as),
      4,
      /role tenant_partway exists but .*partway\.env does not/,
      /--rotate-password/,
    );
    assertExit(
      await provision(['--tenant', 'partway', '--out-dir', out, '--rotate-password'], {}, as),
      0,
      /partway: rotated, .*partway\.env written, its login verified/,
    );
    assertExit(
      await provision(['--tenant', 'partway', '--out-dir', out], {}, as),
      0,
      /partway: unchanged, .*kept, its login verified/,
    );
  });
});

describe('values copied into the .env read back unchanged, or are refused first', () => {
  it(
    "SMTP_PASSWORD holding a # in the deployer's environment: " +
      'exit 2 naming SMTP_PASSWORD, never printing it, nothing created',
    async () => {
      const out = tempDir('sf-envs-');
      const password = 'Smtp#Secret-Value-42';
      const r = await provision(['--tenant', 'hash_pw', '--out-dir', out], {
        EMAIL_PROVIDER: 'smtp',
        SMTP_HOST: 'smtp.example.com',
        SMTP_USERNAME: 'mailer',
        SMTP_PASSWORD: password,
      });
      assertExit(
        r,
        2,
        /the deployer's environment: 1 value\(s\) cannot be written to a \.env file and read back unchanged/,
        /SMTP_PASSWORD: holds a #/,
        /SMTP_PASSWORD_FILE/,
      );
      assertNoSecrets(r, [password, 'Secret-Value-42']);
      assert.equal(await roleCount('hash_pw'), 0, 'no role tenant_hash_pw');
      assert.deepEqual(readdirSync(out), []);
    },
  );

  it(
    'a tenants-file value that would not read back ($ in a last name): ' +
      'exit 2 naming the tenant and the column, nothing created',
    async () => {
      const file = join(tempDir('sf-tenants-'), 'tenants.csv');
      writeFileSync(file, 'name,email,first_name,last_name\ndollar_row,admin@dollar.example,Ann,Co$ts\n');
      const r = await provision(['--tenants', file, '--out-dir', tempDir('sf-envs-')]);
      assertExit(r, 2, /tenant "dollar_row": last_name holds a \$/);
      assert.equal(await roleCount('dollar_row'), 0);
    },
  );

  it(
    "quotes inside values (O'Brien, a password with ' and \") are written as they are: " +
      'util.parseEnv, docker and Compose read them back; --rotate-password replaces the file atomically',
    async () => {
      const out = tempDir('sf-envs-');
      const file = join(tempDir('sf-tenants-'), 'tenants.csv');
      writeFileSync(file, "name,email,first_name,last_name\nquoted,admin@quoted.example,Seán,O'Brien\n");
      const email = {
        EMAIL_PROVIDER: 'smtp',
        EMAIL_FROM_NAME: 'Acme "Cloud"',
        SMTP_HOST: 'smtp.example.com',
        SMTP_USERNAME: 'mailer',
        SMTP_PASSWORD: 'it\'s"fine=ok',
      };
      assertExit(await provision(['--tenants', file, '--out-dir', out], email), 0, /quoted: created/);
      const path = join(out, 'quoted.env');
      const content = readFileSync(path, 'utf8');
      const expected = {
        ...email,
        AUTO_SUPERADMIN_FIRSTNAME: 'Seán',
        AUTO_SUPERADMIN_LASTNAME: "O'Brien",
        AUTO_SUPERADMIN_EMAIL: 'admin@quoted.example',
        DATABASE_SCHEMA: 'tenant_quoted',
        SKIP_SETUP: 'true',
      };
      const readers: Record<string, Record<string, string>> = {
        'util.parseEnv': nodeEnv(content),
        'docker run --env-file': dockerEnv(content, { trimQuotes: false }),
        'docker run --env-file (quote-stripping versions)': dockerEnv(content, { trimQuotes: true }),
        'compose env_file': composeEnv(content),
        ...(hasDockerCli() && { 'the docker CLI': await dockerCliEnv(content) }),
      };
      for (const [name, env] of Object.entries(readers)) {
        for (const [key, value] of Object.entries(expected)) assert.equal(env[key], value, `${name}: ${key}`);
        assert.equal(env.DATABASE_URL, readers['util.parseEnv']!.DATABASE_URL, name);
      }
      assert.equal(statSync(path).mode & 0o777, 0o600);

      const inode = statSync(path).ino;
      assertExit(
        await provision(['--tenants', file, '--out-dir', out, '--rotate-password'], email),
        0,
        /quoted: rotated/,
      );
      assert.notEqual(statSync(path).ino, inode, 'a new file renamed into place, not the old one rewritten');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.notEqual(nodeEnv(readFileSync(path, 'utf8')).DATABASE_URL, readers['util.parseEnv']!.DATABASE_URL);
      assert.deepEqual(readdirSync(out), ['quoted.env'], 'no temporary file left');
    },
  );
});
