/**
 * The readers of an instance's .env, to check that what provision writes reads back unchanged:
 * - Node's util.parseEnv, the real one (what node --env-file and check --env-file use), in this
 *   process and in the Node of the image (node_modules/.bin/node, the `node` devDependency);
 * - `docker run --env-file` and Compose `env_file`: no Docker engine nor Compose here, so readers
 *   written from each tool's documented rules (sources below; written here, not copied). The docker
 *   reader is checked against the real docker CLI when one is installed (dockerCliEnv: the CLI
 *   parses the file itself and sends the container's environment to a stand-in engine on a unix
 *   socket, which records it and refuses to create anything).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

export type EnvMap = Record<string, string>;

/** Node's own parser, in this process. */
export function nodeEnv(content: string): EnvMap {
  return { ...parseEnv(content) } as EnvMap;
}

/** The image's Node (24), when the `node` devDependency is installed: each content parsed by util.parseEnv there. */
export const IMAGE_NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));

export function imageNodeEnvs(contents: string[]): EnvMap[] | undefined {
  if (!existsSync(IMAGE_NODE)) return undefined;
  const script =
    'let s="";process.stdin.setEncoding("utf8").on("data",d=>s+=d)' +
    '.on("end",()=>process.stdout.write(JSON.stringify(JSON.parse(s).map(c=>require("node:util").parseEnv(c)))))';
  const r = spawnSync(IMAGE_NODE, ['-e', script], {
    input: JSON.stringify(contents),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`image node failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as EnvMap[];
}

export function imageNodeVersion(): string | undefined {
  if (!existsSync(IMAGE_NODE)) return undefined;
  return spawnSync(IMAGE_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** Go's unicode.IsSpace: the White_Space property (U+0085 and U+00A0 included). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GO_LEADING_SPACE = new RegExp(`^[${GO_SPACE}]+`, 'u');
const GO_TRAILING_SPACE = new RegExp(`[${GO_SPACE}]+$`, 'u');

/**
 * `docker run --env-file`, as documented (docs.docker.com/reference/cli/docker/container/run/#env:
 * `VAR=VAL` lines, lines starting with # are comments, the value is taken literally) and as
 * docker/cli's pkg/kvfile describes its format: valid UTF-8 (a BOM removed), lines read with
 * bufio.Scanner (split on \n, one trailing \r dropped, at most 64 KiB), leading whitespace of each
 * line removed, empty lines and lines starting with # ignored, KEY=VALUE split at the first =, a key
 * holding a space or a tab refused, a line without = looked up in the environment (never here), the
 * value kept as it is, trailing whitespace included. `trimQuotes`: recent versions (not 28.2) also
 * remove one pair of identical quotes (' or ") around the value.
 */
export function dockerEnv(content: string | Buffer, opts: { trimQuotes: boolean }): EnvMap {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const out: EnvMap = {};
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let start = 0;
  for (let number = 1; start < bytes.length; number++) {
    let end = bytes.indexOf(0x0a, start);
    const next = end < 0 ? bytes.length : end + 1;
    if (end < 0) end = bytes.length;
    if (next - start > 64 * 1024) throw new Error(`bufio.Scanner: token too long (line ${number})`);
    let line = bytes.subarray(start, end);
    start = next;
    if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
    let text: string;
    try {
      text = decoder.decode(line);
    } catch {
      throw new Error(`invalid utf8 bytes at line ${number}`);
    }
    if (number === 1 && text.startsWith('\ufeff')) text = text.slice(1);
    text = text.replace(GO_LEADING_SPACE, '');
    if (text === '' || text.startsWith('#')) continue;
    const eq = text.indexOf('=');
    const key = eq < 0 ? text : text.slice(0, eq);
    if (key === '') throw new Error(`no variable name on line ${number}`);
    if (/[ \t]/.test(key)) throw new Error(`variable '${key}' contains whitespaces`);
    if (eq < 0) continue; // looked up in the environment of the docker CLI: none here
    let value = text.slice(eq + 1);
    if (opts.trimQuotes && value.length >= 2 && (value[0] === "'" || value[0] === '"') && value.at(-1) === value[0])
      value = value.slice(1, -1);
    out[key] = value;
  }
  return out;
}

/** compose-go's isSpace: spaces that are not a line feed. */
const COMPOSE_SPACE = new Set(['\t', '\v', '\f', '\r', ' ', '\u0085', '\u00a0']);

function trimComposeSpace(s: string): string {
  let i = 0;
  while (i < s.length && COMPOSE_SPACE.has(s[i]!)) i++;
  return s.slice(i);
}

/**
 * Compose `env_file`, as documented (docs.docker.com/compose/how-tos/environment-variables/
 * variable-interpolation/#env-file-syntax) and implemented by compose-go's dotenv package:
 * - blank lines and lines starting with # are skipped; a key may follow `export `, ends at =, : or a
 *   line feed (then it is looked up in the environment), and holds letters, digits, _ . - [ ];
 * - spaces after the = are skipped; a value starting with ' or " runs to the matching unescaped
 *   quote (\ escapes the quote; other backslashes are kept), possibly over several lines, and
 *   whatever follows the closing quote on the line is ignored; single-quoted values are literal;
 *   double-quoted ones get \a \b \f \n \r \t \v \\ \" \$ and \0NNN unescaped, then interpolation;
 * - an unquoted value runs to the end of the line, is cut at " #" (an inline comment: "must be
 *   preceded with a space"), loses its trailing whitespace (Unicode), then is interpolated;
 * - interpolation (docs.docker.com/reference/compose-file/interpolation): $$ is a $, $NAME and
 *   ${NAME} the variable (from the environment, else from the lines above; unset: empty),
 *   ${NAME:-default} ${NAME-default} ${NAME:+alt} ${NAME+alt} ${NAME:?err} ${NAME?err}, nested.
 */
export function composeEnv(content: string, environment: EnvMap = {}): EnvMap {
  const out: EnvMap = {};
  const lookup = (name: string): string | undefined => environment[name] ?? out[name];
  let src = content.startsWith('\ufeff') ? content.slice(1) : content;
  for (;;) {
    src = src.replace(GO_LEADING_SPACE, '');
    if (src === '') break;
    if (src.startsWith('#')) {
      const nl = src.indexOf('\n');
      if (nl < 0) break;
      src = src.slice(nl);
      continue;
    }
    if (/^export[\t\n\f\r ]/.test(src)) src = trimComposeSpace(src.slice('export'.length));
    let end = -1;
    for (let i = 0, ch = ''; i < src.length; i += ch.length) {
      ch = String.fromCodePoint(src.codePointAt(i)!);
      if (COMPOSE_SPACE.has(ch)) continue;
      if (ch === '=' || ch === ':' || ch === '\n') {
        end = i;
        break;
      }
      if (!/[\p{L}\p{N}_.\-[\]]/u.test(ch))
        throw new Error(`unexpected character ${JSON.stringify(ch)} in variable name`);
    }
    const key = (end < 0 ? '' : src.slice(0, end)).replace(GO_TRAILING_SPACE, '');
    if (key.includes(' ')) throw new Error('key cannot contain a space');
    const rest = trimComposeSpace(end < 0 ? src : src.slice(end + 1));
    if (end >= 0 && src[end] === '\n') {
      const value = lookup(key);
      if (value !== undefined) out[key] = value;
      src = rest;
      continue;
    }
    const quote = rest[0];
    if (quote === "'" || quote === '"') {
      let value = '';
      let escaped = false;
      let close = -1;
      for (let i = 1; i < rest.length; i++) {
        const ch = rest[i]!;
        if (ch !== quote) {
          if (!escaped && ch === '\\') {
            escaped = true;
            continue;
          }
          if (escaped) value += '\\';
          escaped = false;
          value += ch;
          continue;
        }
        if (escaped) {
          escaped = false;
          value += ch;
          continue;
        }
        close = i;
        break;
      }
      if (close < 0) throw new Error('unterminated quoted value');
      out[key] = quote === '"' ? interpolate(unescapeDoubleQuoted(value), lookup) : value;
      src = rest.slice(close + 1);
      continue;
    }
    const nl = rest.indexOf('\n');
    let value = nl < 0 ? rest : rest.slice(0, nl);
    const comment = value.indexOf(' #');
    if (comment >= 0) value = value.slice(0, comment);
    out[key] = interpolate(value.replace(GO_TRAILING_SPACE, ''), lookup);
    src = nl < 0 ? '' : rest.slice(nl + 1);
  }
  return out;
}

function unescapeDoubleQuoted(value: string): string {
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    $: '$$',
  };
  return value.replace(/\\(?:[abcfnrtv$"\\]|0\d{0,3})/g, (match) => {
    const c = match.slice(1);
    if (c in simple) return simple[c]!;
    // \0NNN: three octal digits after the 0, a byte value; anything else stays as written.
    if (/^0[0-7]{3}$/.test(c) && Number.parseInt(c.slice(1), 8) <= 0xff)
      return String.fromCharCode(Number.parseInt(c.slice(1), 8));
    return match;
  });
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

function interpolate(value: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < value.length; ) {
    if (value[i] !== '$') {
      out += value[i++];
      continue;
    }
    const next = value[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      let depth = 0;
      let close = -1;
      for (let j = i + 1; j < value.length; j++) {
        if (value[j] === '{') depth++;
        else if (value[j] === '}' && --depth === 0) {
          close = j;
          break;
        }
      }
      if (close < 0) throw new Error('invalid interpolation format: no closing }');
      out += braced(value.slice(i + 2, close), lookup);
      i = close + 1;
    } else {
      const name = NAME.exec(value.slice(i + 1))?.[0];
      if (name) {
        out += lookup(name) ?? '';
        i += 1 + name.length;
      } else {
        out += '$';
        i++;
      }
    }
  }
  return out;
}

function braced(expression: string, lookup: (name: string) => string | undefined): string {
  const m = /^([_a-zA-Z][_a-zA-Z0-9]*)(?:(:?[-+?])([\s\S]*))?$/.exec(expression);
  if (!m) throw new Error(`invalid interpolation format for \${${expression}}`);
  const [, name, op, arg = ''] = m;
  const value = lookup(name!);
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case undefined:
      return value ?? '';
    case ':-':
      return nonEmpty ? value : interpolate(arg, lookup);
    case '-':
      return set ? value : interpolate(arg, lookup);
    case ':+':
      return nonEmpty ? interpolate(arg, lookup) : '';
    case '+':
      return set ? interpolate(arg, lookup) : '';
    case ':?':
      if (!nonEmpty) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return value;
    default: // '?'
      if (!set) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return value!;
  }
}

/** Is a docker CLI installed (no engine needed: see dockerCliEnv)? */
export function hasDockerCli(): boolean {
  return spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).status === 0;
}

/**
 * The environment the real docker CLI gives a container for `docker run --env-file FILE`: the CLI
 * parses the file, then asks the engine to create the container; a stand-in engine on a unix socket
 * (no network) answers the version probe, records the Env of the create request and refuses it, so
 * nothing runs. Rejects with the CLI's message when it refuses the file itself.
 */
export async function dockerCliEnv(content: string | Buffer): Promise<EnvMap> {
  const dir = mkdtempSync(join(tmpdir(), 'sf-docker-cli-'));
  const socket = join(dir, 'engine.sock');
  const file = join(dir, 'instance.env');
  writeFileSync(file, content, { mode: 0o600 });
  let env: string[] | undefined;
  const engine = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (req.url?.endsWith('/_ping')) {
        res.writeHead(200, { 'API-Version': '1.41', 'Content-Type': 'text/plain' }).end('OK');
        return;
      }
      if (req.method === 'POST' && /\/containers\/create/.test(req.url ?? ''))
        env = (JSON.parse(body) as { Env?: string[] }).Env ?? [];
      res
        .writeHead(400, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ message: 'stand-in engine: recorded, not created' }));
    });
  });
  await new Promise<void>((resolve) => engine.listen(socket, resolve));
  try {
    const cli = spawn('docker', ['run', '--rm', '--env-file', file, 'sf-env-probe'], {
      env: { PATH: process.env.PATH, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, 'config') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    cli.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await new Promise((resolve) => cli.on('close', resolve));
    if (!env) throw new Error(`docker CLI refused the file: ${stderr.trim()}`);
    const out: EnvMap = {};
    for (const entry of env) out[entry.slice(0, entry.indexOf('='))] = entry.slice(entry.indexOf('=') + 1);
    return out;
  } finally {
    await new Promise((resolve) => engine.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}
