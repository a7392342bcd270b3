// Fails when a source line is longer than 120 characters. Biome's formatter wraps code at 120 columns (biome.json,
// lineWidth) but never splits a string, a template, a regular expression or a comment: those are split by hand
// (a concatenation keeps the same text), and this keeps them split. Plain Node, no dependency.
// Usage: node build/line-length.mjs [--hashes] (from anywhere; npm run lint runs it). --hashes prints the hash
// of each long line, for an entry of ALLOWED.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX = 120;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIRS = ['src', 'test', 'build'];
const EXTENSIONS = ['.ts', '.mjs', '.js'];
const SKIP = new Set(['node_modules', 'dist']);

/**
 * Long lines let through, as `path hash`: the first 12 hex digits of the SHA-256 of the line's text, so an entry
 * follows its line when lines above it move, and lapses (an error here) when the line changes or goes.
 * Keep it tiny, and say why for each: a string, a template or a comment can always be split, and a regular
 * expression can be rebuilt from pieces (new RegExp('...' + '...')).
 */
const ALLOWED = new Set([
  // Lines that cannot be split: none.
]);

function* sources(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.isFile() && EXTENSIONS.some((ext) => entry.name.endsWith(ext))) yield path;
  }
}

const hashes = process.argv.includes('--hashes');
const long = [];
const used = new Set();
for (const dir of DIRS) {
  for (const path of sources(join(ROOT, dir))) {
    const file = relative(ROOT, path).split(sep).join('/');
    readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .forEach((line, i) => {
        const length = [...line].length; // characters (code points), not bytes nor UTF-16 code units
        if (length <= MAX) return;
        const key = `${file} ${createHash('sha256').update(line).digest('hex').slice(0, 12)}`;
        if (ALLOWED.has(key)) used.add(key);
        else long.push(`${file}:${i + 1} (${length})${hashes ? `, entry '${key}'` : ''}`);
      });
  }
}

const stale = [...ALLOWED].filter((key) => !used.has(key));
if (long.length > 0) {
  console.error(`${long.length} line(s) longer than ${MAX} characters: split them (strings and comments by hand)`);
  for (const line of long) console.error(`  ${line}`);
}
if (stale.length > 0) {
  console.error('allowed long line(s) that changed or went: remove them from ALLOWED in build/line-length.mjs');
  for (const key of stale) console.error(`  ${key}`);
}
if (long.length > 0 || stale.length > 0) process.exit(1);
