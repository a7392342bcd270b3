/**
 * Per-tenant storage keys (issue 14): the interface between provision and whatever issues the keys.
 * A provider manages one storage identity per tenant (an IAM user, a MinIO service account, a
 * Scaleway application...) whose rights cover only that tenant's folder of the shared bucket, or only
 * its own bucket, and that identity's access keys. Adding a provider is one file implementing this.
 *
 * Every method is idempotent where the operation allows it (ensuring an identity that exists changes
 * nothing but its policy, deleting what is gone succeeds) and fails with a StorageError (exit 6)
 * naming the tenant and the operation, never a secret.
 */
import type { S3Credentials } from '../../config/targets.js';

/** Where a tenant's storage is, and what its identity may reach: exactly that. */
export interface KeyScope {
  /** The tenant's identifier (its schema and role name, e.g. tenant_acme): the identity is named from it. */
  tenant: string;
  mode: 'prefix' | 'bucket';
  bucket: string;
  /** 'tenant_acme/' in prefix mode, '' in bucket mode. */
  prefix: string;
}

/** An access key as created: its secret exists only here, on its way into the tenant's .env. */
export interface IssuedKey extends S3Credentials {
  /** When the provider created it, if it says (ISO 8601). */
  createdAt?: string;
}

/** What a provider reports of an identity's keys: their ids, never their secrets. */
export interface KeyInfo {
  accessKeyId: string;
  active: boolean;
  createdAt?: string;
}

export interface KeyProvider {
  /** For messages: "AWS IAM", "PROVISION_STORAGE_KEY_COMMAND (/usr/local/bin/minio-keys)". */
  readonly name: string;
  /**
   * The tenant's identity exists with exactly the rights of `scope` (its policy rewritten when it
   * differs). `created`: it did not exist before.
   */
  ensureIdentity(scope: KeyScope, signal: AbortSignal): Promise<{ created: boolean }>;
  /** The identity's keys (ids only). */
  listKeys(scope: KeyScope, signal: AbortSignal): Promise<KeyInfo[]>;
  /** A new key of the identity (AWS allows two per user: rotation fits that). */
  createKey(scope: KeyScope, signal: AbortSignal): Promise<IssuedKey>;
  /** Deletes one key of the identity; a key already gone is not an error. */
  deleteKey(scope: KeyScope, accessKeyId: string, signal: AbortSignal): Promise<void>;
  /** Deletes the identity with its keys and policies; an identity already gone is not an error. */
  deleteIdentity(scope: KeyScope, signal: AbortSignal): Promise<void>;
}
