/**
 * PROVISION_STORAGE_KEY_COMMAND (issue 14): per-tenant storage keys issued by the operator's own
 * executable, for any storage that has a CLI (MinIO's mc, Scaleway's scw, a script around an API).
 *
 * The command. A path to an executable (absolute is best; a bare name is looked up in the PATH it
 * receives), or a JSON array of strings: the path, then fixed arguments put before the contract's
 * (`["/usr/local/bin/minio-keys", "--alias", "prod"]`). No shell ever runs it: no quoting, no
 * expansion, no pipes (write a script for that).
 *
 * Its arguments, always five (and a sixth for delete-key), positional; `<prefix>` is the empty
 * string in bucket mode:
 *
 *   <operation> <tenant> <mode> <bucket> <prefix> [<accessKeyId>]
 *
 * | operation         | does (idempotent)                                  | prints on stdout                       |
 * | ----------------- | -------------------------------------------------- | -------------------------------------- |
 * | `ensure-identity` | the tenant's identity exists, with rights on       | `{"created": true}` (it did not        |
 * |                   | exactly `<bucket>`/`<prefix>` (policy rewritten)   | exist before) or `{"created": false}`  |
 * | `list-keys`       | the identity's keys (none if it does not exist)    | `{"keys": [{"accessKeyId": "...",      |
 * |                   |                                                    | "active": true, "createdAt": "..."}]}` |
 * | `create-key`      | a new key of the identity                          | `{"accessKeyId": "...",                |
 * |                   |                                                    | "secretAccessKey": "...",              |
 * |                   |                                                    | "createdAt": "..."}`                   |
 * | `delete-key`      | deletes key `<accessKeyId>` (gone already: ok)     | `{}`                                   |
 * | `delete-identity` | deletes the identity, its keys and policies (gone  | `{}`                                   |
 * |                   | already: ok)                                       |                                        |
 *
 * `createdAt` (ISO 8601) is optional.
 * Exit status 0 and exactly that one JSON document (no other field) means success; anything else
 * is a StorageError (exit 6). On failure, say why on stderr: its last non-empty line (cut to 200
 * characters, secrets provision knows masked) is quoted in the error. Access key ids are 3 to 128
 * characters `A-Z a-z 0-9 . _ -` (not starting with `-`); secrets 8 to 256 characters
 * `A-Z a-z 0-9 + / = . _ ~ -`.
 *
 * Its environment is not provision's: only PATH, HOME, TMPDIR, LANG, LC_ALL and TZ (so the CLI finds
 * itself and its own configuration, e.g. ~/.mc, ~/.config/scw), and the deployer's storage account:
 * PROVISION_STORAGE_ENDPOINT, _REGION, _BUCKET, _FORCE_PATH_STYLE, _ACCESS_KEY, _SECRET_KEY (the
 * admin keys: a provider issuing keys needs admin rights somewhere). Never the database URL, the
 * deployer's password or anything else. stdin is closed; the working directory is provision's.
 *
 * Its output is untrusted: stdout is bounded (64 KiB, then the command is killed), parsed and
 * validated, never quoted in a message (only its size); a returned secret is registered for
 * redaction before anything else is done with it. Its run time is bounded (`timeoutSec`): past it,
 * its whole process group (it runs in its own) is killed with SIGKILL.
 */
import { spawn } from 'node:child_process';
import * as v from 'valibot';
import { StorageError } from '../../errors.js';
import { redact, registerSecret } from '../../redact.js';
import type { IssuedKey, KeyInfo, KeyProvider, KeyScope } from './provider.js';

