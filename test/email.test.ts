// Email verification against real servers: smtp-server (STARTTLS, implicit TLS, plaintext, no
// AUTH) and a local HTTPS server speaking the SendGrid v3 API. Every failure: exit 7, a clear
// message, nothing marked done, no secret printed. Plus the optional welcome email.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertExit, assertNoSecrets, runCli, type Env, type RunResult } from './harness/cli.js';
import { ADMIN, instanceEnv, setupState, users } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer, type Tenant } from './harness/postgres.js';
import { startSendgrid, type SendgridServer } from './harness/sendgrid.js';
import { startSmtp, type SmtpMode, type SmtpServer } from './harness/smtp.js';
import { startSilentServer } from './harness/net.js';

let pg: PgServer;
let sendgrid: SendgridServer;
const smtp = new Map<SmtpMode, SmtpServer>();
const outputs: RunResult[] = [];
const secrets: string[] = [ADMIN.password];
const GOOD_KEY = 'SG.good-key.0123456789abcdef';
const NO_SEND_KEY = 'SG.read-only.0123456789abcdef';

before(async () => {
  pg = await startPostgres({ tls: false });
  sendgrid = await startSendgrid();
  sendgrid.addKey(GOOD_KEY, ['mail.send', 'scopes.read']);
  sendgrid.addKey(NO_SEND_KEY, ['scopes.read', 'stats.read']);
  for (const mode of ['starttls', 'tls', 'no-starttls', 'plain', 'no-auth'] as const)
    smtp.set(mode, await startSmtp(mode));
  secrets.push(GOOD_KEY, NO_SEND_KEY, ...[...smtp.values()].map((s) => s.password));
});
after(async () => {
  await Promise.all([pg?.stop(), sendgrid?.stop(), ...[...smtp.values()].map((s) => s.stop())]);
});

function smtpEnv(mode: SmtpMode, secure: string, overrides: Env = {}): Env {
  const server = smtp.get(mode)!;
  return {
    EMAIL_PROVIDER: 'smtp',
    EMAIL_FROM: 'noreply@client.example',
    EMAIL_FROM_NAME: 'superfasttt',
    SMTP_HOST: server.host,
    SMTP_PORT: String(server.port),
    SMTP_USERNAME: server.username,
    SMTP_PASSWORD: server.password,
    SMTP_SECURE: secure,
    NODE_EXTRA_CA_CERTS: server.caFile,
    EMAIL_TIMEOUT: '5',
    ...overrides,
  };
}

function sendgridEnv(key: string, overrides: Env = {}): Env {
  return {
    EMAIL_PROVIDER: 'sendgrid',
    EMAIL_FROM: 'noreply@client.example',
    SENDGRID_API_KEY: key,
    SENDGRID_API_URL: sendgrid.url,
    NODE_EXTRA_CA_CERTS: sendgrid.caFile,
    EMAIL_TIMEOUT: '5',
    ...overrides,
  };
}

async function bootstrap(email: Env, tenant?: Tenant) {
  tenant ??= await createTenant(pg);
  secrets.push(tenant.password);
  const result = await runCli(instanceEnv(tenant, email));
  outputs.push(result);
  return { tenant, result };
}

async function assertNotDone(schema: string) {
  assert.equal((await setupState(pg, schema))?.completed, false, 'must not be marked done');
  assert.equal((await users(pg, schema)).length, 0, 'the admin must not be created');
}

