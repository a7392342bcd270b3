/**
 * Which migrations are left to apply, and what a migration creates: pure functions over the
 * bundled migrations and the history read from the schema (migrations.ts runs them).
 */
import type { HistoryRow } from '../db/queries.js';
import { MigrationError } from '../errors.js';
import { statements } from './sql-tokens.js';

export interface Migration {
  /** File name without .sql, e.g. 0001_initial; applied in this order. */
  name: string;
  sql: string;
  /** sha256 of the file with line endings normalised to LF. */
  checksum: string;
}

/** A row of the history table. */
type Applied = HistoryRow;

/** Tables a migration creates without IF NOT EXISTS (not temporary): the last part of each name. */
export function createdTables(sql: string): string[] {
  const tables: string[] = [];
  for (const t of statements(sql)) {
    const words = t.map((token) => (token.kind === 'word' ? token.value : ''));
    if (words[0] !== 'create') continue;
    let i = 1;
    while (['global', 'local', 'unlogged'].includes(words[i] ?? '')) i++;
    if (words[i] !== 'table' || (words[i + 1] === 'if' && words[i + 2] === 'not')) continue;
    let name = t[i + 1];
    for (let j = i + 2; t[j]?.kind === 'punct' && t[j]?.value === '.' && t[j + 1]; j += 2) name = t[j + 1];
    if (name && (name.kind === 'word' || name.kind === 'quoted')) tables.push(name.value);
  }
  return tables;
}

/** What is left to apply; throws when the history does not belong to this set of migrations. */
export function pendingMigrations(migrations: readonly Migration[], applied: readonly Applied[]): Migration[] {
  const known = new Map(migrations.map((m) => [m.name, m]));
  for (const row of applied) {
    const migration = known.get(row.name);
    if (!migration) {
      throw new MigrationError(
        `the schema was migrated by a newer superfasttt-bootstrap ` +
          `(${row.bootstrap_version}): migration ${row.name} is unknown to this version`,
        `run superfasttt-bootstrap ${row.bootstrap_version} or newer (the ` +
          `version that matches the app); a schema is never migrated down`,
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.name} was changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the ` +
          `history, ${migration.checksum.slice(0, 12)} in this version)`,
        'restore the original migration file and put the change in a new migration; never edit an applied migration',
      );
    }
  }
  const done = new Set(applied.map((row) => row.name));
  // The highest applied name in the order migrations are applied (code points, as below), whatever
  // order the history was read in (the database's collation may sort names otherwise).
  const last = applied
    .map((row) => row.name)
    .reduce<string | undefined>((a, b) => (a === undefined || b > a ? b : a), undefined);
  const pending = migrations.filter((m) => !done.has(m.name));
  const early = last === undefined ? undefined : pending.find((m) => m.name < last);
  if (early) {
    throw new MigrationError(
      `migration ${early.name} sorts before ${last}, which is ` +
        `already applied: migrations must only be added at the end`,
      'rename the new migration so that it sorts after every applied one',
    );
  }
  return pending;
}
