// Bundles src/main.ts into dist/: one ESM entry plus lazily loaded chunks, the migrations embedded,
// and the native argon2 binding copied beside them, so that dist/ alone is the whole program.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Both overridable for the bench, which builds its own copy with an extra migration (never in migrations/).
const dist = process.env.BUILD_OUT_DIR ?? join(root, 'dist');
const migrationsDir = process.env.BUILD_MIGRATIONS_DIR ?? join(root, 'migrations');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

/** `import migrations from 'virtual:migrations'`: every migrations/*.sql with its checksum. */
const migrationsPlugin = {
  name: 'migrations',
  setup(build) {
    build.onResolve({ filter: /^virtual:migrations$/ }, () => ({ path: 'migrations', namespace: 'virtual' }));
    build.onLoad({ filter: /.*/, namespace: 'virtual' }, () => {
      const dir = migrationsDir;
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.sql'))
        .sort();
      const bad = files.filter((f) => !MIGRATION_FILE.test(f));
      if (bad.length)
        throw new Error(`migration file names must look like 0001_name.sql (lowercase): ${bad.join(', ')}`);
      const migrations = files.map((file) => {
        // LF line endings: a checkout with CRLF must not look like a changed migration.
        const sql = readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n');
        return { name: file.slice(0, -4), sql, checksum: createHash('sha256').update(sql).digest('hex') };
      });
      return {
        contents: `export default ${JSON.stringify(migrations)};`,
        loader: 'js',
        watchFiles: files.map((f) => join(dir, f)),
      };
    });
  },
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

await esbuild.build({
  entryPoints: { 'superfasttt-bootstrap': join(root, 'src/main.ts') },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true, // lazily imported modules (argon2, later S3 and email) cost nothing until used
  chunkNames: '[name]-[hash]', // beside the entry, where the native binding is looked up
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // Some dependencies call require() (node:* built-ins, the .node binding): give the ESM bundle one.
  banner: {
    js:
      "import { createRequire as __createRequire } from 'node:module'; const require = " +
      '__createRequire(import.meta.url);',
  },
  // The binding loader tries ./argon2.<platform>.node, then the @node-rs/argon2-<platform> package.
  external: ['*.node', '@node-rs/argon2-*'],
  plugins: [migrationsPlugin],
  logLevel: 'warning',
});

// The entry is also the program's `bin` (package.json): executable, and started by sh, which hands
// it to Node after `--`. Node reads an `--env-file` anywhere on its command line before `--`, even
// after the script, and exits 9 when that file is missing: with `#!/usr/bin/env node`, the kernel
// runs `node SCRIPT check --env-file PATH` and Node, not the program, would answer. (`#!/usr/bin/env
// -S node --` would do, but BusyBox's env has no -S.) For sh, the second line runs `:` (nothing),
// then Node; for JavaScript, it is a string statement and a comment. Chunks are imported, never
// started: they get no such lines.
const entry = join(dist, 'superfasttt-bootstrap.mjs');
writeFileSync(entry, '#!/bin/sh\n":" //; exec node -- "$0" "$@"\n' + readFileSync(entry, 'utf8'));
chmodSync(entry, 0o755);

// The native argon2 bindings installed for this platform (glibc and/or musl), next to the chunks.
const require = createRequire(import.meta.url);
const argon2Dir = dirname(require.resolve('@node-rs/argon2/package.json'));
let bindings = 0;
for (const pkgDir of readdirSync(join(argon2Dir, '..')).filter((d) => d.startsWith('argon2-'))) {
  for (const file of readdirSync(join(argon2Dir, '..', pkgDir)).filter((f) => f.endsWith('.node'))) {
    copyFileSync(join(argon2Dir, '..', pkgDir, file), join(dist, file));
    bindings++;
  }
}
if (bindings === 0) {
  throw new Error('no native argon2 binding found in node_modules/@node-rs (was npm ci run with --omit=optional?)');
}
