/**
 * The environment contract: every variable once, with its validation and its documentation. The
 * single source for validation (instance.ts builds the parsing schema from these fields), `--help`,
 * the variable reference and `.env.example` (see docs.ts).
 */
import * as v from 'valibot';
import {
  boolean,
  email,
  hostname,
  httpUrl,
  integer,
  oneOf,
  optional,
  phoneE164,
  required,
  text,
  withDefault,
} from './fields.js';

export const STORAGE_PROVIDERS = ['s3'] as const;
export const EMAIL_PROVIDERS = ['smtp', 'sendgrid'] as const;

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface DatabaseUrl {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslmode: SslMode | undefined;
  sslrootcert: string | undefined;
}

/** Query parameters of DATABASE_URL that we honour; any other one is refused, not silently ignored. */
const URL_PARAMS = new Set(['sslmode', 'sslrootcert']);

/** Parses a libpq-style URL. Problems are reported without the URL itself: it holds the password. */
export const databaseUrl = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.rawTransform(({ dataset, addIssue, NEVER }): DatabaseUrl => {
      const fail = (message: string) => {
        addIssue({ message });
        return NEVER;
      };
      let url: URL;
      try {
        url = new URL(dataset.value);
      } catch {
        return fail(
          'is not a valid URL: expected postgres://USER:PASSWORD@HOST:5432/DATABASE ' +
            '(percent-encode special characters in the password)',
        );
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
        return fail('must start with postgres:// or postgresql://');
      }
      if (!url.hostname) return fail('has no host');
      const port = url.port === '' ? 5432 : Number(url.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) return fail('has an invalid port');
      let user: string, password: string, database: string;
      try {
        user = decodeURIComponent(url.username);
        password = decodeURIComponent(url.password);
        database = decodeURIComponent(url.pathname.replace(/^\//, ''));
      } catch {
        return fail('has an invalid percent-encoding in the user, password or database name');
      }
      if (!user) return fail('has no user name (postgres://USER:PASSWORD@HOST/DATABASE)');
      if (!database || database.includes('/'))
        return fail('has no database name (postgres://USER:PASSWORD@HOST:5432/DATABASE)');
      for (const key of url.searchParams.keys()) {
        if (!URL_PARAMS.has(key))
          return fail(`has an unsupported parameter "${key}" (supported: ${[...URL_PARAMS].join(', ')})`);
      }
      const sslmode = url.searchParams.get('sslmode') ?? undefined;
      if (sslmode !== undefined && !(SSL_MODES as readonly string[]).includes(sslmode)) {
        return fail(`has an invalid sslmode (expected one of: ${SSL_MODES.join(', ')})`);
      }
      return {
        // URL keeps IPv6 hosts bracketed; the socket API wants them bare.
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port,
        user,
        password,
        database,
        sslmode: sslmode as SslMode | undefined,
        sslrootcert: url.searchParams.get('sslrootcert') ?? undefined,
      };
    }),
  );

const pem = () =>
  v.pipe(
    v.string(),
    v.maxLength(1_000_000, 'must be at most 1 MB'),
    v.includes('-----BEGIN CERTIFICATE-----', 'must be PEM text starting with -----BEGIN CERTIFICATE-----'),
  );

const RESERVED_SCHEMAS = new Set(['public', 'information_schema']);

/**
 * A tenant schema name, as the deployment machine wrote it in its SQL. Unquoted identifiers fold to
 * lowercase in PostgreSQL (tenant_clientA is tenant_clienta), so we fold too; load.ts warns when
 * folding changed the name. Only plain identifiers are accepted: no quotes, no spaces.
 */
const schemaName = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(
      /^[A-Za-z_][A-Za-z0-9_]*$/,
      'must be a plain PostgreSQL identifier: a letter or _ then letters, digits or _ (no quotes, spaces or dots)',
    ),
    v.maxBytes(63, 'must be at most 63 bytes (PostgreSQL truncates longer identifiers)'),
    v.toLowerCase(),
    v.check((x) => !x.startsWith('pg_'), 'must not start with pg_ (reserved by PostgreSQL)'),
    v.check((x) => !RESERVED_SCHEMAS.has(x), 'must be the tenant schema, not public or information_schema'),
  );

