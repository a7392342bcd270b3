// Regenerates migrations/catalog.json (npm run catalog), the reference that drift is measured against
// (src/steps/drift.ts): it starts an embedded PostgreSQL (the tests' harness), applies migrations/*.sql one
// after the other to a scratch schema as the bootstrap does (search_path = that schema, each migration in its
// own transaction, simple protocol), and records the normalised catalog (src/db/catalog.ts) after each one.
// `--check` only reports whether the file is up to date (exit 1 if not); the tests use catalogEntries().
// `--pg=14` runs it on another major (the catalog must be the same on all of them).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { readCatalog } from '../src/db/catalog.js';
import { PROGRAM_TABLES } from '../src/steps/schema-owner.js';
import type { CatalogEntry } from '../src/steps/drift.js';
import { type PgMajor, startPostgres } from '../test/harness/postgres.js';

const root = fileURLToPath(new URL('..', import.meta.url));
export const CATALOG_FILE = 'migrations/catalog.json';
const SCRATCH = 'superfasttt_catalog';

/** migrations/*.sql as build/build.mjs embeds them: name, LF text, checksum. */
export function migrationFiles(): Array<{ name: string; sql: string; checksum: string }> {
  return readdirSync(root + 'migrations')
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${root}migrations/${file}`, 'utf8').replace(/\r\n/g, '\n');
      return { name: file.slice(0, -4), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** The catalog after each migration, on a fresh PostgreSQL of that major. */
export async function catalogEntries(version?: PgMajor): Promise<CatalogEntry[]> {
  const pg = await startPostgres({ tls: false, ...(version && { version }) });
  try {
    await pg.admin.unsafe(`create schema ${SCRATCH}`);
    const sql = postgres(pg.url(pg.superuser, pg.superpassword), {
      max: 1,
      onnotice: () => {},
      connection: { search_path: SCRATCH },
    });
    try {
      const entries: CatalogEntry[] = [];
      for (const migration of migrationFiles()) {
        await sql.begin(async (tx) => {
          await tx.unsafe(migration.sql).simple();
        });
        // Every table of the scratch schema but the program's own (none here: no history, no lock).
        const catalog = await readCatalog(sql, SCRATCH, { tables: null, functions: null });
        catalog.tables = catalog.tables.filter((t) => !PROGRAM_TABLES.includes(t.name));
        entries.push({ migration: migration.name, checksum: migration.checksum, catalog });
      }
      return entries;
    } finally {
      await sql.end({ timeout: 1 });
    }
  } finally {
    await pg.stop();
  }
}

/** The file's text: JSON as Biome formats it (npm run lint checks migrations/ too). */
export function renderCatalog(entries: readonly CatalogEntry[]): string {
  const text = JSON.stringify(entries, null, 2) + '\n';
  return execFileSync(
    process.execPath,
    [`${root}node_modules/@biomejs/biome/bin/biome`, 'format', `--stdin-file-path=${CATALOG_FILE}`],
    { input: text, cwd: root, encoding: 'utf8' },
  );
}

/** The file as committed, parsed (undefined when absent or not JSON). */
export function committedCatalog(): CatalogEntry[] | undefined {
  try {
    return JSON.parse(readFileSync(root + CATALOG_FILE, 'utf8')) as CatalogEntry[];
  } catch {
    return undefined;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const pgArg = process.argv.find((a) => a.startsWith('--pg='));
  const entries = await catalogEntries(pgArg ? (Number(pgArg.slice(5)) as PgMajor) : undefined);
  if (check) {
    const same = JSON.stringify(committedCatalog()) === JSON.stringify(entries);
    if (!same) console.error(`${CATALOG_FILE} is not what the migrations produce: run npm run catalog`);
    process.exitCode = same ? 0 : 1;
  } else {
    writeFileSync(root + CATALOG_FILE, renderCatalog(entries));
    console.log(`${CATALOG_FILE} regenerated (${entries.length} migration(s))`);
  }
}
