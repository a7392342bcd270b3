/**
 * The instance's .env, written by the deployment machine. It holds the tenant's database and admin
 * passwords, so:
 * - the output directory must be the runner's own (owner, not group/world-writable, a real directory,
 *   not a symbolic link), and never a place where git would commit it (the seed forbids clear-text
 *   passwords in a repository): inside a git work tree the path must be ignored;
 * - a file is never written through a symbolic link nor into anything but a regular file: it is
 *   written to a temporary file created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) in the
 *   same directory, fsynced, then renamed over the name (--force / --rotate-password) or hard-linked
 *   to it (otherwise: link() fails with EEXIST, so an existing file is never clobbered);
 * - every value reads back unchanged with Node's util.parseEnv (node --env-file, check --env-file),
 *   Compose `env_file` and `docker run --env-file`, or is refused (named, never shown) before
 *   anything is created.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { makeDirectory } from '../make-directory.js';
import { ConfigError } from '../errors.js';

/**
 * `docker run --env-file` reads lines with Go's bufio.Scanner, at most 64 KiB each (docker/cli
 * pkg/kvfile): well under it, whatever the key.
 */
export const MAX_ENV_VALUE_BYTES = 32 * 1024;

/**
 * Why a value cannot be written as `KEY=value` and read back unchanged by every reader of the
 * instance's .env, or undefined. The three readers disagree on everything but plain text:
 * - Node's util.parseEnv / process.loadEnvFile (node --env-file, check --env-file): a # anywhere in an
 *   unquoted value starts a comment; a value starting with ', " or ` is quoted (the quotes dropped,
 *   and a missing closing quote swallows the following lines); spaces around the value are trimmed;
 * - Compose env_file (docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/
 *   #env-file-syntax, compose-go dotenv): " #" starts a comment, $NAME and ${NAME} are interpolated,
 *   a leading ' or " quotes the value (backslash escapes inside), trailing (Unicode) spaces are trimmed;
 * - `docker run --env-file` (docs.docker.com/reference/cli/docker/container/run/#env, docker/cli
 *   pkg/kvfile): the rest of the line, literally (leading spaces of the line dropped; recent versions
 *   drop a pair of matching quotes around the value), one line of valid UTF-8.
 * So a value is refused when it holds a line break, a control character, #, $ or a backslash, starts
 * with a quote, starts or ends with a space, or is too long. Quotes elsewhere (O'Brien, Acme "Cloud")
 * read back as they are: every reader looks at the first character only (docker: at both ends).
 * The message never holds the value: it may be a secret.
 */