/** Values that people leave in templates; refused so a published default never becomes a real password. */
const PLACEHOLDER_FRAGMENTS = /xxxx|change[_-]?me|<[^>]*>|\$\{/i;
/** Template words that are the whole password once digits and symbols are removed ("Password123!"). */
const PLACEHOLDER_WORDS = new Set([
  'password',
  'motdepasse',
  'secret',
  'admin',
  'example',
  'placeholder',
  'azerty',
  'qwerty',
  'letmein',
  'welcome',
  'superfasttt',
  'changeit',
  '',
]);

function isPlaceholder(password: string): boolean {
  return PLACEHOLDER_FRAGMENTS.test(password) || PLACEHOLDER_WORDS.has(password.toLowerCase().replace(/[^a-z]/g, ''));
}

const adminPassword = () =>
  v.pipe(
    v.string(),
    v.check((x) => [...x].length >= 12, 'must be at least 12 characters long'),
    v.maxLength(1024, 'must be at most 1024 characters long'),
    v.check(
      (x) => !isPlaceholder(x),
      'looks like a placeholder (xxxx, changeme, <...>, Password123, ...): set a real password',
    ),
    v.check((x) => new Set(x).size >= 5, 'is too repetitive: use at least 5 different characters'),
  );

/** S3 bucket names (AWS and Scaleway rules): no underscore, no uppercase. */
export const bucketName = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'must be a bucket name: 3 to 63 lowercase letters, digits, dots or hyphens (no _ and no uppercase)',
    ),
    v.check(
      (x) => !x.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(x),
      'must be a bucket name (no "..", not an IP address)',
    ),
  );

/** The tenant's folder in a shared bucket, normalised to end with exactly one slash. */
const storagePrefix = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^[A-Za-z0-9_.\-/]{1,200}$/, 'must be a folder name such as tenant_clienta/ (letters, digits, _ . - /)'),
    v.check((x) => !x.startsWith('/'), 'must not start with /'),
    v.check((x) => !x.split('/').some((part) => part === '.' || part === '..'), 'must not contain . or .. segments'),
    v.transform((x) => x.replace(/\/+$/, '') + '/'),
    v.check((x) => x !== '/', 'must name a folder, not only /'),
  );

const API_MODULE = /^[a-z][a-z0-9_-]{0,62}$/;

const apiList = () =>
  v.pipe(
    v.string(),
    v.transform((x) => [
      ...new Set(
        x
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
      ),
    ]),
    v.check((xs) => xs.length > 0, 'must list at least one API module (unset it to enable all)'),
    v.check(
      (xs) => xs.every((m) => API_MODULE.test(m)),
      'must be comma-separated module names (lowercase letters, digits, _ or -)',
    ),
  );