describe('SMTP verified by authenticating', () => {
  it('STARTTLS + AUTH: exit 0, no email sent, settings recorded without the password', async () => {
    const server = smtp.get('starttls')!;
    const before = server.mails.length;
    const { tenant, result } = await bootstrap(smtpEnv('starttls', 'starttls'));
    assertExit(
      result,
      0,
      /\[email\] SMTP 127\.0\.0\.1:\d+ \(SMTP_SECURE=starttls\): connected with TLS and authenticated as /,
    );
    assert.equal(server.mails.length, before, 'verification sends no email');
    assert.ok(
      server.authAttempts.some((a) => a.ok && a.username === server.username),
      'AUTH was really performed',
    );
    const [row] = await pg.admin<
      { value: Record<string, unknown> }[]
    >`select value from ${pg.admin(tenant.schema)}.instance_settings where key = 'email'`;
    assert.deepEqual(row?.value, {
      provider: 'smtp',
      from: 'noreply@client.example',
      from_name: 'superfasttt',
      host: '127.0.0.1',
      port: server.port,
      secure: 'starttls',
    });
  });

  it('implicit TLS (SMTP_SECURE=tls)', async () => {
    assertExit((await bootstrap(smtpEnv('tls', 'tls'))).result, 0, /connected with TLS and authenticated/);
  });

  it('plaintext only when chosen explicitly (SMTP_SECURE=none)', async () => {
    assertExit((await bootstrap(smtpEnv('plain', 'none'))).result, 0, /connected without TLS and authenticated/);
  });
});

describe('SMTP failures (exit 7, nothing marked done)', () => {
  const cases: Array<[string, () => Env, RegExp, RegExp]> = [
    [
      'wrong password',
      () => smtpEnv('starttls', 'starttls', { SMTP_PASSWORD: 'Wrong-Smtp-Password-1' }),
      /authentication refused for/,
      /SMTP_USERNAME and SMTP_PASSWORD/,
    ],
    [
      'server without STARTTLS while starttls is required',
      () => smtpEnv('no-starttls', 'starttls'),
      /does not offer STARTTLS/,
      /SMTP_SECURE/,
    ],
    [
      'server without AUTH',
      () => smtpEnv('no-auth', 'starttls'),
      /(offers no authentication|authentication refused)/,
      /SMTP/,
    ],
    [
      'closed port',
      () => smtpEnv('starttls', 'starttls', { SMTP_PORT: '9' }),
      /unreachable/,
      /SMTP_HOST and SMTP_PORT/,
    ],
    [
      'untrusted certificate',
      () => smtpEnv('starttls', 'starttls', { NODE_EXTRA_CA_CERTS: undefined }),
      /TLS failed/,
      /NODE_EXTRA_CA_CERTS/,
    ],
    [
      'implicit TLS against a STARTTLS port',
      () => smtpEnv('starttls', 'tls'),
      /(TLS failed|no answer within EMAIL_TIMEOUT)/,
      /SMTP_SECURE/,
    ],
  ];
  for (const [name, makeEnv, message, fix] of cases) {
    it(name, async () => {
      const env = makeEnv();
      if (env.SMTP_PASSWORD) secrets.push(env.SMTP_PASSWORD);
      const { tenant, result } = await bootstrap(env);
      assertExit(result, 7, message, fix);
      await assertNotDone(tenant.schema);
    });
  }
});

describe('servers that accept the connection and never answer (bounded by EMAIL_TIMEOUT, exit 7)', () => {
  it('SMTP', async () => {
    const silent = await startSilentServer();
    try {
      const { tenant, result } = await bootstrap(
        smtpEnv('starttls', 'starttls', { SMTP_PORT: String(silent.port), EMAIL_TIMEOUT: '1' }),
      );
      assertExit(result, 7, /no answer within EMAIL_TIMEOUT=1 s/);
      await assertNotDone(tenant.schema);
    } finally {
      await silent.stop();
    }
  });

  it('SendGrid', async () => {
    sendgrid.failNext(1, 'hang');
    try {
      const { tenant, result } = await bootstrap(sendgridEnv(GOOD_KEY, { EMAIL_TIMEOUT: '1' }));
      assertExit(result, 7, /no answer within EMAIL_TIMEOUT=1 s/, /SENDGRID_API_URL/);
      await assertNotDone(tenant.schema);
    } finally {
      sendgrid.failNext(0, 500);
    }
  });
});

