/**
 * What the program talks to, parsed once from the environment: the database, the storage, the email
 * provider and the super admin. Each target holds its settings, its credentials and the names of the
 * variables it came from, so that adapters take a target (never the raw environment) and every
 * message names what the operator actually set: DATABASE_URL for an instance, PROVISION_DATABASE_URL
 * for the deployment machine.
 */
import type { DatabaseUrl } from './schema.js';

/** The variables a database target came from (an instance's, or the deployment machine's). */
export interface DatabaseVariables {
  url: string;
  /** DATABASE_SSL; the deployment machine has no such variable (TLS as its URL says). */
  requireTls?: string;
  /** Where a CA can be given besides sslrootcert in the URL (DATABASE_SSL_CA, DATABASE_SSL_CA_FILE). */
  ca?: string;
  connectTimeout: string;
  lockTimeout: string;
  statementTimeout: string;
}

/**
 * The root certificates a TLS connection verifies the server against: none, the system (Node's)
 * store (sslrootcert=system), or a PEM given inline or as a file, with where it was given.
 */
export type RootCertificates =
  | { kind: 'none' }
  | { kind: 'system' }
  | { kind: 'pem'; pem: string; from: string }
  | { kind: 'file'; path: string; from: string };

export interface DatabaseTarget {
  url: DatabaseUrl;
  /** TLS whatever sslmode says (DATABASE_SSL=true). */
  requireTls: boolean;
  roots: RootCertificates;
  /** Seconds to keep retrying an unreachable server. */
  connectTimeoutSec: number;
  /** Seconds any statement may wait for a lock (lock_timeout): a tenant's open transaction never hangs us. */
  lockTimeoutSec: number;
  /** Seconds any statement may run in all (statement_timeout), lock waits included. */
  statementTimeoutSec: number;
  vars: DatabaseVariables;
}

export const INSTANCE_DATABASE_VARIABLES: DatabaseVariables = {
  url: 'DATABASE_URL',
  requireTls: 'DATABASE_SSL',
  ca: 'DATABASE_SSL_CA_FILE or DATABASE_SSL_CA',
  connectTimeout: 'DATABASE_CONNECT_TIMEOUT',
  lockTimeout: 'DATABASE_LOCK_TIMEOUT',
  statementTimeout: 'DATABASE_STATEMENT_TIMEOUT',
};

export const DEPLOYER_DATABASE_VARIABLES: DatabaseVariables = {
  url: 'PROVISION_DATABASE_URL',
  connectTimeout: 'PROVISION_CONNECT_TIMEOUT',
  lockTimeout: 'PROVISION_LOCK_TIMEOUT',
  statementTimeout: 'PROVISION_STATEMENT_TIMEOUT',
};

/** The roots a URL names by itself (sslrootcert), for a target whose URL is all there is. */
export function urlRoots(url: DatabaseUrl, urlVariable: string): RootCertificates {
  const root = url.sslrootcert;
  if (root === undefined) return { kind: 'none' };
  return root === 'system' ? { kind: 'system' } : { kind: 'file', path: root, from: `sslrootcert in ${urlVariable}` };
}

/** A target from a URL alone (TLS as the URL says), with the bounds and variables of whoever uses it. */
export function urlDatabaseTarget(
  url: DatabaseUrl,
  limits: Pick<DatabaseTarget, 'connectTimeoutSec' | 'lockTimeoutSec' | 'statementTimeoutSec'>,
  vars: DatabaseVariables,
): DatabaseTarget {
  const { connectTimeoutSec, lockTimeoutSec, statementTimeoutSec } = limits;
  return {
    url,
    requireTls: false,
    roots: urlRoots(url, vars.url),
    connectTimeoutSec,
    lockTimeoutSec,
    statementTimeoutSec,
    vars,
  };
}

// ---- storage -----------------------------------------------------------------------------------

/** Where objects go: what the app records in instance_settings (never the keys). */
export interface StorageSettings {
  provider: 's3';
  endpoint: string | null;
  bucket: string;
  region: string;
  prefix: string | null;
  force_path_style: boolean;
}

/**
 * Path-style addressing unless told otherwise: S3-compatible providers (an endpoint is set) want it,
 * AWS itself prefers virtual-hosted buckets.
 */
export function pathStyle(forcePathStyle: boolean | undefined, endpoint: string | null | undefined): boolean {
  return forcePathStyle ?? (endpoint !== undefined && endpoint !== null);
}

