/**
 * `provision`: the deployment machine creates each tenant's PostgreSQL role and schema (least
 * privilege, idempotent, verified) and writes the instance's .env. Tenants run concurrently; one
 * tenant's failure does not stop the others; the report lists each result.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions } from '../cli-options.js';
import { loadProvisionConfig, type ProvisionEnv } from '../config/provision-schema.js';
import { connect, errorCode, type Connection } from '../db/connect.js';
import { isLockTimeout, lockTimeoutError } from '../db/locks.js';
import { BootstrapError, ConfigError, SchemaError } from '../errors.js';
import { folderMarker, type S3Session } from '../storage/client.js';
import { generatePassword } from '../provision/scram.js';
import { assertEnvValues, assertSafeOutDir, renderEnv, writeEnvFile } from '../provision/env-file.js';
import {
  assertMayUse,
  assertSharedBucket,
  inspectLocation,
  MARKER_NAME,
  writeMarker,
  type LocationState,
  type Ownership,
  type StorageLocation,
} from '../provision/storage-owner.js';
import {
  DEPLOYER_SCHEMA,
  hardenDatabase,
  lockProvisioning,
  prepareProvisionLock,
  provisionTenant,
  roleProblem,
  tenantState,
} from '../provision/tenant-sql.js';
import { loginProblem } from '../provision/verify-login.js';
import {
  deployerBounds,
  deployerConnectSettings,
  locationSession,
  openProvisionStorage,
  storageLocation,
  storageSettingsOf,
} from '../provision/deployer.js';
import { tenantSpecs, type TenantSpec } from '../provision/tenants.js';
import { redact } from '../redact.js';
import type { CommandInput } from './bootstrap.js';

export interface ProvisionOptions {
  tenants: string[];
  tenantsFile?: string;
  outDir?: string;
  json: boolean;
  force: boolean;
  rotatePassword: boolean;
  concurrency: number;
  storageMode: 'prefix' | 'bucket';
  opaqueNames: boolean;
}

export function provisionOptions(args: readonly string[]): ProvisionOptions {
  const o = parseOptions('provision', args, {
    flags: ['--force', '--rotate-password', '--opaque-names'],
    values: ['--tenants', '--out-dir', '--format', '--concurrency', '--storage-mode'],
    repeatable: ['--tenant'],
  });
  const format = o.values.get('--format') ?? 'text';
  if (format !== 'text' && format !== 'json')
    throw new ConfigError('--format must be text or json', [], 'use --format json for pipelines');
  const concurrency = Number(o.values.get('--concurrency') ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new ConfigError('--concurrency must be a whole number from 1 to 64', [], 'the default is 4');
  const storageMode = o.values.get('--storage-mode') ?? 'prefix';
  if (storageMode !== 'prefix' && storageMode !== 'bucket')
    throw new ConfigError(
      '--storage-mode must be prefix or bucket',
      [],
      'prefix: a folder per tenant in a shared bucket (the default); bucket: a bucket per tenant',
    );
  return {
    storageMode,
    opaqueNames: o.flags.has('--opaque-names'),
    tenants: o.lists.get('--tenant') ?? [],
    tenantsFile: o.values.get('--tenants'),
    outDir: o.values.get('--out-dir'),
    json: format === 'json',
    force: o.flags.has('--force'),
    rotatePassword: o.flags.has('--rotate-password'),
    concurrency,
  };
}

export interface TenantReport {
  name: string;
  schema: string;
  role: string;
  status: 'created' | 'unchanged' | 'rotated' | 'failed';
  message: string;
  fix?: string;
  exit_code?: number;
  env_file?: string;
  /** The instance's environment; carries the passwords (this is the output meant to). */
  env?: Record<string, string>;
}

/** Retried with a fresh look at the state: concurrent catalog updates from outside our lock. */
const RETRYABLE = new Set(['XX000', '23505', '40001', '40P01']);

