// Configuration contract: everything here fails (or succeeds) before any connection is attempted.
// DATABASE_URL points at a port nobody listens on: a run that tried to connect would not exit 2.
import assert from 'node:assert/strict';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { assertExit, assertNoSecrets, runCli, type Env } from './harness/cli.js';
import { tempDir } from './harness/net.js';

const PASSWORD = 'Correct-Horse-Battery-9';
const DB_PASSWORD = 'db:pa@ss/word%';
const valid: Env = {
  SKIP_SETUP: 'true',
  DATABASE_URL: `postgres://tenant:${encodeURIComponent(DB_PASSWORD)}@127.0.0.1:9/superfasttt`,
  DATABASE_SCHEMA: 'tenant_a',
  DATABASE_CONNECT_TIMEOUT: '1',
  AUTO_SUPERADMIN_EMAIL: 'admin@example.com',
  AUTO_SUPERADMIN_FIRSTNAME: 'Alice',
  AUTO_SUPERADMIN_LASTNAME: 'Martin',
  AUTO_SUPERADMIN_PASSWORD: PASSWORD,
};
const dir = tempDir('sf-config-');

describe('command line', () => {
  it('--version prints the version of package.json', async () => {
    const r = await runCli({}, { args: ['--version'] });
    assertExit(r, 0);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('--help lists the commands, every variable and the exit codes, and points to the README and docs/', async () => {
    const r = await runCli({}, { args: ['--help'] });
    assertExit(r, 0, /bootstrap/, /DATABASE_URL/, /AUTO_SUPERADMIN_PHONE/, /Exit codes/, /README\.md and docs\//);
  });

  it('an unknown command is exit 2', async () => {
    assertExit(await runCli({}, { args: ['bootstrapp'] }), 2, /unknown command or option: bootstrapp/);
  });
});

describe('SKIP_SETUP', () => {
  for (const value of [undefined, '', 'false']) {
    it(`${JSON.stringify(value)}: wizard stays, nothing checked, exit 0`, async () => {
      // Even a broken configuration is not looked at: nothing is done.
      const r = await runCli({ ...valid, SKIP_SETUP: value, DATABASE_URL: 'nonsense' });
      assertExit(r, 0, /setup wizard stays enabled/);
    });
  }
  for (const value of ['TRUE', 'yes', '1', 'true ']) {
    it(`${JSON.stringify(value)} is a typo that would leave the wizard open: exit 2`, async () => {
      assertExit(await runCli({ ...valid, SKIP_SETUP: value }), 2, /SKIP_SETUP must be true or false/);
    });
  }
});

describe('validation reports every problem at once, exit 2, without secrets', () => {
  const cases: Array<[string, Env, RegExp]> = [
    ['email', { AUTO_SUPERADMIN_EMAIL: 'not-an-email' }, /AUTO_SUPERADMIN_EMAIL: must be an email address/],
    ['phone not E.164', { AUTO_SUPERADMIN_PHONE: '06 12 34 56 78' }, /AUTO_SUPERADMIN_PHONE: must be an E.164/],
    ['URL scheme', { DATABASE_URL: 'mysql://u:p@h/db' }, /DATABASE_URL: must start with postgres/],
    ['URL unparsable', { DATABASE_URL: 'postgres://u:p@:x/db' }, /DATABASE_URL: is not a valid URL/],
    [
      'URL port',
      { DATABASE_URL: 'postgres://u:secretpw@h:99999/db' },
      /DATABASE_URL: (has an invalid port|is not a valid URL)/,
    ],
    ['URL database', { DATABASE_URL: 'postgres://u:secretpw@h:5432' }, /DATABASE_URL: has no database name/],
    [
      'URL sslmode',
      { DATABASE_URL: 'postgres://u:secretpw@h/db?sslmode=strict' },
      /DATABASE_URL: has an invalid sslmode/,
    ],
    [
      'URL unknown parameter',
      { DATABASE_URL: 'postgres://u:secretpw@h/db?options=-c%20x' },
      /unsupported parameter "options"/,
    ],
    [
      'schema with a quote',
      { DATABASE_SCHEMA: 'tenant"; drop schema public; --' },
      /DATABASE_SCHEMA: must be a plain PostgreSQL identifier/,
    ],
    ['schema public', { DATABASE_SCHEMA: 'public' }, /DATABASE_SCHEMA: must be the tenant schema/],
    ['schema pg_', { DATABASE_SCHEMA: 'pg_tenant' }, /DATABASE_SCHEMA: must not start with pg_/],
    ['schema too long', { DATABASE_SCHEMA: 't'.repeat(64) }, /DATABASE_SCHEMA: must be at most 63 bytes/],
    ['timeout', { DATABASE_CONNECT_TIMEOUT: '10s' }, /DATABASE_CONNECT_TIMEOUT: must be a whole number/],
    ['timeout zero', { DATABASE_LOCK_TIMEOUT: '0' }, /DATABASE_LOCK_TIMEOUT: must be at least 1/],
    ['boolean', { DATABASE_SSL: 'yes' }, /DATABASE_SSL: must be true or false/],
    [
      'short password',
      { AUTO_SUPERADMIN_PASSWORD: 'Short-9' },
      /AUTO_SUPERADMIN_PASSWORD: must be at least 12 characters/,
    ],
    [
      'placeholder password',
      { AUTO_SUPERADMIN_PASSWORD: 'xxxxxxxxxxxxxxxx' },
      /AUTO_SUPERADMIN_PASSWORD: looks like a placeholder/,
    ],
    [
      'changeme password',
      { AUTO_SUPERADMIN_PASSWORD: 'ChangeMe-Please-2024' },
      /AUTO_SUPERADMIN_PASSWORD: looks like a placeholder/,
    ],
    [
      'template word password',
      { AUTO_SUPERADMIN_PASSWORD: 'Password-2024!' },
      /AUTO_SUPERADMIN_PASSWORD: looks like a placeholder/,
    ],
    [
      'digits-only password',
      { AUTO_SUPERADMIN_PASSWORD: '918273645091' },
      /AUTO_SUPERADMIN_PASSWORD: looks like a placeholder/,
    ],
    [
      'name with control character',
      { AUTO_SUPERADMIN_FIRSTNAME: 'Al\u0007ice' },
      /AUTO_SUPERADMIN_FIRSTNAME: must not contain control characters/,
    ],
    [
      'password with a tab',
      { AUTO_SUPERADMIN_PASSWORD: 'Correct-Horse\tBattery-9' },
      /AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\+0009 \(tab\) at character 14\n/,
    ],
    // URL parsing would silently drop the tab, and connect with another password.
    [
      'database URL with a tab',
      { DATABASE_URL: 'postgres://tenant:secret\tpw@127.0.0.1:9/superfasttt' },
      /DATABASE_URL: must not contain control characters: U\+0009 \(tab\) at character 25\n/,
    ],
    [
      'ssl contradiction',
      { DATABASE_SSL: 'true', DATABASE_URL: 'postgres://u:secretpw@h/db?sslmode=disable' },
      /sslmode=disable contradicts DATABASE_SSL=true/,
    ],
    ['log format', { LOG_FORMAT: 'xml' }, /LOG_FORMAT: must be one of: text, json/],
  ];
  for (const [name, overrides, message] of cases) {
    it(name, async () => {
      const env = { ...valid, ...overrides };
      const r = await runCli(env);
      assertExit(r, 2, message, /invalid configuration/, /docs\/configuration\.md/);
      assertNoSecrets(r, [PASSWORD, DB_PASSWORD, 'secretpw', 'secret\tpw', env.AUTO_SUPERADMIN_PASSWORD]);
    });
  }

  it('lists all missing and invalid variables in one run', async () => {
    const r = await runCli({ SKIP_SETUP: 'true', AUTO_SUPERADMIN_EMAIL: 'nope', AUTO_SUPERADMIN_PASSWORD: 'abc' });
    assertExit(
      r,
      2,
      /DATABASE_URL: is required/,
      /DATABASE_SCHEMA: is required/,
      /AUTO_SUPERADMIN_EMAIL: must be/,
      /AUTO_SUPERADMIN_FIRSTNAME: is required/,
      /AUTO_SUPERADMIN_PASSWORD: must be at least 12/,
    );
    assertNoSecrets(r, ['abc']);
  });

  it('warns about an unknown variable with one of our prefixes (a typo)', async () => {
    const r = await runCli({ ...valid, AUTO_SUPERADMIN_PASWORD: 'x' });
    assertExit(r, 3, /AUTO_SUPERADMIN_PASWORD|AUTO_SUPERADMIN_PASWORD is not a variable/);
    assert.match(r.stderr, /AUTO_SUPERADMIN_PASWORD is not a variable this version knows/);
  });

  it('folds a mixed-case schema name to lowercase with a warning', async () => {
    const r = await runCli({ ...valid, DATABASE_SCHEMA: 'tenant_ClientA' });
    assertExit(r, 3); // valid configuration, then the closed port
    assert.match(r.stderr, /"tenant_ClientA" is used as "tenant_clienta"/);
  });

  it('JSON logs: every line is one JSON object with the problems listed', async () => {
    const r = await runCli({ ...valid, LOG_FORMAT: 'json', AUTO_SUPERADMIN_EMAIL: 'bad' });
    assertExit(r, 2);
    const lines = r.output.trim().split('\n');
    const objects = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const error = objects.find((o) => o.level === 'error');
    assert.ok(error, r.output);
    assert.deepEqual(error.problems, ['AUTO_SUPERADMIN_EMAIL: must be an email address such as admin@example.com']);
    assert.equal(error.exit_code, 2);
    for (const o of objects)
      for (const key of ['time', 'level', 'step', 'message', 'duration_ms'])
        assert.ok(key in o, `${key} missing in ${JSON.stringify(o)}`);
  });
});

describe('_FILE secrets', () => {
  it('reads a secret from its _FILE, trimming one trailing newline', async () => {
    const file = join(dir, 'password');
    writeFileSync(file, 'short\n');
    const r = await runCli({ ...valid, AUTO_SUPERADMIN_PASSWORD: undefined, AUTO_SUPERADMIN_PASSWORD_FILE: file });
    // The file's content was read and validated (too short), which proves it was used.
    assertExit(r, 2, /AUTO_SUPERADMIN_PASSWORD: must be at least 12 characters/);
  });

  it(
    'a password file ending with two newlines: ' +
      'exit 2, naming the variable, its file and where, never the password',
    async () => {
      const file = join(dir, 'password-two-newlines');
      writeFileSync(file, `${PASSWORD}\n\n`);
      const r = await runCli({ ...valid, AUTO_SUPERADMIN_PASSWORD: undefined, AUTO_SUPERADMIN_PASSWORD_FILE: file });
      assertExit(
        r,
        2,
        new RegExp(
          'AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\\+000A \\(line feed\\) at character ' +
            '24, the last one; only one final newline',
        ),
        /\(value read from AUTO_SUPERADMIN_PASSWORD_FILE\)/,
      );
      assertNoSecrets(r, [PASSWORD, `${PASSWORD}\n`]);
    },
  );

  // Exactly one final \n or \r\n is removed; anything else stays, and a control character is refused.
  const contents: Array<[string, string, string | RegExp]> = [
    ['one newline', `${PASSWORD}\n`, PASSWORD],
    ['one CRLF', `${PASSWORD}\r\n`, PASSWORD],
    ['no newline', PASSWORD, PASSWORD],
    ['spaces around', ` ${PASSWORD} \n`, ` ${PASSWORD} `],
    [
      'two newlines',
      `${PASSWORD}\n\n`,
      new RegExp(
        '^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\\+000A \\(line feed\\) at character 24, ' +
          'the last one; ',
      ),
    ],
    [
      'two CRLF',
      `${PASSWORD}\r\n\r\n`,
      new RegExp(
        '^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\\+000D \\(carriage return\\) at ' +
          'character 24 \\(and 1 more\\); ',
      ),
    ],
    [
      'a lone CR',
      `${PASSWORD}\r`,
      new RegExp(
        '^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\\+000D \\(carriage return\\) at ' +
          'character 24, the last one; ',
      ),
    ],
    [
      'a leading newline',
      `\n${PASSWORD}\n`,
      /^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\+000A \(line feed\) at character 1 \(/,
    ],
    [
      'a tab before the newline',
      `${PASSWORD}\t\n`,
      new RegExp(
        '^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\\+0009 \\(tab\\) at character 24, the ' +
          'last one \\(value',
      ),
    ],
    [
      'a NUL',
      `Correct\0Horse-Battery-9`,
      /^AUTO_SUPERADMIN_PASSWORD: must not contain control characters: U\+0000 \(NUL\) at character 8 \(/,
    ],
  ];
  for (const [name, content, expected] of contents) {
    it(`file content with ${name}: ${typeof expected === 'string' ? 'accepted' : 'refused'} (in process)`, () => {
      const file = join(dir, `password-${name.replace(/\W/g, '-')}`);
      writeFileSync(file, content);
      const env = { ...valid, AUTO_SUPERADMIN_PASSWORD: undefined, AUTO_SUPERADMIN_PASSWORD_FILE: file };
      if (typeof expected === 'string') {
        assert.equal(loadConfig(env).config.admin.password, expected);
        return;
      }
      assert.throws(
        () => loadConfig(env),
        (error) => {
          assert.ok(error instanceof ConfigError);
          assert.equal(error.problems.length, 1, error.problems.join('\n'));
          assert.match(error.problems[0]!, expected);
          assert.match(error.problems[0]!, /\(value read from AUTO_SUPERADMIN_PASSWORD_FILE\)$/);
          assertNoSecrets(error.problems[0]!, [PASSWORD, 'Correct', 'Horse-Battery-9']);
          return true;
        },
      );
    });
  }

  it('both NAME and NAME_FILE set: exit 2', async () => {
    const file = join(dir, 'url');
    writeFileSync(file, valid.DATABASE_URL!);
    const r = await runCli({ ...valid, DATABASE_URL_FILE: file });
    assertExit(r, 2, /DATABASE_URL: both DATABASE_URL and DATABASE_URL_FILE are set/);
    assertNoSecrets(r, [DB_PASSWORD]);
  });

  it('an unreadable _FILE names the variable and the path', async () => {
    const r = await runCli({ ...valid, DATABASE_URL: undefined, DATABASE_URL_FILE: join(dir, 'missing') });
    assertExit(r, 2, /DATABASE_URL_FILE: cannot read the file .*missing \(ENOENT\)/);
  });

  it('a DATABASE_URL from a file is used (connection attempted, no secret printed)', async () => {
    const file = join(dir, 'url2');
    writeFileSync(file, valid.DATABASE_URL! + '\n');
    const r = await runCli({ ...valid, DATABASE_URL: undefined, DATABASE_URL_FILE: file });
    assertExit(r, 3, /127\.0\.0\.1:9 unreachable/);
    assertNoSecrets(r, [DB_PASSWORD]);
  });
});

describe('termination log', () => {
  it('the failure message is written to TERMINATION_LOG, without secrets', async () => {
    const path = join(dir, 'termination-log');
    const r = await runCli({ ...valid, TERMINATION_LOG: path, AUTO_SUPERADMIN_PHONE: 'call me' });
    assertExit(r, 2);
    assert.ok(existsSync(path));
    const text = readFileSync(path, 'utf8');
    assert.match(text, /AUTO_SUPERADMIN_PHONE: must be an E.164/);
    assertNoSecrets(text, [PASSWORD, DB_PASSWORD]);
  });
});

describe('storage and email variables', () => {
  const s3: Env = {
    STORAGE_PROVIDER: 's3',
    STORAGE_ENDPOINT: 'https://s3.example',
    STORAGE_BUCKET: 'superfasttt-a',
    STORAGE_ACCESS_KEY: 'AKIAEXAMPLEKEY',
    STORAGE_SECRET_KEY: 'Secret-Key-Value-123',
  };
  const cases: Array<[string, Env, RegExp]> = [
    ['unknown storage provider', { STORAGE_PROVIDER: 'gcs' }, /STORAGE_PROVIDER: must be one of: s3/],
    [
      'bucket required with s3',
      { ...s3, STORAGE_BUCKET: undefined },
      /STORAGE_BUCKET: is required when STORAGE_PROVIDER=s3/,
    ],
    [
      'keys required with s3',
      { ...s3, STORAGE_ACCESS_KEY: undefined, STORAGE_SECRET_KEY: undefined },
      /STORAGE_ACCESS_KEY: is required when STORAGE_PROVIDER=s3[\s\S]*STORAGE_SECRET_KEY: is required/,
    ],
    ['bucket with underscore', { ...s3, STORAGE_BUCKET: 'tenant_clienta' }, /STORAGE_BUCKET: must be a bucket name/],
    [
      'http endpoint while secure',
      { ...s3, STORAGE_ENDPOINT: 'http://s3.example' },
      /STORAGE_ENDPOINT: is http but STORAGE_SECURE=true/,
    ],
    [
      'endpoint with credentials',
      { ...s3, STORAGE_ENDPOINT: 'https://user:pw@s3.example' },
      /STORAGE_ENDPOINT: must not contain credentials/,
    ],
    ['endpoint not a URL', { ...s3, STORAGE_ENDPOINT: 's3.example' }, /STORAGE_ENDPOINT: must be a URL/],
    [
      'prefix with ..',
      { ...s3, STORAGE_PREFIX: 'tenant/../other' },
      /STORAGE_PREFIX: must not contain . or .. segments/,
    ],
    ['prefix starting with /', { ...s3, STORAGE_PREFIX: '/tenant' }, /STORAGE_PREFIX: must not start with \//],
    ['unknown email provider', { EMAIL_PROVIDER: 'mailgun' }, /EMAIL_PROVIDER: must be one of: smtp, sendgrid/],
    [
      'smtp variables required',
      { EMAIL_PROVIDER: 'smtp' },
      new RegExp(
        'EMAIL_FROM: is required when EMAIL_PROVIDER is set[\\s\\S]*SMTP_HOST: is required when ' +
          'EMAIL_PROVIDER=smtp[\\s\\S]*SMTP_USERNAME[\\s\\S]*SMTP_PASSWORD',
      ),
    ],
    [
      'smtp secure value',
      {
        EMAIL_PROVIDER: 'smtp',
        EMAIL_FROM: 'a@b.example',
        SMTP_HOST: 'smtp.example',
        SMTP_USERNAME: 'u',
        SMTP_PASSWORD: 'p-p-p-p',
        SMTP_SECURE: 'ssl',
      },
      /SMTP_SECURE: must be one of: starttls, tls, none/,
    ],
    [
      'smtp port',
      {
        EMAIL_PROVIDER: 'smtp',
        EMAIL_FROM: 'a@b.example',
        SMTP_HOST: 'smtp.example',
        SMTP_USERNAME: 'u',
        SMTP_PASSWORD: 'p-p-p-p',
        SMTP_PORT: '70000',
      },
      /SMTP_PORT: must be at most 65535/,
    ],
    [
      'sendgrid key required',
      { EMAIL_PROVIDER: 'sendgrid', EMAIL_FROM: 'a@b.example' },
      /SENDGRID_API_KEY: is required when EMAIL_PROVIDER=sendgrid/,
    ],
    [
      'sendgrid key format',
      { EMAIL_PROVIDER: 'sendgrid', EMAIL_FROM: 'a@b.example', SENDGRID_API_KEY: 'not-a-key-value' },
      /SENDGRID_API_KEY: must be a SendGrid API key/,
    ],
    [
      'smtp password with a line feed',
      {
        EMAIL_PROVIDER: 'smtp',
        EMAIL_FROM: 'a@b.example',
        SMTP_HOST: 'smtp.example',
        SMTP_USERNAME: 'u',
        SMTP_PASSWORD: 'smtp-pass\nword',
      },
      /SMTP_PASSWORD: must not contain control characters: U\+000A \(line feed\) at character 10\n/,
    ],
    [
      'storage key with a leading tab',
      { ...s3, STORAGE_SECRET_KEY: '\tSecret-Key-Value-123' },
      /STORAGE_SECRET_KEY: must not contain control characters: U\+0009 \(tab\) at character 1\n/,
    ],
    [
      'sendgrid url must be https',
      {
        EMAIL_PROVIDER: 'sendgrid',
        EMAIL_FROM: 'a@b.example',
        SENDGRID_API_KEY: 'SG.abc.def',
        SENDGRID_API_URL: 'http://api.sendgrid.com',
      },
      /SENDGRID_API_URL: must start with https:\/\//,
    ],
    [
      'welcome without provider',
      { AUTO_SUPERADMIN_WELCOME_EMAIL: 'true', APP_URL: 'https://app.example' },
      /AUTO_SUPERADMIN_WELCOME_EMAIL: is true but no EMAIL_PROVIDER/,
    ],
    [
      'welcome without APP_URL',
      { AUTO_SUPERADMIN_WELCOME_EMAIL: 'true' },
      /APP_URL: is required when AUTO_SUPERADMIN_WELCOME_EMAIL=true/,
    ],
    ['ENABLED_APIS names', { ENABLED_APIS: 'users, Files!' }, /ENABLED_APIS: must be comma-separated module names/],
    ['STORAGE_TIMEOUT', { STORAGE_TIMEOUT: '0' }, /STORAGE_TIMEOUT: must be at least 1/],
  ];
  for (const [name, overrides, message] of cases) {
    it(name, async () => {
      const env = { ...valid, ...overrides };
      const r = await runCli(env);
      assertExit(r, 2, message);
      assertNoSecrets(r, [PASSWORD, DB_PASSWORD, env.STORAGE_SECRET_KEY, env.SMTP_PASSWORD, env.SENDGRID_API_KEY]);
    });
  }

  it('a variable of a provider that is not chosen is reported as unused', async () => {
    const r = await runCli({
      ...valid,
      EMAIL_PROVIDER: 'sendgrid',
      EMAIL_FROM: 'a@b.example',
      SENDGRID_API_KEY: 'SG.abc.def',
      SMTP_HOST: 'smtp.example',
    });
    assertExit(r, 3); // valid, then the closed database port
    assert.match(r.stderr, /SMTP_HOST is set but not used \(EMAIL_PROVIDER=sendgrid\)/);
  });
});