/** The variables an S3 connection came from (STORAGE_*, or the deployment machine's PROVISION_STORAGE_*). */
export interface StorageVariables {
  endpoint: string;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** STORAGE_TIMEOUT; the deployment machine's requests have a fixed timeout. */
  timeout?: string;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** An S3 account: its keys, its request timeout and the variables they came from. */
export interface S3Account {
  credentials: S3Credentials;
  timeoutSec: number;
  vars: StorageVariables;
}

export interface StorageTarget extends S3Account {
  settings: StorageSettings;
}

export const INSTANCE_STORAGE_VARIABLES: StorageVariables = {
  endpoint: 'STORAGE_ENDPOINT',
  bucket: 'STORAGE_BUCKET',
  region: 'STORAGE_REGION',
  accessKey: 'STORAGE_ACCESS_KEY',
  secretKey: 'STORAGE_SECRET_KEY',
  timeout: 'STORAGE_TIMEOUT',
};

export const DEPLOYER_STORAGE_VARIABLES: StorageVariables = {
  endpoint: 'PROVISION_STORAGE_ENDPOINT',
  bucket: 'PROVISION_STORAGE_BUCKET',
  region: 'PROVISION_STORAGE_REGION',
  accessKey: 'PROVISION_STORAGE_ACCESS_KEY',
  secretKey: 'PROVISION_STORAGE_SECRET_KEY',
};

// ---- email -------------------------------------------------------------------------------------

export interface SmtpSettings {
  provider: 'smtp';
  from: string;
  from_name: string | null;
  host: string;
  port: number;
  secure: 'starttls' | 'tls' | 'none';
}

export interface SendgridSettings {
  provider: 'sendgrid';
  from: string;
  from_name: string | null;
  api_url: string;
}

/** What the app records in instance_settings (never the password or the key). */
export type EmailSettings = SmtpSettings | SendgridSettings;

export type EmailTarget =
  | { provider: 'smtp'; settings: SmtpSettings; username: string; password: string; timeoutSec: number }
  | { provider: 'sendgrid'; settings: SendgridSettings; apiKey: string; timeoutSec: number };

// ---- the super admin and the instance ------------------------------------------------------------

export interface AdminTarget {
  email: string;
  firstName: string;
  lastName: string;
  phone: string | undefined;
  password: string;
  /** AUTO_SUPERADMIN_RESET_PASSWORD: set the password of an existing account on every run. */
  resetPassword: boolean;
  /** AUTO_SUPERADMIN_WELCOME_EMAIL: the login link to send, and the provider that sends it. */
  welcome: { appUrl: string; email: EmailTarget } | undefined;
}

/** Key `apis`: which API modules the app enables. */
export type ApiSettings = { all: true; modules: null } | { all: false; modules: string[] };

/** The instance's whole configuration, as the steps use it. */
export interface InstanceConfig {
  /** The tenant schema (DATABASE_SCHEMA), folded to lowercase. */
  schema: string;
  database: DatabaseTarget;
  /** Unset STORAGE_PROVIDER: storage is not checked. */
  storage: StorageTarget | undefined;
  /** Unset EMAIL_PROVIDER: email is not checked. */
  email: EmailTarget | undefined;
  admin: AdminTarget;
  apis: ApiSettings;
}

/** Everything recorded in instance_settings, by key. A provider left unset is `{"provider": null}`. */
export function instanceSettings(config: InstanceConfig): Record<string, object> {
  return {
    storage: config.storage?.settings ?? { provider: null },
    email: config.email?.settings ?? { provider: null },
    apis: config.apis,
  };
}

// ---- the deployment machine (provision, deprovision) ---------------------------------------------

/** The deployer's S3 admin account (PROVISION_STORAGE_*), which creates the tenants' buckets or folders. */
export interface DeployerStorage extends S3Account {
  endpoint: string | null;
  region: string;
  /** PROVISION_STORAGE_FORCE_PATH_STYLE as set (copied into the tenants' .env only when set). */
  forcePathStyle: boolean | undefined;
}

export interface DeployerConfig {
  database: DatabaseTarget;
  /** Unset PROVISION_STORAGE_ACCESS_KEY and _SECRET_KEY: storage is not provisioned. */
  storage: DeployerStorage | undefined;
  /**
   * PROVISION_STORAGE_BUCKET: the shared bucket of --storage-mode prefix. Set or not with the keys:
   * a tenant's own bucket is never it, keys or not.
   */
  sharedBucket: string | undefined;
  /** PROVISION_CONNECTION_LIMIT of each tenant role. */
  connectionLimit: number;
  storageKeys: StorageKeysSettings;
}

/** How per-tenant storage keys are issued (PROVISION_STORAGE_KEYS and the variables of its providers). */
export interface StorageKeysSettings {
  /** PROVISION_STORAGE_KEYS: the default of --storage-keys. */
  mode: 'shared' | 'per-tenant';
  /** PROVISION_STORAGE_KEY_COMMAND as written (the command provider parses it). */
  command: string | undefined;
  /** PROVISION_STORAGE_KEY_COMMAND_TIMEOUT (s). */
  commandTimeoutSec: number;
  /** PROVISION_STORAGE_IAM_ENDPOINT: an IAM-compatible service other than AWS's. */
  iamEndpoint: string | undefined;
  /** PROVISION_STORAGE_KEY_SETTLE (s): how long a new key may take to work. */
  settleSec: number;
}