export async function provision(input: CommandInput, opts: ProvisionOptions): Promise<number> {
  const specs = tenantSpecs(opts.tenants, opts.tenantsFile, {
    opaque: opts.opaqueNames,
    buckets: opts.storageMode === 'bucket',
  });
  const env = loadProvisionConfig(input.env);
  if (env.PROVISION_STORAGE_ACCESS_KEY && opts.storageMode === 'prefix' && !env.PROVISION_STORAGE_BUCKET) {
    throw new ConfigError(
      "PROVISION_STORAGE_BUCKET: is required with --storage-mode prefix (the shared bucket of the tenants' folders)",
      [],
      'set PROVISION_STORAGE_BUCKET, or use --storage-mode bucket',
    );
  }
  // Copied into every tenant's .env: refused now, before anything is created, if a .env reader would change them.
  const copied = {
    ...Object.fromEntries(EMAIL_KEYS.map((key) => [key, input.env[key] || undefined])),
    PROVISION_STORAGE_ENDPOINT: env.PROVISION_STORAGE_ENDPOINT,
    PROVISION_STORAGE_ACCESS_KEY: env.PROVISION_STORAGE_ACCESS_KEY,
    PROVISION_STORAGE_SECRET_KEY: env.PROVISION_STORAGE_SECRET_KEY,
  };
  assertEnvValues(copied, "the deployer's environment");
  if (opts.outDir)
    assertSafeOutDir(
      opts.outDir,
      specs.map((spec) => `${spec.name}.env`),
    );
  const shared = env.PROVISION_STORAGE_BUCKET;
  const clash = opts.storageMode === 'bucket' ? specs.find((spec) => spec.bucket === shared) : undefined;
  if (clash)
    throw new ConfigError(
      `tenant ${JSON.stringify(clash.name)}: its bucket ${clash.bucket} is PROVISION_STORAGE_BUCKET, the shared bucket of the tenants' folders`,
      [],
      'choose another tenant name, or give the shared bucket a name that does not start with superfasttt-',
    );
  const storage = env.PROVISION_STORAGE_ACCESS_KEY ? await openProvisionStorage(env, input.signal) : undefined;
  if (storage && opts.storageMode === 'prefix' && shared)
    await assertSharedBucket(storage, shared, 'PROVISION_STORAGE_BUCKET');

  const db = await connect(deployerConnectSettings(env), input.log, input.signal, {
    max: Math.min(opts.concurrency, 8),
    bounds: deployerBounds(env),
  });
  const reports: TenantReport[] = [];
  try {
    await checkDeployer(db, env);
    await prepareProvisionLock(db.sql);
    if (Number.parseInt(db.serverVersion, 10) <= 15) {
      input.log.warn(
        `PostgreSQL ${db.serverVersion}: before 16, CREATEROLE lets the deployer take almost any right (even run programs on the server): keep its credentials like a superuser's`,
        { step: 'provision' },
      );
    }
    // Under the lock: two first runs at once would otherwise collide on the database's ACL (XX000).
    const hardening = await withRetries(() =>
      db.sql.begin(async (tx) => {
        await lockProvisioning(tx);
        return hardenDatabase(tx, env.PROVISION_DATABASE_URL.database);
      }),
    ).catch(async (error: unknown) => {
      if (!isLockTimeout(error)) throw error;
      throw await lockTimeoutError(
        db.sql,
        [DEPLOYER_SCHEMA],
        'provision (before any tenant was changed)',
        'PROVISION_LOCK_TIMEOUT',
        env.PROVISION_LOCK_TIMEOUT,
        error,
      );
    });
    for (const statement of hardening) input.log.info(`${statement.sql}: ${statement.why}`, { step: 'provision' });

    let next = 0;
    const worker = async () => {
      while (next < specs.length) {
        const spec = specs[next++]!;
        const report = await provisionOne(db, storage, env, spec, opts, input);
        reports.push(report);
        const line = `${spec.name}: ${report.status}, ${report.message}`;
        if (report.status === 'failed')
          input.log.error(line, { step: 'provision', ...(report.fix && { fix: report.fix }) });
        else input.log.info(line, { step: 'provision' });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, specs.length) }, worker));
  } finally {
    await db.sql.end({ timeout: 5 });
  }

  reports.sort((a, b) => specs.findIndex((s) => s.name === a.name) - specs.findIndex((s) => s.name === b.name));
  const failed = reports.filter((r) => r.status === 'failed');
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ok: failed.length === 0, tenants: reports }, null, 2) + '\n');
  } else {
    const counts = ['created', 'unchanged', 'rotated', 'failed'].map(
      (s) => `${reports.filter((r) => r.status === s).length} ${s}`,
    );
    process.stdout.write(redact(`provision: ${reports.length} tenant(s): ${counts.join(', ')}`) + '\n');
  }
  return failed[0]?.exit_code ?? 0;
}

