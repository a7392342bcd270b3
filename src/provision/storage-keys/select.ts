/**
 * Which provider issues the per-tenant storage keys of a run (issue 14), from the deployer's
 * configuration: PROVISION_STORAGE_KEY_COMMAND when set; else IAM (AWS's when
 * PROVISION_STORAGE_ENDPOINT is unset, or the IAM-compatible PROVISION_STORAGE_IAM_ENDPOINT). Any
 * other storage has no way to issue keys here: refused (exit 2) before anything is created.
 */
import { type DeployerConfig, type DeployerStorage, pathStyle } from '../../config/targets.js';
import { ConfigError, StorageError } from '../../errors.js';
import { commandProvider, parseCommand } from './command.js';
import { iamProvider } from './iam.js';
import { type ProveTarget, proveKey } from './prove.js';
import type { KeyProvider } from './provider.js';
import type { KeyAction, TenantKeys } from './tenant-key.js';

/** --storage-keys: the deployer's keys for every instance, or an identity per tenant. */
export type StorageKeysMode = 'shared' | 'per-tenant';

export type OpenProvider = KeyProvider & { close(): void };

/**
 * What the command's environment is taken from (commandEnv keeps only its COMMAND_ENV names): the
 * process's, with the deployer's storage account as resolved (a _FILE read), never as written.
 */
function commandSource(
  storage: DeployerStorage,
  sharedBucket: string | undefined,
  env: NodeJS.ProcessEnv,
): Record<string, string | undefined> {
  return {
    ...env,
    PROVISION_STORAGE_ENDPOINT: storage.endpoint ?? undefined,
    PROVISION_STORAGE_REGION: storage.region,
    PROVISION_STORAGE_BUCKET: sharedBucket,
    PROVISION_STORAGE_FORCE_PATH_STYLE:
      storage.forcePathStyle === undefined ? undefined : String(storage.forcePathStyle),
    PROVISION_STORAGE_ACCESS_KEY: storage.credentials.accessKeyId,
    PROVISION_STORAGE_SECRET_KEY: storage.credentials.secretAccessKey,
  };
}

/** The run's provider, or undefined with shared keys. Throws ConfigError when per-tenant keys cannot be issued. */
export function openKeyProvider(
  config: DeployerConfig,
  mode: StorageKeysMode,
  env: NodeJS.ProcessEnv,
): OpenProvider | undefined {
  if (mode === 'shared') return undefined;
  const storage = config.storage;
  if (!storage) {
    throw new ConfigError(
      'per-tenant storage keys (--storage-keys per-tenant or PROVISION_STORAGE_KEYS): the deployer has no storage ' +
        'account',
      [],
      'set PROVISION_STORAGE_ACCESS_KEY and PROVISION_STORAGE_SECRET_KEY (the account that creates the tenants ' +
        'storage and their identities)',
    );
  }
  const { command, commandTimeoutSec, iamEndpoint } = config.storageKeys;
  if (command !== undefined) {
    try {
      parseCommand(command);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      throw new ConfigError(`PROVISION_STORAGE_KEY_COMMAND: ${error.message}`, [], error.fix);
    }
    const provider = commandProvider(command, {
      timeoutSec: commandTimeoutSec,
      env: commandSource(storage, config.sharedBucket, env),
    });
    return Object.assign(provider, { close() {} });
  }
  if (iamEndpoint !== undefined || storage.endpoint === null) return iamProvider({ ...storage, iamEndpoint });
  throw new ConfigError(
    `per-tenant storage keys: PROVISION_STORAGE_ENDPOINT (${storage.endpoint}) is not AWS, and nothing says how to ` +
      'issue keys there',
    [],
    'set PROVISION_STORAGE_KEY_COMMAND to your provider CLI wrapper (examples for MinIO and Scaleway in ' +
      'docs/provisioning.md), or PROVISION_STORAGE_IAM_ENDPOINT for an IAM-compatible service',
  );
}

/** The run's per-tenant keys: its provider, and the proof of every key against the deployer's storage. */
export function tenantKeys(
  config: DeployerConfig,
  mode: StorageKeysMode,
  action: KeyAction,
  env: NodeJS.ProcessEnv,
): (TenantKeys & { close(): void }) | undefined {
  const provider = openKeyProvider(config, mode, env);
  const storage = config.storage;
  if (!provider || !storage) return undefined;
  const target: ProveTarget = {
    endpoint: storage.endpoint,
    region: storage.region,
    forcePathStyle: pathStyle(storage.forcePathStyle, storage.endpoint),
    // Bucket mode: the shared bucket is the neighbour a tenant's key must not reach.
    ...(config.sharedBucket && { neighbourBucket: config.sharedBucket }),
  };
  return {
    provider,
    action,
    prove: (key, scope, fresh, signal) =>
      proveKey(key, scope, target, signal, {
        timeoutSec: storage.timeoutSec,
        // A key the .env already holds works now, or does not.
        settleMs: fresh ? config.storageKeys.settleSec * 1000 : 0,
        label: fresh ? 'new key' : 'key of the .env',
      }),
    close: () => provider.close(),
  };
}