export const envSchema = v.object({
  SKIP_SETUP: optional(
    oneOf(['true', 'false']),
    'true: bootstrap the instance and disable the setup wizard for good. Unset or false: change nothing and leave ' +
      'the wizard enabled. Any other value is an error.',
    { group: 'setup', example: 'true' },
  ),

  DATABASE_URL: required(
    databaseUrl(),
    'PostgreSQL URL of the tenant role: postgres[ql]://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=...]. ' +
      'sslmode (disable|allow|prefer|require|verify-ca|verify-full) and sslrootcert (a CA file, or system) mean ' +
      'what they mean to libpq 16 (docs/configuration.md, "PostgreSQL connection and TLS"). ' +
      "libpq's PG* variables are ignored.",
    {
      group: 'database',
      secret: true,
      example: 'postgres://tenant_clienta:CHANGE_ME@postgres:5432/superfasttt?sslmode=verify-full',
    },
  ),
  DATABASE_SCHEMA: required(
    schemaName(),
    'Tenant schema, created beforehand by the deployment machine. Folded to lowercase like an unquoted SQL identifier.',
    { group: 'database', example: 'tenant_clienta' },
  ),
  DATABASE_SSL: withDefault(
    boolean(),
    'false',
    'true: TLS is required, at least sslmode=require (sslmode unset: require, or verify-full with ' +
      'sslrootcert=system; disable, allow or prefer: a configuration error); a server without TLS is an error, ' +
      'never a plaintext fallback.',
    { group: 'database', example: 'true' },
  ),
  DATABASE_SSL_CA: optional(
    pem(),
    'PEM certificate(s) of the CA that signed the server certificate: as sslrootcert=FILE, the chain is verified in ' +
      'every sslmode that uses TLS (require included), and verify-full also checks the host name.',
    { group: 'database', example: '' },
  ),
  DATABASE_SSL_CA_FILE: optional(
    text(4096),
    'Path of a PEM file with the CA certificate(s); alternative to DATABASE_SSL_CA and to sslrootcert in ' +
      'DATABASE_URL (one of the three at most).',
    { group: 'database', example: '/run/secrets/postgres-ca.pem' },
  ),
  DATABASE_CONNECT_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '60',
    'Seconds to keep retrying an unreachable server (it may still be starting). Authentication, unknown database and ' +
      'TLS failures are not retried.',
    { group: 'database', example: '60' },
  ),
  DATABASE_LOCK_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '120',
    'Seconds to wait for a lock before giving up, naming its holder: another bootstrap of the same schema (another ' +
      'replica), or a session of the app holding one of our tables. Every statement has this lock_timeout.',
    { group: 'database', example: '120' },
  ),
  DATABASE_STATEMENT_TIMEOUT: withDefault(
    integer(1, 86_400, ' (seconds)'),
    '300',
    'Seconds any one statement may run (statement_timeout, lock waits included; a migration on a large table may ' +
      "need more), whatever the role's own defaults say.",
    { group: 'database', example: '300' },
  ),

  STORAGE_PROVIDER: optional(
    oneOf(STORAGE_PROVIDERS),
    's3 to verify S3 storage before the instance is marked ready; unset: storage is not checked (logged).',
    {
      group: 'storage',
      example: 's3',
    },
  ),
  STORAGE_ENDPOINT: optional(
    httpUrl({ httpsOnly: false, path: false }),
    'S3 endpoint of an S3-compatible provider (Scaleway, MinIO, ...); unset: AWS S3 for STORAGE_REGION.',
    { group: 'storage', example: 'https://s3.fr-par.scw.cloud' },
  ),
  STORAGE_BUCKET: optional(
    bucketName(),
    'Bucket of the instance: a dedicated one, or a shared one with STORAGE_PREFIX.',
    {
      group: 'storage',
      example: 'superfasttt-central',
      requiredWhen: ['STORAGE_PROVIDER', 's3'],
    },
  ),
  STORAGE_REGION: withDefault(
    v.pipe(v.string(), v.trim(), v.regex(/^[a-z0-9-]{2,32}$/, 'must be a region name such as fr-par or eu-west-3')),
    'us-east-1',
    'Region of the bucket (signs the requests).',
    { group: 'storage', example: 'fr-par' },
  ),
  STORAGE_ACCESS_KEY: optional(text(256), 'S3 access key id.', {
    group: 'storage',
    secret: true,
    example: 'CHANGE_ME',
    requiredWhen: ['STORAGE_PROVIDER', 's3'],
  }),
  STORAGE_SECRET_KEY: optional(text(256), 'S3 secret access key.', {
    group: 'storage',
    secret: true,
    example: 'CHANGE_ME',
    requiredWhen: ['STORAGE_PROVIDER', 's3'],
  }),
  STORAGE_SECURE: withDefault(
    boolean(),
    'true',
    'true: STORAGE_ENDPOINT must be https (an http endpoint is a configuration error).',
    {
      group: 'storage',
      example: 'true',
    },
  ),
  STORAGE_PREFIX: optional(
    storagePrefix(),
    'Folder of the tenant in a shared bucket (tenant_clienta/); a trailing / is added. The probe runs inside it, and ' +
      'a folder marker is created if missing.',
    { group: 'storage', example: 'tenant_clienta/' },
  ),
  STORAGE_FORCE_PATH_STYLE: optional(
    boolean(),
    'Path-style addressing (https://endpoint/bucket/key), which S3-compatible providers need.',
    {
      group: 'storage',
      example: 'true',
      defaultText: 'true when STORAGE_ENDPOINT is set, else false',
    },
  ),
  STORAGE_TIMEOUT: withDefault(
    integer(1, 300, ' (seconds)'),
    '10',
    'Seconds allowed for each S3 request (3 attempts at most), ' +
      'so an endpoint that never answers fails in bounded time.',
    { group: 'storage', example: '10' },
  ),

  EMAIL_PROVIDER: optional(
    oneOf(EMAIL_PROVIDERS),
    'smtp or sendgrid to verify the email provider before the ' +
      'instance is marked ready; unset: email is not checked (logged).',
    {
      group: 'email',
      example: 'smtp',
    },
  ),
  EMAIL_FROM: optional(email(), 'Sender address of the instance emails.', {
    group: 'email',
    example: 'superfasttt@client.example',
    requiredWhen: ['EMAIL_PROVIDER', '*'],
  }),
  EMAIL_FROM_NAME: optional(text(100), 'Sender name.', { group: 'email', example: 'superfasttt' }),
  SMTP_HOST: optional(hostname(), 'SMTP server.', {
    group: 'email',
    example: 'smtp.client.example',
    requiredWhen: ['EMAIL_PROVIDER', 'smtp'],
  }),
  SMTP_PORT: optional(integer(1, 65535), 'SMTP port.', {
    group: 'email',
    example: '587',
    defaultText: '587, or 465 with SMTP_SECURE=tls',
  }),
  SMTP_USERNAME: optional(text(256), 'SMTP user; the verification authenticates, a plain connect is not enough.', {
    group: 'email',
    example: 'superfasttt@client.example',
    requiredWhen: ['EMAIL_PROVIDER', 'smtp'],
  }),
  SMTP_PASSWORD: optional(text(1024), 'SMTP password.', {
    group: 'email',
    secret: true,
    example: 'CHANGE_ME',
    requiredWhen: ['EMAIL_PROVIDER', 'smtp'],
  }),
  SMTP_SECURE: withDefault(
    oneOf(['starttls', 'tls', 'none']),
    'starttls',
    'starttls (a server that does not offer STARTTLS is refused), tls (implicit TLS, usually port 465), or none ' +
      '(plaintext: only when chosen explicitly).',
    { group: 'email', example: 'starttls' },
  ),
  SENDGRID_API_KEY: optional(
    v.pipe(text(512), v.startsWith('SG.', 'must be a SendGrid API key (it starts with SG.)')),
    'SendGrid API key; it needs the mail.send scope.',
    { group: 'email', secret: true, example: 'CHANGE_ME', requiredWhen: ['EMAIL_PROVIDER', 'sendgrid'] },
  ),
  SENDGRID_API_URL: withDefault(
    httpUrl({ httpsOnly: true, path: false }),
    'https://api.sendgrid.com',
    'SendGrid API; https://api.eu.sendgrid.com for EU data residency.',
    { group: 'email', example: 'https://api.sendgrid.com' },
  ),
  EMAIL_TIMEOUT: withDefault(
    integer(1, 300, ' (seconds)'),
    '10',
    'Seconds allowed to connect to and hear from the email provider, per operation.',
    { group: 'email', example: '10' },
  ),

  AUTO_SUPERADMIN_EMAIL: required(
    email(),
    'Email of the super admin; compared case-insensitively and stored lowercase.',
    { group: 'superadmin', example: 'admin@client.example' },
  ),
  AUTO_SUPERADMIN_FIRSTNAME: required(text(100), 'First name of the super admin.', {
    group: 'superadmin',
    example: 'Alice',
  }),
  AUTO_SUPERADMIN_LASTNAME: required(text(100), 'Last name of the super admin.', {
    group: 'superadmin',
    example: 'Martin',
  }),
  AUTO_SUPERADMIN_PASSWORD: required(
    adminPassword(),
    'Initial password of the super admin: at least 12 characters, no placeholder, no control character (tab, ' +
      'newline, ...); spaces are kept. From AUTO_SUPERADMIN_PASSWORD_FILE, one final newline (\\n or \\r\\n) is ' +
      'removed, nothing else. Hashed with argon2id; never changed on an existing account unless ' +
      'AUTO_SUPERADMIN_RESET_PASSWORD=true.',
    { group: 'superadmin', secret: true, example: 'CHANGE_ME' },
  ),
  AUTO_SUPERADMIN_PHONE: optional(phoneE164(), 'Phone of the super admin in E.164 format (optional).', {
    group: 'superadmin',
    example: '+33612345678',
  }),
  AUTO_SUPERADMIN_RESET_PASSWORD: withDefault(
    boolean(),
    'false',
    'true: set the password of an existing super admin to AUTO_SUPERADMIN_PASSWORD on every run.',
    { group: 'superadmin', example: 'false' },
  ),

  AUTO_SUPERADMIN_WELCOME_EMAIL: withDefault(
    boolean(),
    'false',
    'true: send the super admin one welcome email with the login link (never the password) when the account is ' +
      'created; needs EMAIL_PROVIDER and APP_URL.',
    { group: 'superadmin', example: 'false' },
  ),
  APP_URL: optional(
    httpUrl({ httpsOnly: false, path: true }),
    'Public URL of the instance, for the login link of the welcome email.',
    {
      group: 'superadmin',
      example: 'https://clienta.superfasttt.example',
      requiredWhen: ['AUTO_SUPERADMIN_WELCOME_EMAIL', 'true'],
    },
  ),
  ENABLED_APIS: optional(
    apiList(),
    'Comma-separated API modules to enable; unset: all API modules are enabled from the first boot. Recorded in ' +
      'instance_settings (key apis).',
    { group: 'setup', example: 'auth,users,files' },
  ),

  LOG_FORMAT: withDefault(
    oneOf(['text', 'json']),
    'text',
    'text, or json for one JSON object per line on stdout and stderr.',
    {
      group: 'logging',
      example: 'text',
    },
  ),
  NO_COLOR: optional(v.string(), 'Set (to anything) to disable colours in text logs.', {
    group: 'logging',
    example: '',
  }),
  TERMINATION_LOG: optional(
    text(4096),
    'Where the failure message is also written (default /dev/termination-log, ' +
      'when it exists: Kubernetes shows it in kubectl describe pod).',
    { group: 'logging', example: '/dev/termination-log' },
  ),
});

export type VariableName = keyof typeof envSchema.entries;
