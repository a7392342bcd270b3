/**
 * The instance's configuration: the fields of schema.ts arranged into variants, so that what is
 * required in which case is part of the type (STORAGE_PROVIDER=s3 needs a bucket and keys,
 * EMAIL_PROVIDER=smtp a host and credentials, AUTO_SUPERADMIN_WELCOME_EMAIL=true an APP_URL), then
 * turned into targets (targets.ts). Nothing after this module reads the environment.
 */
import * as v from 'valibot';
import { tlsConfigProblems } from '../db/tls.js';
import { oneOfMessage, requiredIn } from './fields.js';
import { EMAIL_PROVIDERS, envSchema, STORAGE_PROVIDERS } from './schema.js';
import {
  type AdminTarget,
  type DatabaseTarget,
  type EmailTarget,
  INSTANCE_DATABASE_VARIABLES,
  INSTANCE_STORAGE_VARIABLES,
  type InstanceConfig,
  pathStyle,
  type RootCertificates,
  type StorageTarget,
  urlRoots,
} from './targets.js';

const f = envSchema.entries;

const STORAGE = [
  'STORAGE_ENDPOINT',
  'STORAGE_BUCKET',
  'STORAGE_REGION',
  'STORAGE_ACCESS_KEY',
  'STORAGE_SECRET_KEY',
  'STORAGE_SECURE',
  'STORAGE_PREFIX',
  'STORAGE_FORCE_PATH_STYLE',
  'STORAGE_TIMEOUT',
] as const;

const EMAIL = [
  'EMAIL_FROM',
  'EMAIL_FROM_NAME',
  'SMTP_HOST',
  'SMTP_PORT',
  'SMTP_USERNAME',
  'SMTP_PASSWORD',
  'SMTP_SECURE',
  'SENDGRID_API_KEY',
  'SENDGRID_API_URL',
  'EMAIL_TIMEOUT',
] as const;

// Every branch keeps all the fields of its group, so that a value set but unused is still validated
// (and warned about by load.ts); the chosen branch requires the ones it needs.
const storageFields = v.pick(envSchema, STORAGE).entries;
const emailFields = v.pick(envSchema, EMAIL).entries;

const storage = v.variant(
  'STORAGE_PROVIDER',
  [
    v.object({
      ...storageFields,
      STORAGE_PROVIDER: v.literal('s3'),
      STORAGE_BUCKET: requiredIn(f.STORAGE_BUCKET),
      STORAGE_ACCESS_KEY: requiredIn(f.STORAGE_ACCESS_KEY),
      STORAGE_SECRET_KEY: requiredIn(f.STORAGE_SECRET_KEY),
    }),
    v.object({ ...storageFields, STORAGE_PROVIDER: v.undefined() }),
  ],
  oneOfMessage(STORAGE_PROVIDERS),
);

const email = v.variant(
  'EMAIL_PROVIDER',
  [
    v.object({
      ...emailFields,
      EMAIL_PROVIDER: v.literal('smtp'),
      EMAIL_FROM: requiredIn(f.EMAIL_FROM),
      SMTP_HOST: requiredIn(f.SMTP_HOST),
      SMTP_USERNAME: requiredIn(f.SMTP_USERNAME),
      SMTP_PASSWORD: requiredIn(f.SMTP_PASSWORD),
    }),
    v.object({
      ...emailFields,
      EMAIL_PROVIDER: v.literal('sendgrid'),
      EMAIL_FROM: requiredIn(f.EMAIL_FROM),
      SENDGRID_API_KEY: requiredIn(f.SENDGRID_API_KEY),
    }),
    v.object({ ...emailFields, EMAIL_PROVIDER: v.undefined() }),
  ],
  oneOfMessage(EMAIL_PROVIDERS),
);

const welcome = v.variant(
  'AUTO_SUPERADMIN_WELCOME_EMAIL',
  [
    v.object({
      AUTO_SUPERADMIN_WELCOME_EMAIL: v.pipe(
        v.literal('true'),
        v.transform(() => true as const),
      ),
      APP_URL: requiredIn(f.APP_URL),
    }),
    v.object({
      AUTO_SUPERADMIN_WELCOME_EMAIL: v.optional(
        v.pipe(
          v.literal('false'),
          v.transform(() => false as const),
        ),
        'false',
      ),
      APP_URL: f.APP_URL,
    }),
  ],
  'must be true or false',
);

const common = v.omit(envSchema, [
  ...STORAGE,
  'STORAGE_PROVIDER',
  ...EMAIL,
  'EMAIL_PROVIDER',
  'AUTO_SUPERADMIN_WELCOME_EMAIL',
  'APP_URL',
]);

/** What SKIP_SETUP=true needs: parses the variables (strings, or undefined when unset). */
export const instanceSchema = v.intersect([common, storage, email, welcome]);

export type ParsedEnv = v.InferOutput<typeof instanceSchema>;