export function envValueProblem(value: string): string | undefined {
  // With the u flag, a surrogate pair is one code point: only a lone half matches.
  if (/[\uD800-\uDFFF]/u.test(value))
    return 'holds an invalid character (a lone UTF-16 surrogate), which cannot be written as UTF-8';
  if (/[\n\r\u2028\u2029]/.test(value)) return 'holds a line break: a .env value is one line';
  if (/\p{Cc}/u.test(value)) return 'holds a control character (tab, NUL, escape, delete...)';
  if (value.includes('#')) return 'holds a #: node --env-file (and check --env-file) would read the rest as a comment';
  if (value.includes('$')) return 'holds a $: Compose env_file would read $NAME or ${NAME} as another variable';
  if (value.includes('\\')) return 'holds a backslash: Compose and other .env readers take it as an escape character';
  if (/^['"`]/.test(value))
    return 'starts with a quote (\' " `): node --env-file and Compose would take it for a quoted value';
  if (/^\s|\s$/u.test(value))
    return 'starts or ends with a space: node --env-file and Compose would trim it, docker --env-file keeps it';
  if (Buffer.byteLength(value, 'utf8') > MAX_ENV_VALUE_BYTES)
    return `is longer than ${MAX_ENV_VALUE_BYTES} bytes: docker --env-file reads lines of at most 64 KiB`;
  return undefined;
}

/** What to do about a refused value. */
export const ENV_VALUE_FIX =
  'use a value without line breaks, control characters, #, $ or \\, that does not start with a quote nor start or ' +
  'end with a space (a generated password: letters, digits and - _ . + / = @ % ! ~ ,); for a secret you cannot ' +
  'change, unset it here and give it to the instance another way (e.g. SMTP_PASSWORD_FILE)';

/**
 * Refuses, all at once, the values that would not reach the instance unchanged through its .env.
 * `source` says where they come from (e.g. "the deployer's environment"); each problem names the
 * variable, never the value.
 */
export function assertEnvValues(values: Record<string, string | undefined>, source: string): void {
  const problems = Object.entries(values).flatMap(([key, value]) => {
    const problem = value === undefined ? undefined : envValueProblem(value);
    return problem ? [`${key}: ${problem}`] : [];
  });
  if (problems.length > 0) {
    throw new ConfigError(
      `${source}: ${problems.length} value(s) cannot be written to a .env file and read back unchanged`,
      problems,
      ENV_VALUE_FIX,
    );
  }
}

/**
 * KEY=value lines, unquoted: `docker run --env-file` takes values literally, quotes included, so no
 * quoting can work for every reader; envValueProblem keeps to what needs none (checked at the start
 * of provision; this is the last guard).
 */
export function renderEnv(values: Record<string, string | undefined>, header: string[]): string {
  for (const h of header)
    if (/[\n\r\u2028\u2029]/.test(h)) throw new Error('a .env header line cannot hold a line break');
  const lines = header.map((h) => `# ${h}`);
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`${JSON.stringify(key)} is not a variable name`);
    const problem = envValueProblem(value);
    if (problem) throw new ConfigError(`${key}: ${problem}`, [], ENV_VALUE_FIX);
    lines.push(`${key}=${value}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Refuses an output directory where another user could read, plant or replace the .env files, or
 * whose .env files git would track; creates it (mode 0700) when missing. `files`: the names about to
 * be written in it, each refused when it exists and is not a regular file (a symbolic link, a
 * directory...), so that nothing is created in PostgreSQL for a tenant whose .env cannot be written.
 */
export function assertSafeOutDir(dir: string, files: readonly string[] = []): void {
  try {
    makeDirectory(dir);
  } catch (error) {
    // Something that is not a directory is there (or in the way): lstat below says what.
    if (!['EEXIST', 'ENOTDIR'].includes(errnoCode(error))) throw fileSystemError(error, dir, 'create the --out-dir');
  }
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (error) {
    throw fileSystemError(error, dir, 'read the --out-dir');
  }
  if (st.isSymbolicLink()) {
    throw new ConfigError(
      `--out-dir ${dir} is a symbolic link: the .env files (passwords) ` +
        `would go wherever it points, which whoever can change the link decides`,
      [],
      'give the real directory, after checking it is yours: --out-dir "$(readlink -f ' + dir + ')"',
    );
  }
  if (!st.isDirectory())
    throw new ConfigError(
      `--out-dir ${dir} exists and is not a directory`,
      [],
      'give the path of a directory (it is created, mode 0700, when missing)',
    );
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new ConfigError(
      `--out-dir ${dir} belongs to uid ${st.uid}, not to the user running provision (uid ${uid}): its owner could ` +
        `read or replace the .env files (passwords)`,
      [],
      `use a directory of your own (e.g. mkdir -m 700 DIR), or give this one to uid ${uid}: chown ${uid} ${dir}`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    const who = [st.mode & 0o020 && 'its group', st.mode & 0o002 && 'every user'].filter(Boolean).join(' and ');
    throw new ConfigError(
      `--out-dir ${dir} is writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): another ` +
        `user could plant a file or a symbolic link where a .env (passwords) is written`,
      [],
      `chmod 700 ${dir}`,
    );
  }
  // The directories above it too: whoever may write one of them (without the sticky bit of /tmp)
  // can rename this directory away and put one of theirs in its place between the check and a write.
  for (let parent = dirname(realpathSync(dir)); ; parent = dirname(parent)) {
    const p = statSync(parent);
    if ((p.mode & 0o022) !== 0 && (p.mode & 0o1000) === 0) {
      throw new ConfigError(
        `--out-dir ${dir} is inside ${parent}, which ${p.mode & 0o002 ? 'every user' : 'its group'} may write (mode ` +
          `${(p.mode & 0o7777).toString(8).padStart(4, '0')}, no sticky bit): another user could replace the ` +
          `directory the .env files (passwords) go to`,
        [],
        `use a directory whose parents only their owners may write, or: chmod go-w ${parent}`,
      );
    }
    if (parent === dirname(parent)) break;
  }
  for (const file of files) {
    const path = join(dir, file);
    const existing = lstatOrUndefined(path);
    if (existing && !existing.isFile()) throw notRegularFile(path, existing);
  }
  const probe = join(resolve(dir), 'tenant.env');
  const inside = spawnSync('git', ['-C', resolve(dir), 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
  if (inside.status !== 0 || inside.stdout.trim() !== 'true') return; // not in a repository (or no git)
  const ignored = spawnSync('git', ['-C', resolve(dir), 'check-ignore', '-q', probe]);
  if (ignored.status !== 0) {
    throw new ConfigError(
      `--out-dir ${dir} is inside a git work tree and its .env files are not ignored: they hold clear-text ` +
        `passwords, which must never be committed`,
      [],
      `write them outside the repository, or add the directory to ` +
        `.gitignore (e.g. echo '${dir.replace(/\/$/, '')}/' >> .gitignore)`,
    );
  }
}

/**
 * Writes the file, mode 0600, atomically: readers see the old content or the new, never a part.
 * Returns false when it exists and may not be overwritten. Never writes through a symbolic link nor
 * into anything but a regular file: such a name is refused (ConfigError), with or without overwrite.
 *
 * Races: the content goes to a fresh temporary file (O_CREAT|O_EXCL|O_NOFOLLOW: never an existing
 * file or link) in the same directory. With overwrite, rename() replaces the name itself: a link
 * planted there after the check is replaced, not followed. Without, link() gives the file its name
 * only if nothing has it (EEXIST otherwise, whatever appeared after the check, dangling links
 * included), so an existing file is never clobbered. assertSafeOutDir keeps other users out of the
 * directory, so these are the runner's own races only.
 */
export function writeEnvFile(path: string, content: string, overwrite: boolean): boolean {
  try {
    return placeEnvFile(path, content, overwrite);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Called once PostgreSQL holds the new password: say how not to lose it.
    const again =
      'then run provision again, with --rotate-password if the role was ' +
      'just created or rotated (its new password is saved nowhere else)';
    throw new ConfigError(error.message, error.problems, error.fix ? `${error.fix}; ${again}` : again);
  }
}

function placeEnvFile(path: string, content: string, overwrite: boolean): boolean {
  const existing = lstatOrUndefined(path);
  if (existing && !existing.isFile()) throw notRegularFile(path, existing);
  if (existing && !overwrite) return false;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let failed: [action: string, subject: string] = ['create a temporary file in --out-dir', dir];
  let created = false;
  try {
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    created = true;
    failed = ['write', path];
    try {
      fchmodSync(fd, 0o600); // exactly 0600, whatever the umask
      const bytes = Buffer.from(content, 'utf8');
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (overwrite) {
      failed = ['replace', path];
      renameSync(temp, path);
      created = false;
    } else {
      failed = ['create', path];
      try {
        linkSync(temp, path);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
        const now = lstatOrUndefined(path);
        if (now && !now.isFile()) throw notRegularFile(path, now);
        return false; // appeared since the check: kept
      }
    }
    syncDirectory(dir);
    return true;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw fileSystemError(error, failed[1], failed[0], failed[0] === 'create');
  } finally {
    if (created) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone: nothing to clean
      }
    }
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw fileSystemError(error, path, 'read');
  }
}

function notRegularFile(path: string, st: Stats): ConfigError {
  const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file';
  return new ConfigError(
    `${path} is ${what}: refusing to write the tenant's passwords through it or over it (with or without --force)`,
    [],
    `check who created it and why, remove it (rm${st.isDirectory() ? ' -r' : ''} ${path}), then run again`,
  );
}

