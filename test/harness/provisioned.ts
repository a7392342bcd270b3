/**
 * Tenants made by `provision`: its .env files, a client connected as a tenant, and the isolation
 * every pair of tenants must have, asserted the same way on every PostgreSQL version.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';

export type EnvFile = Record<string, string>;

/** A .env file written by provision --out-dir (KEY=value lines, # comments). */
export function readEnvFile(file: string): EnvFile {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** A client connected as a tenant, from its .env. */
export function tenantClient(env: EnvFile): postgres.Sql {
  return postgres(env.DATABASE_URL!, { max: 1, onnotice: () => {}, ssl: { rejectUnauthorized: false } });
}

/** The tenant's schema and login role, from its .env. */
function identity(env: EnvFile): { schema: string; role: string } {
  return { schema: env.DATABASE_SCHEMA!, role: decodeURIComponent(new URL(env.DATABASE_URL!).username) };
}

/**
 * Tenant `me` cannot read, write or create in `other`'s schema, create in public, drop either
 * schema, become `other`, change `other`'s password, raise its own rights, or give its schema away;
 * its own tables stay usable. `superuser` is a superuser client on the tenants' database.
 */
export async function assertIsolated(me: EnvFile, other: EnvFile, superuser: postgres.Sql): Promise<void> {
  const client = tenantClient(me);
  const mine = identity(me);
  const theirs = identity(other);
  try {
    await assert.rejects(client.unsafe(`select * from ${theirs.schema}.users`), /permission denied/);
    await assert.rejects(
      client.unsafe(
        `insert into ${theirs.schema}.users (email, first_name, last_name, password_hash) ` +
          `values ('x@x.example', 'x', 'x', 'x')`,
      ),
      /permission denied/,
    );
    await assert.rejects(client.unsafe(`create table ${theirs.schema}.intruder (id int)`), /permission denied/);
    await assert.rejects(client.unsafe('create table public.intruder (id int)'), /permission denied/);
    await assert.rejects(client.unsafe(`drop schema ${theirs.schema} cascade`), /must be owner/);
    await assert.rejects(client.unsafe(`drop schema ${mine.schema} cascade`), /must be owner/);
    await assert.rejects(client.unsafe(`set role ${theirs.role}`), /permission denied/);
    await assert.rejects(client.unsafe(`alter role ${theirs.role} password 'x'`), /permission denied/);
    await assert.rejects(client.unsafe(`alter role ${mine.role} createrole`), /permission denied/);
    // PostgreSQL answers a GRANT without grant option with a warning only: check that nothing was granted.
    await client.unsafe(`grant usage, create on schema ${mine.schema} to ${theirs.role}`).catch(() => {});
    const [granted] = await superuser<
      { usage: boolean }[]
    >`select has_schema_privilege(${theirs.role}, ${mine.schema}, 'USAGE') as usage`;
    assert.equal(granted?.usage, false);
    // Its own tables: all the rights, by ownership.
    await client.unsafe(`select count(*) from ${mine.schema}.users`);
  } finally {
    await client.end();
  }
}
