/**
 * The deployment machine's environment for `provision` and `deprovision`: admin credentials the
 * instances themselves never hold. Same builders and _FILE convention as the instance's schema.
 */
import * as v from 'valibot';
import { ConfigError } from '../errors.js';
import { boolean, httpUrl, integer, oneOf, optional, required, text, withDefault, type FieldDoc } from './fields.js';
import { issueProblems, readVariables, registerUrlPassword } from './load.js';
import { bucketName, databaseUrl } from './schema.js';
import { tlsConfigProblems } from '../db/tls.js';
import {
  DEPLOYER_DATABASE_VARIABLES,
  DEPLOYER_STORAGE_VARIABLES,
  type DeployerConfig,
  type DeployerStorage,
  urlDatabaseTarget,
} from './targets.js';

export const provisionSchema = v.object({
  PROVISION_DATABASE_URL: required(
    databaseUrl(),
    'URL of the deployer role: CREATEROLE and CREATE on the database (ideally its owner), not a superuser. The ' +
      "tenants' URLs are derived from it (host, port, database, sslmode).",
    {
      group: 'provision',
      secret: true,
      example: 'postgres://deployer:CHANGE_ME@postgres:5432/superfasttt?sslmode=verify-full',
    },
  ),
  PROVISION_CONNECTION_LIMIT: withDefault(integer(1, 10_000), '20', 'Connection limit of each tenant role.', {
    group: 'provision',
    example: '20',
  }),
  PROVISION_STORAGE_ACCESS_KEY: optional(
    text(256),
    'S3 admin access key of the deployment machine; set it to provision storage (a bucket or a folder per tenant).',
    {
      group: 'provision',
      secret: true,
      example: 'CHANGE_ME',
    },
  ),
  PROVISION_STORAGE_SECRET_KEY: optional(text(256), 'S3 admin secret key of the deployment machine.', {
    group: 'provision',
    secret: true,
    example: 'CHANGE_ME',
  }),
  PROVISION_STORAGE_ENDPOINT: optional(
    httpUrl({ httpsOnly: false, path: false }),
    'S3 endpoint (S3-compatible providers); unset: AWS S3.',
    {
      group: 'provision',
      example: 'https://s3.fr-par.scw.cloud',
    },
  ),
  PROVISION_STORAGE_REGION: withDefault(
    v.pipe(v.string(), v.trim(), v.regex(/^[a-z0-9-]{2,32}$/, 'must be a region name such as fr-par')),
    'us-east-1',
    'Region of the buckets.',
    { group: 'provision', example: 'fr-par' },
  ),
  PROVISION_STORAGE_BUCKET: optional(
    bucketName(),
    'Shared bucket of --storage-mode prefix (the default), where each tenant gets its folder.',
    { group: 'provision', example: 'superfasttt-central' },
  ),
  PROVISION_STORAGE_FORCE_PATH_STYLE: optional(boolean(), 'Path-style addressing.', {
    group: 'provision',
    example: 'true',
    defaultText: 'true when PROVISION_STORAGE_ENDPOINT is set',
  }),
  PROVISION_STORAGE_KEYS: withDefault(
    oneOf(['shared', 'per-tenant']),
    'shared',
    "Storage keys each instance receives (the default of provision's --storage-keys). per-tenant (recommended): " +
      'an identity per tenant whose key reaches only its folder or bucket, made by AWS IAM or by ' +
      'PROVISION_STORAGE_KEY_COMMAND, proven before it is written. shared: the deployer keys above (one leaked ' +
      "instance then reaches every tenant's files).",
    { group: 'provision', example: 'per-tenant' },
  ),
  PROVISION_STORAGE_KEY_COMMAND: optional(
    text(4096),
    'Executable that issues per-tenant keys on storage other than AWS (MinIO, Scaleway...): a path, or a JSON ' +
      'array of the path and fixed arguments. Never run through a shell. Contract: docs/provisioning.md.',
    { group: 'provision', example: '/usr/local/bin/minio-tenant-keys' },
  ),
  PROVISION_STORAGE_KEY_COMMAND_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '60',
    'Seconds one call of PROVISION_STORAGE_KEY_COMMAND may run before its process group is killed.',
    { group: 'provision', example: '60' },
  ),
  PROVISION_STORAGE_IAM_ENDPOINT: optional(
    httpUrl({ httpsOnly: false, path: false }),
    "IAM endpoint of per-tenant keys on an IAM-compatible service other than AWS's; unset: AWS IAM (used " +
      'when PROVISION_STORAGE_ENDPOINT is unset).',
    { group: 'provision', example: 'https://iam.storage.example' },
  ),
  PROVISION_STORAGE_KEY_SETTLE: withDefault(
    integer(0, 300, ' (seconds)'),
    '15',
    'Seconds a new per-tenant key may take to start working (AWS IAM keys take a few seconds to propagate) ' +
      'before its proof fails.',
    { group: 'provision', example: '15' },
  ),
  PROVISION_CONNECT_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '60',
    'Seconds to keep retrying an unreachable server.',
    {
      group: 'provision',
      example: '60',
    },
  ),
  PROVISION_LOCK_TIMEOUT: withDefault(
    integer(1, 3600, ' (seconds)'),
    '30',
    "Seconds any statement of provision or deprovision waits for a lock (another provisioning run, or a tenant's " +
      'open transaction on the schema being dropped) before that tenant fails, naming the holder.',
    { group: 'provision', example: '30' },
  ),
  PROVISION_STATEMENT_TIMEOUT: withDefault(
    integer(1, 86_400, ' (seconds)'),
    '120',
    'Seconds any one statement of provision or deprovision may run (DROP SCHEMA of a large tenant may need more).',
    {
      group: 'provision',
      example: '120',
    },
  ),
});

