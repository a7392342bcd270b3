/**
 * One tenant of a provision run: refused before anything is created if its name, role, .env or
 * storage belong to someone else; then its role, schema and grants (idempotent, retried on
 * concurrent catalog updates), its storage, and its .env, whose login is proven before the tenant
 * is reported ready. A failure is this tenant's report, never the run's end.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DeployerConfig } from '../config/targets.js';
import type { Connection } from '../db/connect.js';
import { BootstrapError, SchemaError } from '../errors.js';
import { type DeployerS3, locationSession, type StorageMode, storageLocation } from './deployer.js';
import type { StorageKeysMode } from './storage-keys/select.js';
import type { KeyAction } from './storage-keys/tenant-key.js';
import type { RunInput } from './deployer-session.js';
import { writeEnvFile } from './env-file.js';
import { lockTimeoutAs, tenantFailure } from './failures.js';
import { envStorageKey, instanceEnv, renderInstanceEnv, withStorageKey } from './instance-env.js';
import type { KeyScope } from './storage-keys/provider.js';
import { type KeyOutcome, settleTenantKey, type TenantKeys } from './storage-keys/tenant-key.js';
import { withRetries } from './retry.js';
import { assertMayUse, inspectLocation } from './storage-owner.js';
import { provisionStorage } from './storage-provision.js';
import { DEPLOYER_SCHEMA, provisionTenant, roleProblem, type TenantState, tenantState } from './tenant-sql.js';
import type { TenantSpec } from './tenants.js';
import { loginProblem } from './verify-login.js';

export interface TenantOptions {
  outDir?: string;
  json: boolean;
  force: boolean;
  rotatePassword: boolean;
  storageMode: StorageMode;
  /** --storage-keys, or PROVISION_STORAGE_KEYS when not given. */
  storageKeys: StorageKeysMode | undefined;
  /** --rotate-storage-key, --revoke-old-storage-keys, or neither. */
  keyAction: KeyAction;
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

/** What every tenant of a run shares: the deployer's session and storage, the options. */
export interface TenantRun {
  db: Connection;
  /** The deployer's S3 session, when it has storage keys. */
  storage: DeployerS3 | undefined;
  config: DeployerConfig;
  opts: TenantOptions;
  ctx: RunInput;
  /** Per-tenant storage keys: the run's provider and proof. */
  keys: TenantKeys | undefined;
}