/** The deployer's rights, checked once, with what to grant when one is missing. */
async function checkDeployer(db: Connection, env: ProvisionEnv): Promise<void> {
  const { database } = env.PROVISION_DATABASE_URL;
  const [me] = await db.sql<{ user: string; createrole: boolean; superuser: boolean; create: boolean }[]>`
    select current_user as user, rolcreaterole as createrole, rolsuper as superuser,
           has_database_privilege(current_database(), 'CREATE') as create
    from pg_roles where rolname = current_user`;
  const missing = [
    !me?.createrole && !me?.superuser && 'CREATEROLE',
    !me?.create && `CREATE on database ${database}`,
  ].filter(Boolean);
  if (missing.length > 0) {
    throw new SchemaError(
      `the deployer role ${me?.user} lacks ${missing.join(' and ')}`,
      `as a superuser, run: ${[!me?.createrole && `ALTER ROLE "${me?.user}" CREATEROLE`, !me?.create && `GRANT CREATE ON DATABASE "${database}" TO "${me?.user}"`].filter(Boolean).join('; ')}`,
    );
  }
}

async function provisionOne(
  db: Connection,
  storage: S3Session | undefined,
  env: ProvisionEnv,
  spec: TenantSpec,
  opts: ProvisionOptions,
  input: CommandInput,
): Promise<TenantReport> {
  const base = { name: spec.name, schema: spec.schema, role: spec.role };
  const envFile = opts.outDir ? join(opts.outDir, `${spec.name}.env`) : undefined;
  const fail = (e: BootstrapError, prefix = ''): TenantReport => ({
    ...base,
    status: 'failed',
    message: prefix + e.message,
    ...(e.fix && { fix: e.fix }),
    exit_code: e.exitCode,
  });
  try {
    // Read-only first: whatever is refused below is refused before anything is created.
    const before = await tenantState(db.sql, spec);
    const refused = roleProblem(before, spec, env.PROVISION_DATABASE_URL.database);
    if (refused)
      throw new SchemaError(
        `${refused}; nothing was changed`,
        'choose another tenant name (or --opaque-names); remove that role by hand only after checking whose it is',
      );
    if (before.roleExists && !opts.rotatePassword && envFile && !existsSync(envFile)) {
      throw new SchemaError(
        `role ${spec.role} exists but ${envFile} does not: its password is unknown here; nothing was changed`,
        'run again with --rotate-password to set a new password and write the .env',
      );
    }
    if (!before.roleExists && envFile && existsSync(envFile) && !opts.force) {
      throw new SchemaError(
        `${envFile} exists but role ${spec.role} does not: that file holds another role's password (an earlier tenant of this name, or someone else's file), and the new password could be written nowhere; nothing was created`,
        `check that file; run again with --force to overwrite it, or remove it`,
      );
    }
    const location = storage && storageLocation(env, spec, opts.storageMode);
    const found =
      storage && location ? await inspectLocation(locationSession(storage, env, location), location) : undefined;
    if (found && location) assertMayUse(found, location, before.tenantId, before.schemaExists && !before.tenantId);
    const tenantId = before.tenantId ?? randomUUID();

    const outcome = await withRetries(() =>
      provisionTenant(db.sql, spec, {
        database: env.PROVISION_DATABASE_URL.database,
        rotatePassword: opts.rotatePassword,
        connectionLimit: env.PROVISION_CONNECTION_LIMIT,
        tenantId,
      }),
    ).catch(async (error: unknown) => {
      if (!isLockTimeout(error)) throw error;
      throw await lockTimeoutError(
        db.sql,
        [DEPLOYER_SCHEMA, spec.schema],
        `provisioning tenant ${spec.name} (nothing was changed for it)`,
        'PROVISION_LOCK_TIMEOUT',
        env.PROVISION_LOCK_TIMEOUT,
        error,
      );
    });
    let status: TenantReport['status'] = outcome.created ? 'created' : outcome.password ? 'rotated' : 'unchanged';
    let storageNote = '';
    if (storage && location && found) {
      try {
        storageNote = `; ${await provisionStorage(storage, env, location, found, { tenant_id: tenantId, schema: spec.schema, database: env.PROVISION_DATABASE_URL.database }, spec)}`;
      } catch (error) {
        if (!(error instanceof BootstrapError)) throw error;
        return fail(error, 'PostgreSQL ready, storage failed: ');
      }
      if (status === 'unchanged' && storageNote.includes('created')) status = 'created';
    }

    const login = {
      connectTimeoutSec: env.PROVISION_CONNECT_TIMEOUT,
      bounds: deployerBounds(env),
      log: input.log,
      signal: input.signal,
    };
    if (!outcome.password) {
      // The role existed and kept its password: an existing .env stays the truth, once proven.
      if (!envFile) return { ...base, status, message: `role and schema in place${storageNote}` };
      const problem = await loginProblem(readFileSync(envFile, 'utf8'), spec, login);
      if (problem)
        throw new SchemaError(
          `${envFile} does not boot the tenant: ${problem}`,
          `run again with --rotate-password to set a new password and rewrite ${envFile}`,
        );
      return {
        ...base,
        status,
        message: `role and schema in place${storageNote}; ${envFile} kept, its login verified`,
        env_file: envFile,
      };
    }

    const instanceEnv = tenantEnv(env, spec, outcome.password, input.env, storage && opts.storageMode);
    const content = renderEnv(instanceEnv, [
      `superfasttt instance ${spec.name}: generated by superfasttt-bootstrap provision. Secret: mode 0600, never commit it.`,
    ]);
    let message = (outcome.created ? 'role, schema and grants created' : 'password rotated') + storageNote;
    if (storage && !spec.s3)
      message +=
        '; the instance gets the shared S3 keys (give per-tenant keys in the tenants file: s3_access_key, s3_secret_key)';
    if (envFile) {
      // Overwriting is safe here: a file of another role was refused above unless --force.
      writeEnvFile(envFile, content, true);
      message += `; ${envFile} written`;
    }
    // The file as written (or the JSON output's environment) must boot the tenant.
    const problem = await loginProblem(envFile ? readFileSync(envFile, 'utf8') : content, spec, login);
    if (problem)
      throw new SchemaError(
        `the new credentials do not boot the tenant: ${problem}`,
        "check the deployer's URL (host, port, sslmode: the tenants' URLs are derived from it) and pg_hba.conf for the tenant roles",
      );
    message += ', its login verified';
    if (!spec.admin.email)
      message += '; no super admin email given: fill AUTO_SUPERADMIN_EMAIL, _FIRSTNAME, _LASTNAME in the .env';
    return { ...base, status, message, ...(envFile && { env_file: envFile }), ...(opts.json && { env: instanceEnv }) };
  } catch (error) {
    const e =
      error instanceof BootstrapError
        ? error
        : new SchemaError(
            `tenant ${spec.name}: ${(error as Error).message} (${errorCode(error) || 'error'})`,
            'check the deployer\'s rights (README, "Provisioning")',
            { cause: error },
          );
    return fail(e);
  }
}