/**
 * After a rename or link, the directory entry itself is made durable;
 * some file systems cannot: the rename is atomic anyway.
 */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? '';
}

/** A file-system error as what failed, on which path, and what to do: never a stack trace. */
function fileSystemError(error: unknown, path: string, action: string, linking = false): Error {
  const code = errnoCode(error);
  if (!code) return error as Error;
  const known: Record<string, [why: string, fix: string]> = {
    EACCES: [
      'permission denied',
      `run provision as the owner of ${dirname(path)}, or give it write permission (chmod u+w)`,
    ],
    EPERM: linking
      ? [
          'the file system refuses hard links (needed to never replace an existing .env)',
          'choose an --out-dir on a local file system (ext4, xfs, btrfs, tmpfs, apfs...)',
        ]
      : ['operation not permitted', `check the permissions and attributes of ${dirname(path)} (lsattr, mount options)`],
    ENOSPC: [
      'no space left on the device',
      `free space on the file system of ${dirname(path)}, or choose another --out-dir`,
    ],
    EDQUOT: ['disk quota exceeded', `free space within your quota, or choose another --out-dir`],
    EROFS: ['the file system is read-only', 'choose an --out-dir on a writable file system'],
    ENOTDIR: ['a component of the path is not a directory', 'give the path of a directory for --out-dir'],
    EISDIR: ['it is a directory', `remove or rename that directory (${path})`],
    ENOENT: [
      'a directory of the path does not exist (removed during the run?)',
      'check the --out-dir path and run again',
    ],
    ELOOP: ['too many symbolic links, or a symbolic link where none is allowed', 'give a path without symbolic links'],
    EMLINK: ['too many links', 'choose another --out-dir'],
    ENOTSUP: [
      'the file system does not support this operation (hard links)',
      'choose an --out-dir on a local file system (ext4, xfs, btrfs, tmpfs, apfs...)',
    ],
    EOPNOTSUPP: [
      'the file system does not support this operation (hard links)',
      'choose an --out-dir on a local file system (ext4, xfs, btrfs, tmpfs, apfs...)',
    ],
    EIO: ['input/output error', `check the device holding ${dirname(path)}`],
  };
  const [why, fix] = known[code] ?? [code, `check ${dirname(path)} and run again`];
  return new ConfigError(`cannot ${action} ${path}: ${why} (${code})`, [], fix);
}