describe('SendGrid verified by its scopes, without sending', () => {
  it('a key with mail.send: exit 0, no email sent', async () => {
    const before = sendgrid.mails.length;
    const { result } = await bootstrap(sendgridEnv(GOOD_KEY));
    assertExit(result, 0, /\[email\] SendGrid https:\/\/127\.0\.0\.1:\d+: API key valid with the mail\.send scope/);
    assert.equal(sendgrid.mails.length, before);
    assert.ok(sendgrid.requests.some((r) => r.method === 'GET' && r.path === '/v3/scopes' && r.authorized));
  });

  const cases: Array<[string, () => Env, RegExp, RegExp]> = [
    [
      'invalid key',
      () => sendgridEnv('SG.unknown.key0000000000'),
      /API key is invalid or revoked \(401\)/,
      /SENDGRID_API_KEY/,
    ],
    ['key without mail.send', () => sendgridEnv(NO_SEND_KEY), /lacks the mail\.send scope/, /Mail Send/],
    [
      'unreachable API',
      () => sendgridEnv(GOOD_KEY, { SENDGRID_API_URL: 'https://127.0.0.1:9' }),
      /unreachable \(ECONNREFUSED\)/,
      /SENDGRID_API_URL/,
    ],
    [
      'untrusted certificate',
      () => sendgridEnv(GOOD_KEY, { NODE_EXTRA_CA_CERTS: undefined }),
      /TLS failed/,
      /NODE_EXTRA_CA_CERTS/,
    ],
  ];
  for (const [name, makeEnv, message, fix] of cases) {
    it(name, async () => {
      const { tenant, result } = await bootstrap(makeEnv());
      assertExit(result, 7, message, fix);
      await assertNotDone(tenant.schema);
    });
  }
});

describe('welcome email', () => {
  const welcome = { AUTO_SUPERADMIN_WELCOME_EMAIL: 'true', APP_URL: 'https://clienta.superfasttt.example/' };

  it('SMTP: sent once when the account is created, with the login link and never the password', async () => {
    const server = smtp.get('starttls')!;
    const before = server.mails.length;
    const { tenant, result } = await bootstrap({ ...smtpEnv('starttls', 'starttls'), ...welcome });
    assertExit(result, 0, /welcome email sent to admin@client\.example/);
    const mails = server.mails.slice(before);
    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.deepEqual(mail.to, ['admin@client.example']);
    assert.match(mail.text, /https:\/\/clienta\.superfasttt\.example\/login/);
    assert.ok(!mail.raw.includes(ADMIN.password), 'the password must never be emailed');

    const again = await bootstrap({ ...smtpEnv('starttls', 'starttls'), ...welcome }, tenant);
    assertExit(again.result, 0, /welcome email already sent/);
    assert.equal(server.mails.length, before + 1, 'a re-run sends nothing');
  });

  it('not sent for an account that existed before', async () => {
    const tenant = await createTenant(pg);
    assertExit((await bootstrap({}, tenant)).result, 0);
    const r = await bootstrap({ ...sendgridEnv(GOOD_KEY), ...welcome }, tenant);
    assertExit(r.result, 0, /account existed before: no welcome email/);
  });

  it('SendGrid: a failed send exits 7 after the instance is complete, and the next run sends it', async () => {
    const tenant = await createTenant(pg);
    const env = instanceEnv(tenant, { ...sendgridEnv(GOOD_KEY), ...welcome });
    const before = sendgrid.mails.length;
    sendgrid.failSendNext(1, 500); // the scopes request passes, the send answers 500
    const first = await runCli(env);
    outputs.push(first);
    assertExit(first, 7, /SendGrid answered HTTP 500/);
    assert.equal(
      (await setupState(pg, tenant.schema))?.completed,
      true,
      'the admin and the marker were committed before',
    );
    assert.equal(sendgrid.mails.length, before);

    const second = await runCli(env);
    outputs.push(second);
    assertExit(second, 0, /welcome email sent to admin@client\.example/);
    assert.equal(sendgrid.mails.length, before + 1);
    const body = JSON.stringify(sendgrid.mails.at(-1)?.body);
    assert.match(body, /https:\/\/clienta\.superfasttt\.example\/login/);
    assert.ok(!body.includes(ADMIN.password), 'the password must never be emailed');
  });
});

describe('secrets', () => {
  it('no key or password appears in any output', () => {
    assert.ok(outputs.length >= 10);
    for (const output of outputs) assertNoSecrets(output, secrets);
  });
});