export const OPERATIONS = ['ensure-identity', 'list-keys', 'create-key', 'delete-key', 'delete-identity'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** stdout beyond this: the command is killed and the call fails. */
export const MAX_STDOUT_BYTES = 64 * 1024;
/** Only the end of stderr is kept: its last line is all a message quotes. */
const STDERR_TAIL_BYTES = 8 * 1024;
const STDERR_LINE_MAX = 200;

/** The variables of provision's environment the command receives (when set), and no other. */
export const COMMAND_ENV = [
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'LC_ALL',
  'TZ',
  'PROVISION_STORAGE_ENDPOINT',
  'PROVISION_STORAGE_REGION',
  'PROVISION_STORAGE_BUCKET',
  'PROVISION_STORAGE_FORCE_PATH_STYLE',
  'PROVISION_STORAGE_ACCESS_KEY',
  'PROVISION_STORAGE_SECRET_KEY',
] as const;

/** The command's environment: the COMMAND_ENV variables of `source` that are set and not empty. */
export function commandEnv(source: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of COMMAND_ENV) {
    const value = source[name];
    if (value) env[name] = value;
  }
  return env;
}

// ---- the output's schemas ---------------------------------------------------------------------

const CONTROL = /\p{Cc}/u;
const KEY_ID = /^[A-Za-z0-9._][A-Za-z0-9._-]{2,127}$/;
const SECRET = /^[A-Za-z0-9+/=._~-]{8,256}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

const accessKeyId = v.pipe(
  v.string('must be a string'),
  v.regex(KEY_ID, 'must be 3 to 128 characters A-Z a-z 0-9 . _ - (not starting with -)'),
);
const secretAccessKey = v.pipe(
  v.string('must be a string'),
  v.check((x) => !CONTROL.test(x), 'must not contain control characters'),
  v.regex(SECRET, 'must be 8 to 256 characters A-Z a-z 0-9 + / = . _ ~ -'),
);
const createdAt = v.optional(
  v.pipe(v.string('must be a string'), v.regex(TIMESTAMP, 'must be an ISO 8601 date and time')),
);

/** An object schema's message: also the one of its missing fields (expected: the field's name, quoted). */
const objectMessage = (issue: v.BaseIssue<unknown>) =>
  issue.expected?.startsWith('"') ? 'is missing' : 'must be an object';

const OUTPUTS = {
  'ensure-identity': v.strictObject({ created: v.boolean('must be true or false') }, objectMessage),
  'list-keys': v.strictObject(
    {
      keys: v.pipe(
        v.array(
          v.strictObject({ accessKeyId, active: v.boolean('must be true or false'), createdAt }, objectMessage),
          'must be an array',
        ),
        v.maxLength(100, 'must hold at most 100 keys'),
      ),
    },
    objectMessage,
  ),
  'create-key': v.strictObject({ accessKeyId, secretAccessKey, createdAt }, objectMessage),
  'delete-key': v.strictObject({}, objectMessage),
  'delete-identity': v.strictObject({}, objectMessage),
} as const;

/** The field names of the contract: any other name in the output is untrusted text, never quoted. */
const KNOWN_FIELDS = new Set(['created', 'keys', 'accessKeyId', 'active', 'createdAt', 'secretAccessKey']);

/** Where an issue is (`keys[0].active`), naming only the contract's fields; the value is never shown. */
function issueText(issue: v.BaseIssue<unknown>): string {
  let where = '';
  let unknownField = false;
  for (const item of issue.path ?? []) {
    if (typeof item.key === 'number') where += `[${item.key}]`;
    else if (typeof item.key === 'string' && KNOWN_FIELDS.has(item.key)) where += where ? `.${item.key}` : item.key;
    else unknownField = true;
  }
  // strictObject reports an unexpected field with the field in the path: its name is the output's.
  if (unknownField || issue.expected === 'never')
    return `${where ? `${where}: ` : ''}a field that is not in the contract`;
  return `${where || 'the document'} ${issue.message}`;
}

// ---- running the command ----------------------------------------------------------------------