/** Problems no single variable shows: combinations. Empty when the configuration holds together. */
export function combinationProblems(env: ParsedEnv): string[] {
  const problems: string[] = [];
  if (env.STORAGE_SECURE && env.STORAGE_ENDPOINT?.startsWith('http:')) {
    problems.push(
      'STORAGE_ENDPOINT: is http but STORAGE_SECURE=true; use the https ' +
        'endpoint (or STORAGE_SECURE=false on a trusted network only)',
    );
  }
  if (env.AUTO_SUPERADMIN_WELCOME_EMAIL && !env.EMAIL_PROVIDER) {
    problems.push('AUTO_SUPERADMIN_WELCOME_EMAIL: is true but no EMAIL_PROVIDER is set to send it');
  }
  const caSources = [
    env.DATABASE_SSL_CA && 'DATABASE_SSL_CA',
    env.DATABASE_SSL_CA_FILE && 'DATABASE_SSL_CA_FILE',
    env.DATABASE_URL.sslrootcert && 'sslrootcert in DATABASE_URL',
  ].filter(Boolean);
  if (caSources.length > 1) {
    problems.push(`DATABASE_SSL_CA: set the CA in one place only (found ${caSources.join(', ')})`);
  }
  // What libpq refuses (sslrootcert=system with a weaker sslmode, verify-ca without a root),
  // and DATABASE_SSL=true with a weaker sslmode.
  problems.push(...tlsConfigProblems(databaseTarget(env)));
  return problems;
}

/** The targets of a configuration that passed combinationProblems. */
export function instanceConfig(env: ParsedEnv): InstanceConfig {
  const emailTarget = emailOf(env);
  const admin: AdminTarget = {
    email: env.AUTO_SUPERADMIN_EMAIL,
    firstName: env.AUTO_SUPERADMIN_FIRSTNAME,
    lastName: env.AUTO_SUPERADMIN_LASTNAME,
    phone: env.AUTO_SUPERADMIN_PHONE,
    password: env.AUTO_SUPERADMIN_PASSWORD,
    resetPassword: env.AUTO_SUPERADMIN_RESET_PASSWORD,
    welcome: env.AUTO_SUPERADMIN_WELCOME_EMAIL && emailTarget ? { appUrl: env.APP_URL, email: emailTarget } : undefined,
  };
  return {
    schema: env.DATABASE_SCHEMA,
    database: databaseTarget(env),
    storage: storageOf(env),
    email: emailTarget,
    admin,
    apis: env.ENABLED_APIS ? { all: false, modules: env.ENABLED_APIS } : { all: true, modules: null },
  };
}

function databaseTarget(env: ParsedEnv): DatabaseTarget {
  return {
    url: env.DATABASE_URL,
    requireTls: env.DATABASE_SSL,
    roots: rootsOf(env),
    connectTimeoutSec: env.DATABASE_CONNECT_TIMEOUT,
    lockTimeoutSec: env.DATABASE_LOCK_TIMEOUT,
    statementTimeoutSec: env.DATABASE_STATEMENT_TIMEOUT,
    vars: INSTANCE_DATABASE_VARIABLES,
  };
}

function rootsOf(env: ParsedEnv): RootCertificates {
  if (env.DATABASE_SSL_CA) return { kind: 'pem', pem: env.DATABASE_SSL_CA, from: 'DATABASE_SSL_CA' };
  if (env.DATABASE_SSL_CA_FILE) return { kind: 'file', path: env.DATABASE_SSL_CA_FILE, from: 'DATABASE_SSL_CA_FILE' };
  return urlRoots(env.DATABASE_URL, 'DATABASE_URL');
}

function storageOf(env: ParsedEnv): StorageTarget | undefined {
  if (env.STORAGE_PROVIDER !== 's3') return undefined;
  return {
    settings: {
      provider: 's3',
      endpoint: env.STORAGE_ENDPOINT ?? null,
      bucket: env.STORAGE_BUCKET,
      region: env.STORAGE_REGION,
      prefix: env.STORAGE_PREFIX ?? null,
      force_path_style: pathStyle(env.STORAGE_FORCE_PATH_STYLE, env.STORAGE_ENDPOINT),
    },
    credentials: { accessKeyId: env.STORAGE_ACCESS_KEY, secretAccessKey: env.STORAGE_SECRET_KEY },
    timeoutSec: env.STORAGE_TIMEOUT,
    vars: INSTANCE_STORAGE_VARIABLES,
  };
}

function emailOf(env: ParsedEnv): EmailTarget | undefined {
  const fromName = env.EMAIL_FROM_NAME ?? null;
  switch (env.EMAIL_PROVIDER) {
    case 'smtp':
      return {
        provider: 'smtp',
        settings: {
          provider: 'smtp',
          from: env.EMAIL_FROM,
          from_name: fromName,
          host: env.SMTP_HOST,
          port: env.SMTP_PORT ?? (env.SMTP_SECURE === 'tls' ? 465 : 587),
          secure: env.SMTP_SECURE,
        },
        username: env.SMTP_USERNAME,
        password: env.SMTP_PASSWORD,
        timeoutSec: env.EMAIL_TIMEOUT,
      };
    case 'sendgrid':
      return {
        provider: 'sendgrid',
        settings: { provider: 'sendgrid', from: env.EMAIL_FROM, from_name: fromName, api_url: env.SENDGRID_API_URL },
        apiKey: env.SENDGRID_API_KEY,
        timeoutSec: env.EMAIL_TIMEOUT,
      };
    case undefined:
      return undefined;
  }
}