export type ProvisionEnv = v.InferOutput<typeof provisionSchema>;

export function loadProvisionConfig(raw: NodeJS.ProcessEnv): DeployerConfig {
  const names = Object.keys(provisionSchema.entries) as Array<keyof typeof provisionSchema.entries>;
  const secrets = names.filter((name) => (v.getMetadata(provisionSchema.entries[name]) as FieldDoc).secret);
  const { input, problems } = readVariables(names, secrets, raw);
  registerUrlPassword(input.PROVISION_DATABASE_URL);
  const result = v.safeParse(provisionSchema, input);
  problems.push(...issueProblems(result.issues));
  if ((input.PROVISION_STORAGE_ACCESS_KEY === undefined) !== (input.PROVISION_STORAGE_SECRET_KEY === undefined)) {
    problems.push(
      'PROVISION_STORAGE_ACCESS_KEY: set both PROVISION_STORAGE_ACCESS_KEY ' +
        'and PROVISION_STORAGE_SECRET_KEY, or neither',
    );
  }
  const config = result.success ? deployerConfig(result.output) : undefined;
  if (config) problems.push(...tlsConfigProblems(config.database));
  if (problems.length > 0 || !config) {
    throw new ConfigError(
      `invalid configuration: ${problems.length} problem(s)`,
      problems,
      'correct the variables listed above (see docs/provisioning.md)',
    );
  }
  return config;
}

function deployerConfig(env: ProvisionEnv): DeployerConfig {
  const database = urlDatabaseTarget(
    env.PROVISION_DATABASE_URL,
    {
      connectTimeoutSec: env.PROVISION_CONNECT_TIMEOUT,
      lockTimeoutSec: env.PROVISION_LOCK_TIMEOUT,
      statementTimeoutSec: env.PROVISION_STATEMENT_TIMEOUT,
    },
    DEPLOYER_DATABASE_VARIABLES,
  );
  const accessKeyId = env.PROVISION_STORAGE_ACCESS_KEY;
  const secretAccessKey = env.PROVISION_STORAGE_SECRET_KEY;
  const storage: DeployerStorage | undefined =
    accessKeyId && secretAccessKey
      ? {
          credentials: { accessKeyId, secretAccessKey },
          // The deployment machine's requests have no timeout variable: 10 s each.
          timeoutSec: 10,
          vars: DEPLOYER_STORAGE_VARIABLES,
          endpoint: env.PROVISION_STORAGE_ENDPOINT ?? null,
          region: env.PROVISION_STORAGE_REGION,
          forcePathStyle: env.PROVISION_STORAGE_FORCE_PATH_STYLE,
        }
      : undefined;
  return {
    database,
    storage,
    sharedBucket: env.PROVISION_STORAGE_BUCKET,
    connectionLimit: env.PROVISION_CONNECTION_LIMIT,
    storageKeys: {
      mode: env.PROVISION_STORAGE_KEYS,
      command: env.PROVISION_STORAGE_KEY_COMMAND,
      commandTimeoutSec: env.PROVISION_STORAGE_KEY_COMMAND_TIMEOUT,
      iamEndpoint: env.PROVISION_STORAGE_IAM_ENDPOINT,
      settleSec: env.PROVISION_STORAGE_KEY_SETTLE,
    },
  };
}
