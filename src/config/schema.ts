/**
 * The environment contract: one valibot schema, the single source for validation, `--help`,
 * the README's variable table and `.env.example` (see docs.ts).
 */
import * as v from 'valibot';
import { boolean, email, integer, oneOf, optional, phoneE164, required, text, withDefault } from './fields.js';

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
const databaseUrl = () =>
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
        return fail('is not a valid URL: expected postgres://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters in the password)');
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
      if (!database || database.includes('/')) return fail('has no database name (postgres://USER:PASSWORD@HOST:5432/DATABASE)');
      for (const key of url.searchParams.keys()) {
        if (!URL_PARAMS.has(key)) return fail(`has an unsupported parameter "${key}" (supported: ${[...URL_PARAMS].join(', ')})`);
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
const PLACEHOLDER_WORDS = new Set(['password', 'motdepasse', 'secret', 'admin', 'example', 'placeholder', 'azerty', 'qwerty', 'letmein', 'welcome', 'superfasttt', 'changeit', '']);

function isPlaceholder(password: string): boolean {
  return PLACEHOLDER_FRAGMENTS.test(password) || PLACEHOLDER_WORDS.has(password.toLowerCase().replace(/[^a-z]/g, ''));
}

const adminPassword = () =>
  v.pipe(
    v.string(),
    v.check((x) => [...x].length >= 12, 'must be at least 12 characters long'),
    v.maxLength(1024, 'must be at most 1024 characters long'),
    v.check((x) => !isPlaceholder(x), 'looks like a placeholder (xxxx, changeme, <...>, Password123, ...): set a real password'),
    v.check((x) => new Set(x).size >= 5, 'is too repetitive: use at least 5 different characters'),
  );

export const envSchema = v.object({
  SKIP_SETUP: optional(
    oneOf(['true', 'false']),
    'true: bootstrap the instance and disable the setup wizard for good. Unset or false: change nothing and leave the wizard enabled. Any other value is an error.',
    { group: 'setup', example: 'true' },
  ),

  DATABASE_URL: required(
    databaseUrl(),
    'PostgreSQL URL of the tenant role: postgres[ql]://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=...]. sslmode disable|allow|prefer|require|verify-ca|verify-full and sslrootcert are honoured.',
    { group: 'database', secret: true, example: 'postgres://tenant_clienta:CHANGE_ME@postgres:5432/superfasttt?sslmode=verify-full' },
  ),
  DATABASE_SCHEMA: required(
    schemaName(),
    'Tenant schema, created beforehand by the deployment machine. Folded to lowercase like an unquoted SQL identifier.',
    { group: 'database', example: 'tenant_clienta' },
  ),
  DATABASE_SSL: withDefault(
    boolean(),
    'false',
    'true: TLS is required (at least sslmode=require); a server without TLS is an error, never a plaintext fallback.',
    { group: 'database', example: 'true' },
  ),
  DATABASE_SSL_CA: optional(
    pem(),
    'PEM certificate(s) of the CA that signed the server certificate, for sslmode verify-ca / verify-full. NODE_EXTRA_CA_CERTS also works.',
    { group: 'database', example: '' },
  ),
  DATABASE_SSL_CA_FILE: optional(
    text(4096),
    'Path of a PEM file with the CA certificate(s); alternative to DATABASE_SSL_CA.',
    { group: 'database', example: '/run/secrets/postgres-ca.pem' },
  ),
  DATABASE_CONNECT_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '60',
    'Seconds to keep retrying an unreachable server (it may still be starting). Authentication, unknown database and TLS failures are not retried.',
    { group: 'database', example: '60' },
  ),
  DATABASE_LOCK_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '120',
    'Seconds to wait for another bootstrap of the same schema (another replica) to finish before giving up.',
    { group: 'database', example: '120' },
  ),

  AUTO_SUPERADMIN_EMAIL: required(
    email(),
    'Email of the super admin; compared case-insensitively and stored lowercase.',
    { group: 'superadmin', example: 'admin@client.example' },
  ),
  AUTO_SUPERADMIN_FIRSTNAME: required(text(100), 'First name of the super admin.', { group: 'superadmin', example: 'Alice' }),
  AUTO_SUPERADMIN_LASTNAME: required(text(100), 'Last name of the super admin.', { group: 'superadmin', example: 'Martin' }),
  AUTO_SUPERADMIN_PASSWORD: required(
    adminPassword(),
    'Initial password of the super admin: at least 12 characters, no placeholder. Hashed with argon2id; never changed on an existing account unless AUTO_SUPERADMIN_RESET_PASSWORD=true.',
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

  LOG_FORMAT: withDefault(oneOf(['text', 'json']), 'text', 'text, or json for one JSON object per line on stdout and stderr.', {
    group: 'logging',
    example: 'text',
  }),
  NO_COLOR: optional(v.string(), 'Set (to anything) to disable colours in text logs.', { group: 'logging', example: '' }),
  TERMINATION_LOG: optional(
    text(4096),
    'Where the failure message is also written (default /dev/termination-log, when it exists: Kubernetes shows it in kubectl describe pod).',
    { group: 'logging', example: '/dev/termination-log' },
  ),
});

export type Env = v.InferOutput<typeof envSchema>;
export type VariableName = keyof typeof envSchema.entries;
