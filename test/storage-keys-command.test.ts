// PROVISION_STORAGE_KEY_COMMAND (src/provision/storage-keys/command.ts) with real commands, no mocks: executables
// written into a temp dir at test time. A working provider CLI in Node drives the local IAM of the harness
// (test/harness/iam.ts) with @aws-sdk/client-iam, and the keys it returns are tried against the S3 front that
// enforces that IAM's policies (test/harness/s3-policy.ts). The others hang, fail, print garbage or are not there.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { StorageError } from '../src/errors.js';
import { commandProvider, MAX_STDOUT_BYTES, parseCommand } from '../src/provision/storage-keys/command.js';
import type { KeyScope } from '../src/provision/storage-keys/provider.js';
import { registerSecret } from '../src/redact.js';
import { type AwsKey, type IamServer, startIam } from './harness/iam.js';
import { type PolicyS3Server, startPolicyS3 } from './harness/s3-policy.js';
import { writeIamKeyCommand } from './harness/key-command.js';

const SHARED = 'superfasttt-shared';
const OWN = 'superfasttt-acme';

let dir: string;
let iamServer: IamServer;
let s3Server: PolicyS3Server;
let admin: S3Client;
const clients: S3Client[] = [];
/** The PATH the commands get: this node first, for `#!/usr/bin/env node`. */
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
/** Every error message and fix seen: none may hold a secret the working CLI returned. */
const messages: string[] = [];
const issuedSecrets: string[] = [];

const prefixScope = (tenant: string): KeyScope => ({ tenant, mode: 'prefix', bucket: SHARED, prefix: `${tenant}/` });
const signal = () => new AbortController().signal;

/** Writes an executable into the temp dir. */
function script(name: string, text: string, mode = 0o755): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

/** The deployer's storage environment: the IAM's admin key (root for IAM and S3), as provision would pass it. */
function deployerEnv(extra: Record<string, string> = {}) {
  return {
    PATH,
    PROVISION_STORAGE_ACCESS_KEY: iamServer.admin.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: iamServer.admin.secretAccessKey,
    PROVISION_STORAGE_REGION: 'us-east-1',
    PROVISION_STORAGE_ENDPOINT: s3Server.httpEndpoint,
    PROVISION_STORAGE_BUCKET: SHARED,
    ...extra,
  };
}

async function fails(call: Promise<unknown>): Promise<StorageError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    assert.equal(error.exitCode, 6);
    messages.push(error.message, error.fix ?? '');
    return error;
  }
  assert.fail('the call succeeded');
}