/** The command as configured: a path, or a JSON array (the path, then fixed arguments). */
export function parseCommand(command: string): { file: string; args: string[] } {
  const trimmed = command.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new StorageError(
        'PROVISION_STORAGE_KEY_COMMAND starts with [ but is not a JSON array',
        'give the path of the executable, or a JSON array of strings: ["/path/to/cli", "fixed", "arguments"]',
      );
    }
    if (
      !Array.isArray(parsed) ||
      parsed.length === 0 ||
      !parsed.every((x) => typeof x === 'string' && !CONTROL.test(x)) ||
      !parsed[0]
    )
      throw new StorageError(
        'PROVISION_STORAGE_KEY_COMMAND must be a JSON array of strings, the first one a path',
        'e.g. ["/usr/local/bin/minio-keys", "--alias", "prod"]',
      );
    const [file, ...args] = parsed as string[];
    return { file: file as string, args };
  }
  if (!trimmed || CONTROL.test(trimmed))
    throw new StorageError(
      'PROVISION_STORAGE_KEY_COMMAND must be the path of an executable',
      'e.g. /usr/local/bin/minio-keys',
    );
  return { file: trimmed, args: [] };
}

interface RunResult {
  stdout: Buffer;
}

/** Kills the process group of `pid` (the command runs as its leader); gone already is fine. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone.
  }
}

/** The last non-empty line of stderr, control characters replaced, cut, secrets masked. */
function lastLine(stderr: Buffer): string {
  const lines = stderr
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const line = (lines.at(-1) ?? '').replace(/\p{Cc}/gu, '?');
  // Masked before it is cut: a secret cut in two would no longer be recognised.
  const masked = redact(line);
  return masked.length > STDERR_LINE_MAX ? `${masked.slice(0, STDERR_LINE_MAX - 3)}...` : masked;
}

export interface CommandProviderOptions {
  /** Seconds one run of the command may take (PROVISION_STORAGE_KEY_COMMAND_TIMEOUT, say). */
  timeoutSec: number;
  /** Where the COMMAND_ENV variables are read from (default: process.env); nothing else is passed. */
  env?: Readonly<Record<string, string | undefined>>;
}