/** Concurrent catalog updates from outside our lock: tried again with a fresh look at the state. */
async function withRetries<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!RETRYABLE.has(errorCode(error)) || attempt >= 3) throw error;
    }
  }
}

/** Everything the instance needs to bootstrap with SKIP_SETUP=true. */
function tenantEnv(
  env: ProvisionEnv,
  spec: TenantSpec,
  password: string,
  deployerEnv: NodeJS.ProcessEnv,
  storageMode: 'prefix' | 'bucket' | undefined,
): Record<string, string> {
  const { host, port, database, sslmode, sslrootcert } = env.PROVISION_DATABASE_URL;
  const url = new URL(`postgres://${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(database)}`);
  url.username = spec.role;
  url.password = password;
  if (sslmode) url.searchParams.set('sslmode', sslmode);
  if (sslrootcert) url.searchParams.set('sslrootcert', sslrootcert);
  const out: Record<string, string | undefined> = {
    SKIP_SETUP: 'true',
    DATABASE_URL: url.toString(),
    DATABASE_SCHEMA: spec.schema,
    AUTO_SUPERADMIN_EMAIL: spec.admin.email ?? '',
    AUTO_SUPERADMIN_FIRSTNAME: spec.admin.firstName ?? '',
    AUTO_SUPERADMIN_LASTNAME: spec.admin.lastName ?? '',
    AUTO_SUPERADMIN_PHONE: spec.admin.phone,
    AUTO_SUPERADMIN_PASSWORD: generatePassword(18),
  };
  if (storageMode) {
    const endpoint = env.PROVISION_STORAGE_ENDPOINT;
    Object.assign(out, {
      STORAGE_PROVIDER: 's3',
      STORAGE_ENDPOINT: endpoint,
      STORAGE_SECURE: endpoint?.startsWith('http:') ? 'false' : undefined,
      STORAGE_REGION: env.PROVISION_STORAGE_REGION,
      STORAGE_BUCKET: storageMode === 'bucket' ? spec.bucket : env.PROVISION_STORAGE_BUCKET,
      STORAGE_PREFIX: storageMode === 'prefix' ? `${spec.schema}/` : undefined,
      STORAGE_FORCE_PATH_STYLE:
        env.PROVISION_STORAGE_FORCE_PATH_STYLE === undefined
          ? undefined
          : String(env.PROVISION_STORAGE_FORCE_PATH_STYLE),
      STORAGE_ACCESS_KEY: spec.s3?.accessKey ?? env.PROVISION_STORAGE_ACCESS_KEY,
      STORAGE_SECRET_KEY: spec.s3?.secretKey ?? env.PROVISION_STORAGE_SECRET_KEY,
    });
  }
  // The deployer's email settings, when it has them, are every instance's.
  for (const key of EMAIL_KEYS) if (deployerEnv[key]) out[key] = deployerEnv[key];
  return Object.fromEntries(Object.entries(out).filter((e): e is [string, string] => e[1] !== undefined));
}