export async function provisionOne(run: TenantRun, spec: TenantSpec): Promise<TenantReport> {
  const base = { name: spec.name, schema: spec.schema, role: spec.role };
  const fail = (e: BootstrapError, prefix = ''): TenantReport => ({
    ...base,
    status: 'failed',
    message: prefix + e.message,
    ...(e.fix && { fix: e.fix }),
    exit_code: e.exitCode,
  });
  const { db, storage, config, opts } = run;
  const { database } = config.database.url;
  const envFile = opts.outDir ? join(opts.outDir, `${spec.name}.env`) : undefined;
  try {
    // Read-only first: whatever is refused below is refused before anything is created.
    const before = await tenantState(db.sql, spec);
    refuseForeign(before, spec, database, envFile, opts);
    const location = storage && storageLocation(storage.layout, spec);
    const found = storage && location ? await inspectLocation(locationSession(storage, location), location) : undefined;
    if (found && location) assertMayUse(found, location, before.tenantId, before.schemaExists && !before.tenantId);
    const tenantId = before.tenantId ?? randomUUID();

    const outcome = await withRetries(() =>
      provisionTenant(db.sql, spec, {
        database,
        rotatePassword: opts.rotatePassword,
        connectionLimit: config.connectionLimit,
        tenantId,
      }),
    ).catch(
      lockTimeoutAs(
        db.sql,
        config.database,
        [DEPLOYER_SCHEMA, spec.schema],
        `provisioning tenant ${spec.name} (nothing was changed for it)`,
      ),
    );
    let status: TenantReport['status'] = outcome.created ? 'created' : outcome.password ? 'rotated' : 'unchanged';
    let storageNote = '';
    if (storage && location && found) {
      try {
        const owner = { tenant_id: tenantId, schema: spec.schema, database };
        storageNote = `; ${await provisionStorage(storage, location, found, owner, spec)}`;
      } catch (error) {
        if (!(error instanceof BootstrapError)) throw error;
        return fail(error, 'PostgreSQL ready, storage failed: ');
      }
      if (status === 'unchanged' && storageNote.includes('created')) status = 'created';
    }

    const oldEnv = envFile && before.roleExists && existsSync(envFile) ? readFileSync(envFile, 'utf8') : undefined;
    const held = oldEnv === undefined ? undefined : envStorageKey(oldEnv);
    const login = { deployer: config.database, log: run.ctx.log, signal: run.ctx.signal };
    if (!outcome.password && envFile) {
      // The role existed and kept its password: an existing .env stays the truth, once proven (before
      // a key is made for it, so that no key is made for a .env that cannot be kept).
      const problem = await loginProblem(oldEnv ?? readFileSync(envFile, 'utf8'), spec, login);
      if (problem)
        throw new SchemaError(
          `${envFile} does not boot the tenant: ${problem}`,
          `run again with --rotate-password to set a new password and rewrite ${envFile}`,
        );
    }
    // Per-tenant storage keys: settled (every key proven) before any .env is written.
    const scope: KeyScope | undefined =
      run.keys && location && !spec.s3
        ? { tenant: spec.schema, mode: location.mode, bucket: location.bucket, prefix: location.prefix }
        : undefined;
    let keyed: KeyOutcome | undefined;
    if (run.keys && scope) {
      const deliver = outcome.password !== undefined || envFile !== undefined;
      try {
        keyed = await settleTenantKey(run.keys, scope, held, deliver, run.ctx.signal);
      } catch (error) {
        if (!(error instanceof BootstrapError)) throw error;
        return {
          ...fail(error, 'PostgreSQL and storage ready, storage key failed: '),
          ...keyFailureFix(error, outcome),
        };
      }
      storageNote += `; ${keyed.note}`;
    } else if (run.keys && spec.s3) {
      storageNote += '; its storage keys come from the tenants file (no identity made)';
    }

    if (!outcome.password) {
      if (!envFile) return { ...base, status, message: `role and schema in place${storageNote}` };
      if (keyed?.changed && keyed.key && storage) {
        // Only its storage variables change; the password and everything else are kept.
        const rewritten = withStorageKey(oldEnv ?? '', storage.target, storage.layout, spec, keyed.key);
        await writeOrForgetKey(run, scope, keyed, () => writeEnvFile(envFile, rewritten, true));
        const after = await loginProblem(readFileSync(envFile, 'utf8'), spec, login);
        if (after) throw new SchemaError(`${envFile} as rewritten does not boot the tenant: ${after}`, 'report it');
        return {
          ...base,
          status: status === 'unchanged' ? 'rotated' : status,
          message:
            `role and schema in place${storageNote}; ${envFile} rewritten with its new storage key, ` +
            'its login verified',
          env_file: envFile,
        };
      }
      return {
        ...base,
        status,
        message: `role and schema in place${storageNote}; ${envFile} kept, its login verified`,
        env_file: envFile,
      };
    }

    const values = instanceEnv(config, spec, outcome.password, run.ctx.env, storage?.layout, keyed?.key);
    const content = renderInstanceEnv(spec, values);
    let message = (outcome.created ? 'role, schema and grants created' : 'password rotated') + storageNote;
    if (storage && !spec.s3 && !keyed)
      message +=
        "; the instance gets the shared S3 keys, which reach every tenant's files (give each its own: " +
        '--storage-keys per-tenant)';
    if (envFile) {
      // Overwriting is safe here: a file of another role was refused above unless --force.
      await writeOrForgetKey(run, scope, keyed, () => writeEnvFile(envFile, content, true));
      message += `; ${envFile} written`;
    }
    // The file as written (or the JSON output's environment) must boot the tenant.
    const problem = await loginProblem(envFile ? readFileSync(envFile, 'utf8') : content, spec, login);
    if (problem)
      throw new SchemaError(
        `the new credentials do not boot the tenant: ${problem}`,
        "check the deployer's URL (host, port, sslmode: the tenants' " +
          'URLs are derived from it) and pg_hba.conf for the tenant roles',
      );
    message += ', its login verified';
    if (!spec.admin.email)
      message += '; no super admin email given: fill AUTO_SUPERADMIN_EMAIL, _FIRSTNAME, _LASTNAME in the .env';
    return { ...base, status, message, ...(envFile && { env_file: envFile }), ...(opts.json && { env: values }) };
  } catch (error) {
    return fail(tenantFailure(spec, error));
  }
}

/** A key failure's fix; a new password exists only in memory then: it says how to get one into a .env. */
function keyFailureFix(error: BootstrapError, outcome: { created: boolean; password?: string }): { fix?: string } {
  if (!outcome.password) return error.fix ? { fix: error.fix } : {};
  return {
    fix:
      `${error.fix ?? ''}; then run provision again with --rotate-password (its ` +
      `${outcome.created ? 'role was created' : 'password was changed'}, its .env not written)`,
  };
}

/**
 * Writes the .env; if that fails after a new key was made for it, the key is deleted (best effort):
 * a key no .env holds would only linger, reaching the tenant's storage.
 */
async function writeOrForgetKey(
  run: TenantRun,
  scope: KeyScope | undefined,
  keyed: KeyOutcome | undefined,
  write: () => unknown,
): Promise<void> {
  try {
    write();
  } catch (error) {
    if (run.keys && scope && keyed?.changed && keyed.key)
      await run.keys.provider.deleteKey(scope, keyed.key.accessKeyId, run.ctx.signal).catch(() => {});
    throw error;
  }
}

/** A role that is not a tenant's, or a .env and a role that do not belong together: nothing is created. */
function refuseForeign(
  before: TenantState,
  spec: TenantSpec,
  database: string,
  envFile: string | undefined,
  opts: TenantOptions,
): void {
  const refused = roleProblem(before, spec, database);
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
      `${envFile} exists but role ${spec.role} does not: that file holds another role's password (an earlier tenant ` +
        `of this name, or someone else's file), and the new password could be written nowhere; nothing was created`,
      `check that file; run again with --force to overwrite it, or remove it`,
    );
  }
}