export function commandProvider(command: string, opts: CommandProviderOptions): KeyProvider {
  const { file, args: fixedArgs } = parseCommand(command);
  const env = commandEnv(opts.env ?? process.env);
  const timeoutMs = Math.max(1, Math.round(opts.timeoutSec * 1000));
  const name = `PROVISION_STORAGE_KEY_COMMAND (${file})`;

  const failure = (operation: Operation, scope: KeyScope, what: string, fix?: string, cause?: unknown) =>
    new StorageError(`${name} ${operation} for ${scope.tenant}: ${what}`, fix, cause ? { cause } : undefined);

  const run = (operation: Operation, scope: KeyScope, extra: string[], signal: AbortSignal) =>
    new Promise<RunResult>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const args = [...fixedArgs, operation, scope.tenant, scope.mode, scope.bucket, scope.prefix, ...extra];
      const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      let stderr = Buffer.alloc(0);
      let settled = false;
      let outcome: 'timeout' | 'overflow' | 'aborted' | undefined;

      const finish = (error: unknown, result?: RunResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(result as RunResult);
      };
      const stop = (why: 'timeout' | 'overflow' | 'aborted') => {
        outcome ??= why;
        killGroup(child.pid);
      };
      const onAbort = () => stop('aborted');
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });

      child.stdout.on('data', (chunk: Buffer) => {
        stdoutBytes += chunk.length;
        if (stdoutBytes > MAX_STDOUT_BYTES) {
          stop('overflow');
          return;
        }
        stdout.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = Buffer.concat([stderr, chunk]);
        if (stderr.length > STDERR_TAIL_BYTES) stderr = stderr.subarray(stderr.length - STDERR_TAIL_BYTES);
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        // The executable could not be started (spawn fails before any output).
        const reason =
          error.code === 'ENOENT'
            ? 'not found'
            : error.code === 'EACCES'
              ? 'not executable (or a directory)'
              : `could not be started (${error.code ?? 'error'})`;
        finish(
          failure(
            operation,
            scope,
            reason,
            'set PROVISION_STORAGE_KEY_COMMAND to the path of an executable file (chmod +x), ' +
              'or a JSON array whose first element is one',
            error,
          ),
        );
      });
      child.on('close', (code, killedBy) => {
        const out = Buffer.concat(stdout);
        if (operation === 'create-key') registerOutputSecret(out);
        if (outcome === 'aborted') return finish(signal.reason);
        if (outcome === 'timeout')
          return finish(
            failure(
              operation,
              scope,
              `did not finish within ${opts.timeoutSec} s; it was killed (its whole process group)`,
              'run the command by hand with the same arguments to see where it hangs, or raise the timeout',
            ),
          );
        if (outcome === 'overflow')
          return finish(
            failure(
              operation,
              scope,
              `printed more than ${MAX_STDOUT_BYTES / 1024} KiB on stdout; it was killed`,
              'the command must print one small JSON document on stdout (logs go to stderr)',
            ),
          );
        if (code !== 0) {
          const line = lastLine(stderr);
          const status = code === null ? `was killed by ${killedBy}` : `exited with code ${code}`;
          return finish(
            failure(
              operation,
              scope,
              line ? `${status}: ${line}` : `${status} (nothing on stderr)`,
              'see its stderr; run it by hand with the same arguments',
            ),
          );
        }
        finish(undefined, { stdout: out });
      });
    });

  /** create-key: a secret in the output is registered before anything else is done with it. */
  const registerOutputSecret = (out: Buffer) => {
    try {
      const parsed: unknown = JSON.parse(out.toString('utf8'));
      if (parsed && typeof parsed === 'object' && 'secretAccessKey' in parsed) {
        const secret = (parsed as { secretAccessKey: unknown }).secretAccessKey;
        if (typeof secret === 'string') registerSecret(secret);
      }
    } catch {
      // Not JSON: reported by parse(), without quoting it.
    }
  };

  const parse = <O extends Operation>(
    operation: O,
    scope: KeyScope,
    out: Buffer,
  ): v.InferOutput<(typeof OUTPUTS)[O]> => {
    const notExpected = (detail = '') =>
      failure(
        operation,
        scope,
        `printed something that is not the expected JSON (${out.length} bytes)${detail}`,
        `the command must print one JSON document on stdout: see docs/provisioning.md, ` +
          `"Per-tenant storage keys through your own command"`,
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(out.toString('utf8'));
    } catch {
      throw notExpected();
    }
    // valibot takes an array for an object (its missing fields reported); the top level says it plainly.
    if (Array.isArray(parsed)) throw notExpected(': the document must be an object');
    const result = v.safeParse(OUTPUTS[operation], parsed, {
      // The fallback for any issue without a message of ours: valibot's own quote the received value.
      message: () => 'has the wrong type',
      abortEarly: true,
    });
    if (!result.success) throw notExpected(`: ${issueText(result.issues[0] as v.BaseIssue<unknown>)}`);
    return result.output as v.InferOutput<(typeof OUTPUTS)[O]>;
  };

  return {
    name,
    async ensureIdentity(scope, signal) {
      const { stdout } = await run('ensure-identity', scope, [], signal);
      return parse('ensure-identity', scope, stdout);
    },
    async listKeys(scope, signal): Promise<KeyInfo[]> {
      const { stdout } = await run('list-keys', scope, [], signal);
      return parse('list-keys', scope, stdout).keys.map((k) => ({
        accessKeyId: k.accessKeyId,
        active: k.active,
        ...(k.createdAt ? { createdAt: k.createdAt } : {}),
      }));
    },
    async createKey(scope, signal): Promise<IssuedKey> {
      const { stdout } = await run('create-key', scope, [], signal);
      const key = parse('create-key', scope, stdout);
      return {
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        ...(key.createdAt ? { createdAt: key.createdAt } : {}),
      };
    },
    async deleteKey(scope, keyId, signal) {
      // An argument of ours: a key id shaped like an option (or worse) never reaches the command.
      if (!KEY_ID.test(keyId))
        throw failure('delete-key', scope, 'the access key id to delete is not a valid key id (not run)');
      const { stdout } = await run('delete-key', scope, [keyId], signal);
      parse('delete-key', scope, stdout);
    },
    async deleteIdentity(scope, signal) {
      const { stdout } = await run('delete-identity', scope, [], signal);
      parse('delete-identity', scope, stdout);
    },
  };
}