const EMAIL_KEYS = [
  'EMAIL_PROVIDER',
  'EMAIL_FROM',
  'EMAIL_FROM_NAME',
  'SMTP_HOST',
  'SMTP_PORT',
  'SMTP_USERNAME',
  'SMTP_PASSWORD',
  'SMTP_SECURE',
  'SENDGRID_API_KEY',
  'SENDGRID_API_URL',
];

/** prefix: the tenant's folder marker in the shared bucket; bucket: the tenant's own bucket; then the proof. Idempotent. */
async function provisionStorage(
  shared: S3Session,
  env: ProvisionEnv,
  loc: StorageLocation,
  found: LocationState,
  owner: Ownership,
  spec: TenantSpec,
): Promise<string> {
  const session = locationSession(shared, env, loc);
  const { s3, send } = session;
  let done: string;
  if (loc.mode === 'prefix') {
    done = await folderMarker(storageSettingsOf(env, loc.bucket, loc.prefix), send, s3, true);
  } else if (found.exists) {
    done = `bucket ${loc.bucket} present`;
  } else {
    const location =
      env.PROVISION_STORAGE_REGION === 'us-east-1'
        ? {}
        : { CreateBucketConfiguration: { LocationConstraint: env.PROVISION_STORAGE_REGION as never } };
    await send('CreateBucket', new s3.CreateBucketCommand({ Bucket: loc.bucket, ...location }));
    done = `bucket ${loc.bucket} created (bucket names allow no _ nor uppercase: ${spec.name} -> ${loc.bucket})`;
  }
  if (!found.marker) await writeMarker(session, loc, owner);
  return found.marker ? done : `${done}, proof of ownership written (${loc.prefix}${MARKER_NAME})`;
}
