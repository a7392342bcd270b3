/**
 * Builds the environment of an instance for a tenant of the test PostgreSQL, and reads back what
 * the bootstrap wrote (as the superuser), so tests can assert on the database itself.
 */
import type { PgServer, Tenant } from './postgres.js';
import type { Env } from './cli.js';

export const ADMIN = {
  email: 'Admin@Client.example',
  firstName: 'Alice',
  lastName: 'Martin',
  password: 'Sup3r-Secret-Admin-Pw',
  phone: '+33612345678',
};

export function instanceEnv(tenant: Tenant, overrides: Env = {}): Env {
  return {
    SKIP_SETUP: 'true',
    DATABASE_URL: tenant.url,
    DATABASE_SCHEMA: tenant.schema,
    DATABASE_CONNECT_TIMEOUT: '5',
    AUTO_SUPERADMIN_EMAIL: ADMIN.email,
    AUTO_SUPERADMIN_FIRSTNAME: ADMIN.firstName,
    AUTO_SUPERADMIN_LASTNAME: ADMIN.lastName,
    AUTO_SUPERADMIN_PASSWORD: ADMIN.password,
    AUTO_SUPERADMIN_PHONE: ADMIN.phone,
    ...overrides,
  };
}

export interface UserRow {
  id: string;
  email: string;
  first_name: string;
  last_name: string;
  phone: string | null;
  password_hash: string;
  role: string;
  updated_at: Date;
}

export async function users(pg: PgServer, schema: string): Promise<UserRow[]> {
  return pg.admin<UserRow[]>`select * from ${pg.admin(schema)}.users order by email`;
}

export async function setupState(pg: PgServer, schema: string) {
  const [row] = await pg.admin<
    { completed: boolean; completed_by: string | null; bootstrap_version: string | null; completed_at: Date | null }[]
  >`
    select completed, completed_by, bootstrap_version, completed_at from ${pg.admin(schema)}.setup_state`;
  return row;
}

export async function history(pg: PgServer, schema: string) {
  return pg.admin<
    { name: string; checksum: string }[]
  >`select name, checksum from ${pg.admin(schema)}.superfasttt_migrations order by name`;
}

/** Names of the relations in a schema: proves what a run created or left alone. */
export async function relations(pg: PgServer, schema: string): Promise<string[]> {
  const rows = await pg.admin<{ relname: string }[]>`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') order by 1`;
  return rows.map((r) => r.relname);
}

/** Everything in a schema, relation by relation and row by row: equal before and after means nothing was written. */
export async function fingerprint(pg: PgServer, schema: string): Promise<string> {
  const parts: string[] = [];
  for (const table of await relations(pg, schema)) {
    const [row] = await pg.admin<
      { rows: string | null }[]
    >`select string_agg(t::text, '|' order by t::text) as rows from ${pg.admin(schema)}.${pg.admin(table)} t`;
    parts.push(`${table}:${row?.rows}`);
  }
  return parts.join('\n');
}

/**
 * The storage (S3 over HTTPS, the shared bucket, the tenant's folder) and email (SMTP with
 * STARTTLS + AUTH) variables for the test servers, which all present one self-signed certificate.
 */
export function verifiedServices(
  tenant: Tenant,
  s3: { httpsEndpoint: string; caFile: string; admin: { accessKeyId: string; secretAccessKey: string } },
  smtp: { host: string; port: number; username: string; password: string },
  bucket: string,
): Env {
  return {
    NODE_EXTRA_CA_CERTS: s3.caFile,
    STORAGE_PROVIDER: 's3',
    STORAGE_ENDPOINT: s3.httpsEndpoint,
    STORAGE_BUCKET: bucket,
    STORAGE_PREFIX: `${tenant.schema}/`,
    STORAGE_ACCESS_KEY: s3.admin.accessKeyId,
    STORAGE_SECRET_KEY: s3.admin.secretAccessKey,
    EMAIL_PROVIDER: 'smtp',
    EMAIL_FROM: 'noreply@client.example',
    SMTP_HOST: smtp.host,
    SMTP_PORT: String(smtp.port),
    SMTP_USERNAME: smtp.username,
    SMTP_PASSWORD: smtp.password,
  };
}