function s3Client(key: AwsKey): S3Client {
  const client = new S3Client({
    region: s3Server.region,
    endpoint: s3Server.httpEndpoint,
    forcePathStyle: true,
    credentials: key,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  clients.push(client);
  return client;
}

async function refused(call: Promise<unknown>) {
  await assert.rejects(call, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403);
}

/** A process is gone: no /proc entry, or a zombie waiting for a reaper (it runs nothing). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function eventually(check: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

let working: string;
/** The working CLI as PROVISION_STORAGE_KEY_COMMAND: a JSON array, the IAM endpoint as a fixed argument. */
const workingCommand = () => JSON.stringify([working, iamServer.url]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sf-keycmd-'));
  iamServer = await startIam();
  s3Server = await startPolicyS3(iamServer);
  admin = s3Client(iamServer.admin);
  for (const bucket of [SHARED, OWN]) await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  working = writeIamKeyCommand(dir);
  // The admin secret is registered by provision's configuration loading: the same here.
  registerSecret(iamServer.admin.secretAccessKey);
});

after(async () => {
  for (const client of clients) client.destroy();
  await s3Server?.stop();
  await iamServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('PROVISION_STORAGE_KEY_COMMAND: a working provider CLI (local IAM)', () => {
  it('creates an identity scoped to the tenant folder; its key works there and is refused elsewhere', async () => {
    const keys = commandProvider(workingCommand(), { timeoutSec: 30, env: deployerEnv() });
    assert.equal(keys.name, `PROVISION_STORAGE_KEY_COMMAND (${working})`);
    const scope = prefixScope('tenant_acme');
    assert.deepEqual(await keys.ensureIdentity(scope, signal()), { created: true });
    assert.deepEqual(await keys.ensureIdentity(scope, signal()), { created: false });
    assert.equal(iamServer.user('tenant_acme')?.path, '/superfasttt/');
    assert.deepEqual(await keys.listKeys(scope, signal()), []);

    const key = await keys.createKey(scope, signal());
    issuedSecrets.push(key.secretAccessKey);
    assert.match(key.accessKeyId, /^AKIA/);
    const listed = await keys.listKeys(scope, signal());
    assert.deepEqual(
      listed.map((k) => [k.accessKeyId, k.active]),
      [[key.accessKeyId, true]],
    );
    assert.ok(listed[0]?.createdAt);

    const tenant = s3Client(key);
    await tenant.send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_acme/a.txt', Body: 'acme' }));
    const body = await tenant.send(new GetObjectCommand({ Bucket: SHARED, Key: 'tenant_acme/a.txt' }));
    assert.equal(await body.Body?.transformToString(), 'acme');
    await tenant.send(new DeleteObjectCommand({ Bucket: SHARED, Key: 'tenant_acme/a.txt' }));
    await refused(tenant.send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_other/a.txt', Body: 'x' })));
    await refused(tenant.send(new PutObjectCommand({ Bucket: SHARED, Key: 'a.txt', Body: 'x' })));
    await refused(tenant.send(new PutObjectCommand({ Bucket: OWN, Key: 'tenant_acme/a.txt', Body: 'x' })));

    // Rotation: a second key, the first deleted (twice: gone already is fine).
    const second = await keys.createKey(scope, signal());
    issuedSecrets.push(second.secretAccessKey);
    await keys.deleteKey(scope, key.accessKeyId, signal());
    await keys.deleteKey(scope, key.accessKeyId, signal());
    assert.deepEqual(
      (await keys.listKeys(scope, signal())).map((k) => k.accessKeyId),
      [second.accessKeyId],
    );
    await refused(tenant.send(new PutObjectCommand({ Bucket: SHARED, Key: 'tenant_acme/b.txt', Body: 'x' })));

    await keys.deleteIdentity(scope, signal());
    assert.equal(iamServer.user('tenant_acme'), undefined);
    await keys.deleteIdentity(scope, signal());
    assert.deepEqual(await keys.listKeys(scope, signal()), []);
  });

  it('bucket mode: the key reaches its own bucket and nothing else', async () => {
    const keys = commandProvider(workingCommand(), { timeoutSec: 30, env: deployerEnv() });
    const scope: KeyScope = { tenant: 'tenant_own', mode: 'bucket', bucket: OWN, prefix: '' };
    assert.deepEqual(await keys.ensureIdentity(scope, signal()), { created: true });
    const key = await keys.createKey(scope, signal());
    issuedSecrets.push(key.secretAccessKey);
    const tenant = s3Client(key);
    await tenant.send(new PutObjectCommand({ Bucket: OWN, Key: 'x.txt', Body: 'own' }));
    await refused(tenant.send(new PutObjectCommand({ Bucket: SHARED, Key: 'x.txt', Body: 'x' })));
    await keys.deleteIdentity(scope, signal());
  });

  it('a command that fails after creating a key: the key is masked in the quoted stderr line', async () => {
    const leaky = script(
      'leaky.sh',
      `#!/bin/sh\nout=$("$@")\nprintf '%s\\n' "$out"\necho "could not record the key: $out" >&2\nexit 3\n`,
    );
    const keys = commandProvider(JSON.stringify([leaky, working, iamServer.url]), {
      timeoutSec: 30,
      env: deployerEnv(),
    });
    const scope = prefixScope('tenant_leaky');
    await keys.ensureIdentity(scope, signal()).catch(() => undefined);
    const error = await fails(keys.createKey(scope, signal()));
    const secret = iamServer.user('tenant_leaky')?.keys[0]?.secretAccessKey;
    assert.ok(secret);
    issuedSecrets.push(secret);
    assert.match(error.message, /create-key for tenant_leaky: exited with code 3: could not record the key: /);
    assert.ok(!error.message.includes(secret));
    assert.match(error.message, /\*\*\*/);
  });
});

describe('PROVISION_STORAGE_KEY_COMMAND: commands that misbehave', () => {
  const scope = prefixScope('tenant_bad');

  it('passes only the documented environment: never the database URL', async () => {
    const dump = script('env-dump.sh', `#!/bin/sh\nenv > "$1/env.txt"\necho '{}'\n`);
    const keys = commandProvider(JSON.stringify([dump, dir]), {
      timeoutSec: 10,
      env: deployerEnv({
        PROVISION_DATABASE_URL: 'postgres://deployer:hunter2hunter2@db/app',
        PGPASSWORD: 'hunter2hunter2',
        HOME: '/home/deployer',
        FOO: 'bar',
      }),
    });
    await keys.deleteIdentity(scope, signal());
    const names = readFileSync(join(dir, 'env.txt'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, l.indexOf('=')));
    // The shell may add PWD, SHLVL and _ of its own.
    const ours = names.filter((n) => !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(n)).sort();
    assert.deepEqual(ours, [
      'HOME',
      'PATH',
      'PROVISION_STORAGE_ACCESS_KEY',
      'PROVISION_STORAGE_BUCKET',
      'PROVISION_STORAGE_ENDPOINT',
      'PROVISION_STORAGE_REGION',
      'PROVISION_STORAGE_SECRET_KEY',
    ]);
  });

  it('a hung command is killed with its process group, and the error names the command and operation', async () => {
    const hang = script(
      'hang.sh',
      `#!/bin/sh\nsleep 1000 &\necho $! > "$1/child.pid"\necho $$ > "$1/self.pid"\nwait\n`,
    );
    const keys = commandProvider(JSON.stringify([hang, dir]), { timeoutSec: 1, env: deployerEnv() });
    const started = Date.now();
    const error = await fails(keys.listKeys(scope, signal()));
    assert.ok(Date.now() - started < 5000);
    assert.equal(
      error.message,
      `PROVISION_STORAGE_KEY_COMMAND (${hang}) list-keys for tenant_bad: did not finish within 1 s; ` +
        'it was killed (its whole process group)',
    );
    for (const file of ['self.pid', 'child.pid']) {
      const pid = Number(readFileSync(join(dir, file), 'utf8'));
      assert.ok(await eventually(() => gone(pid)), `${file} ${pid} is still running`);
    }
  });

  it('an aborted call kills the command and rejects with the abort reason', async () => {
    const hang = script('hang2.sh', `#!/bin/sh\necho $$ > "$1/hang2.pid"\nexec sleep 1000\n`);
    const keys = commandProvider(JSON.stringify([hang, dir]), { timeoutSec: 60, env: deployerEnv() });
    const controller = new AbortController();
    const call = keys.listKeys(scope, controller.signal);
    const pidFile = join(dir, 'hang2.pid');
    await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
    const reason = new Error('interrupted');
    controller.abort(reason);
    await assert.rejects(call, (e) => e === reason);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(await eventually(() => gone(pid)));
  });

  it('a non-zero exit: the exit code and the last stderr line, masked and cut; no secret', async () => {
    const fail = script(
      'fail.sh',
      '#!/bin/sh\necho "connecting to the admin API..." >&2\n' +
        'echo "error: key $PROVISION_STORAGE_SECRET_KEY refused by ' +
        'https://admin:$PROVISION_STORAGE_SECRET_KEY@x/" >&2\n' +
        'exit 1\n',
    );
    const keys = commandProvider(fail, { timeoutSec: 10, env: deployerEnv() });
    const error = await fails(keys.ensureIdentity(scope, signal()));
    assert.equal(
      error.message,
      `PROVISION_STORAGE_KEY_COMMAND (${fail}) ensure-identity for tenant_bad: exited with code 1: ` +
        'error: key *** refused by https://admin:***@x/',
    );
    assert.ok(!error.message.includes(iamServer.admin.secretAccessKey));

    const long = script('long.sh', `#!/bin/sh\nprintf '\\033[31m%0500d\\n\\n' 7 >&2\nexit 9\n`);
    const cut = await fails(commandProvider(long, { timeoutSec: 10, env: deployerEnv() }).listKeys(scope, signal()));
    const line = cut.message.slice(cut.message.indexOf('exited with code 9: ') + 'exited with code 9: '.length);
    assert.equal(line.length, 200);
    assert.ok(line.startsWith('?[31m000') && line.endsWith('...'));

    const silent = script('silent.sh', '#!/bin/sh\nkill -SEGV $$\n');
    const killed = await fails(
      commandProvider(silent, { timeoutSec: 10, env: deployerEnv() }).listKeys(scope, signal()),
    );
    assert.match(killed.message, /list-keys for tenant_bad: was killed by SIGSEGV \(nothing on stderr\)$/);
  });

  it('output that is not the expected JSON: a clear error with its size only, nothing echoed', async () => {
    const printer = script('print.sh', '#!/bin/sh\ncat "$1"\n');
    const printing = (output: string) => {
      writeFileSync(join(dir, 'out.txt'), output);
      return commandProvider(JSON.stringify([printer, join(dir, 'out.txt')]), { timeoutSec: 10, env: deployerEnv() });
    };
    const notJson = 'printed something that is not the expected JSON';
    const cases: Array<{
      output: string;
      op: 'ensure' | 'list' | 'create' | 'delete';
      detail: string;
      hidden: string;
    }> = [
      { output: 'Created key AKIAGARBAGE0000001 wJalrGarbageSecret', op: 'create', detail: '', hidden: 'wJalr' },
      { output: '{}{}', op: 'delete', detail: '', hidden: '{}' },
      { output: '', op: 'ensure', detail: '', hidden: '' },
      {
        output: '{"created": "wJalrYesSecret"}',
        op: 'ensure',
        detail: ': created must be true or false',
        hidden: 'wJalr',
      },
      {
        output: '{"keys": [{"accessKeyId": "AKIAOK0000000001", "active": "wJalrActiveSecret"}]}',
        op: 'list',
        detail: ': keys[0].active must be true or false',
        hidden: 'wJalr',
      },
      {
        output: '{"keys": [{"accessKeyId": "-rf wJalrKeyId", "active": true}]}',
        op: 'list',
        detail: ': keys[0].accessKeyId must be 3 to 128 characters A-Z a-z 0-9 . _ - (not starting with -)',
        hidden: 'wJalr',
      },
      {
        output: '{"accessKeyId": "AKIAOK0000000002"}',
        op: 'create',
        detail: ': secretAccessKey is missing',
        hidden: 'AKIAOK',
      },
      {
        output: '{"accessKeyId": "AKIAOK0000000003", "secretAccessKey": 12345678901234}',
        op: 'create',
        detail: ': secretAccessKey must be a string',
        hidden: '12345678901234',
      },
      {
        output: '{"accessKeyId": "AKIAOK0000000004", "secretAccessKey": "wJalrCtl\\u0007Secret0123456789"}',
        op: 'create',
        detail: ': secretAccessKey must not contain control characters',
        hidden: 'wJalrCtl',
      },
      {
        output: '{"accessKeyId": "AKIAOK0000000005", "secretAccessKey": "wJalr Space Secret0123456789"}',
        op: 'create',
        detail: ': secretAccessKey must be 8 to 256 characters A-Z a-z 0-9 + / = . _ ~ -',
        hidden: 'wJalr',
      },
      {
        output: '{"created": true, "wJalrFieldNameSecret": 1}',
        op: 'ensure',
        detail: ': a field that is not in the contract',
        hidden: 'wJalr',
      },
      { output: '[{"created": true}]', op: 'ensure', detail: ': the document must be an object', hidden: 'true' },
    ];
    for (const c of cases) {
      const keys = printing(c.output);
      const call =
        c.op === 'ensure'
          ? keys.ensureIdentity(scope, signal())
          : c.op === 'list'
            ? keys.listKeys(scope, signal())
            : c.op === 'create'
              ? keys.createKey(scope, signal())
              : keys.deleteIdentity(scope, signal());
      const error = await fails(call);
      const bytes = Buffer.byteLength(c.output);
      assert.ok(error.message.includes(`: ${notJson} (${bytes} bytes)${c.detail}`), `${c.output}: ${error.message}`);
      if (c.hidden) assert.ok(!error.message.includes(c.hidden), `${c.output} echoed: ${error.message}`);
      assert.match(error.fix ?? '', /docs\/provisioning\.md/);
    }
  });

  it('a huge output: the command is killed past 64 KiB', async () => {
    const huge = script('huge.sh', '#!/bin/sh\necho $$ > "$1/huge.pid"\nexec yes wJalrHugeSecretHugeSecret\n');
    const keys = commandProvider(JSON.stringify([huge, dir]), { timeoutSec: 20, env: deployerEnv() });
    const error = await fails(keys.createKey(scope, signal()));
    assert.match(
      error.message,
      new RegExp(`create-key for tenant_bad: printed more than ${MAX_STDOUT_BYTES / 1024} KiB`),
    );
    assert.ok(!error.message.includes('wJalr'));
    const pid = Number(readFileSync(join(dir, 'huge.pid'), 'utf8'));
    assert.ok(await eventually(() => gone(pid)));
  });

  it('a missing path, a file that is not executable, a directory', async () => {
    mkdirSync(join(dir, 'a-directory'));
    const plain = script('plain.sh', '#!/bin/sh\necho "{}"\n', 0o644);
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'no-such-cli'), /: not found$/],
      [plain, /: not executable \(or a directory\)$/],
      [join(dir, 'a-directory'), /: not executable \(or a directory\)$/],
    ];
    for (const [path, expected] of cases) {
      const error = await fails(
        commandProvider(path, { timeoutSec: 5, env: deployerEnv() }).ensureIdentity(scope, signal()),
      );
      assert.ok(error.message.startsWith(`PROVISION_STORAGE_KEY_COMMAND (${path}) ensure-identity for tenant_bad`));
      assert.match(error.message, expected);
      assert.match(error.fix ?? '', /chmod \+x/);
    }
  });

  it('delete-key refuses a key id shaped like an option without running the command', async () => {
    const marker = join(dir, 'ran');
    const cli = script('marker.sh', `#!/bin/sh\ntouch "${marker}"\necho '{}'\n`);
    const keys = commandProvider(cli, { timeoutSec: 5, env: deployerEnv() });
    for (const id of ['--help', 'AK IA', '', 'x'.repeat(129)]) {
      const error = await fails(keys.deleteKey(scope, id, signal()));
      assert.match(error.message, /delete-key for tenant_bad: the access key id to delete is not a valid key id/);
    }
    assert.ok(!existsSync(marker));
    await keys.deleteKey(scope, 'AKIAOK0000000006', signal());
    assert.ok(existsSync(marker));
  });

  it('the command: a path or a JSON array of strings', () => {
    assert.deepEqual(parseCommand(' /usr/local/bin/minio-keys '), { file: '/usr/local/bin/minio-keys', args: [] });
    assert.deepEqual(parseCommand('["/opt/my keys/cli", "--alias", "prod"]'), {
      file: '/opt/my keys/cli',
      args: ['--alias', 'prod'],
    });
    for (const bad of ['', '[', '[]', '[1]', '[""]', '["/x", 2]', '/x\ty']) {
      assert.throws(() => parseCommand(bad), StorageError, JSON.stringify(bad));
    }
  });
});

describe('PROVISION_STORAGE_KEY_COMMAND: secrets', () => {
  it('no key the working CLI created appears in any error message or fix', () => {
    assert.ok(issuedSecrets.length >= 4);
    assert.ok(messages.length > 20);
    for (const secret of issuedSecrets) {
      for (const message of messages) assert.ok(!message.includes(secret), `a secret in: ${message}`);
    }
    for (const message of messages) assert.ok(!message.includes(iamServer.admin.secretAccessKey));
  });
});
