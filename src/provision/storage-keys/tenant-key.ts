/**
 * The storage key a tenant's .env must hold, decided per tenant (issue 14). The .env is the truth of
 * which key the instances use; the provider says which keys the identity has. Nothing is written
 * here: the caller writes `key` into the .env only when it changed, and every key it is given has
 * been proven (proveKey: it works on the tenant's storage, and nothing outside it).
 *
 * - ensure (every provision run): the identity exists with its policy. A .env key that is one of the
 *   identity's keys is proven and kept; any other (the shared keys of an earlier run, none yet) is
 *   replaced by a new key. So a fleet moves from shared to per-tenant keys by running provision. The
 *   identity's keys the .env does not hold are then deleted first: an earlier tenant of the same name
 *   (deprovisioned) or a run that never wrote its .env made them, and no instance of this .env has them.
 * - rotate: a new key, the old one left valid for the instances still running with it. Resumable:
 *   a tenant whose .env already holds the newest of two keys is rotated already (a second run after
 *   an interruption does not rotate it again: revoke the older key first to rotate again); a newer key
 *   the .env does not hold was never written (a run interrupted between creating and writing it): it
 *   is deleted, then a key is made. Without creation dates, which is newer cannot be told: refused.
 * - revoke: the .env's key, proven first, stays; every other key of the identity is deleted.
 */
import type { S3Credentials } from '../../config/targets.js';
import { StorageError } from '../../errors.js';
import type { KeyInfo, KeyProvider, KeyScope } from './provider.js';

export type KeyAction = 'ensure' | 'rotate' | 'revoke';

export interface TenantKeys {
  provider: KeyProvider;
  action: KeyAction;
  /** proveKey with the run's target; `fresh`: a key just made (it may take a while to work). */
  prove(key: S3Credentials, scope: KeyScope, fresh: boolean, signal: AbortSignal): Promise<string>;
}

export interface KeyOutcome {
  /** What the .env must hold: undefined when no key can be delivered (`deliver` false). */
  key: S3Credentials | undefined;
  /** The key is not the one the .env held: the .env must be (re)written. */
  changed: boolean;
  /** What was done, for the tenant's report: key ids, never a secret. */
  note: string;
}

const ids = (keys: readonly KeyInfo[]) => keys.map((k) => k.accessKeyId).join(', ');

/** `held`: the key of the tenant's existing .env, if any; `deliver`: a new key can be written somewhere. */
export async function settleTenantKey(
  keys: TenantKeys,
  scope: KeyScope,
  held: S3Credentials | undefined,
  deliver: boolean,
  signal: AbortSignal,
): Promise<KeyOutcome> {
  const { provider, action } = keys;
  const { created } = await provider.ensureIdentity(scope, signal);
  const identity = created
    ? `storage identity ${scope.tenant} created (${provider.name})`
    : `storage identity ${scope.tenant} in place`;
  const listed = created ? [] : await provider.listKeys(scope, signal);
  const heldInfo = held && listed.find((k) => k.accessKeyId === held.accessKeyId);
  const others = listed.filter((k) => k !== heldInfo);

  if (action === 'revoke') {
    const refused = (why: string, fix: string) =>
      new StorageError(`storage keys of ${scope.tenant}: ${why}; no key was revoked`, fix);
    if (!held)
      throw refused(
        'its .env holds no storage key, so which key its instances use is unknown',
        'run with --out-dir where its .env is',
      );
    if (!heldInfo)
      throw refused(
        `the key of its .env (${held.accessKeyId}) is not one of its identity's keys (${ids(listed) || 'none'})`,
        'run provision without --revoke-old-storage-keys first: it gives the tenant a key of its own',
      );
    try {
      await keys.prove(held, scope, false, signal);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      throw new StorageError(`${error.message}; revoking refused, no key was revoked`, error.fix, { cause: error });
    }
    for (const old of others) await provider.deleteKey(scope, old.accessKeyId, signal);
    const revoked = others.length > 0 ? `revoked ${ids(others)}` : 'no other key to revoke';
    return { key: held, changed: false, note: `${identity}; key ${held.accessKeyId} of the .env proven, ${revoked}` };
  }

  if (!deliver) {
    return {
      key: undefined,
      changed: false,
      note: `${identity} with ${listed.length} key(s); no .env here to write a new one into`,
    };
  }

  let replaced = '';
  if (held && heldInfo && action === 'ensure') {
    try {
      await keys.prove(held, scope, false, signal);
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      throw new StorageError(
        error.message,
        `run provision with --rotate-storage-key: a new key is made, proven and written (${error.fix ?? ''})`,
        { cause: error },
      );
    }
    return { key: held, changed: false, note: `${identity}; key ${held.accessKeyId} of the .env proven` };
  }
  if (heldInfo && action === 'rotate' && others.length > 0) {
    if (!others.every((k) => k.createdAt) || !heldInfo.createdAt) {
      throw new StorageError(
        `storage keys of ${scope.tenant}: not rotated: besides the .env's key ${heldInfo.accessKeyId} its identity ` +
          `holds ${ids(others)}, and the provider gives no creation dates to tell which is newer`,
        'restart its instances on the .env, run --revoke-old-storage-keys (it keeps the .env key), then rotate again',
      );
    }
    const newer = others.filter((k) => isNewer(k, heldInfo));
    if (newer.length === 0) {
      // Resumable: a tenant rotated by an earlier (interrupted) run is not rotated twice.
      return {
        key: held,
        changed: false,
        note:
          `${identity}; not rotated: rotated already (the .env holds its newest key ${heldInfo.accessKeyId}; ` +
          `${ids(others)} still valid): to rotate again, revoke that one first (--revoke-old-storage-keys)`,
      };
    }
    // Made by a run interrupted before its .env was written: no instance has it.
    for (const orphan of newer) await provider.deleteKey(scope, orphan.accessKeyId, signal);
    replaced = `; ${ids(newer)} (made by an interrupted rotation, never written) deleted`;
  }
  if (!heldInfo && listed.length > 0) {
    // The .env holds none of them: made for an earlier tenant of this name, or by a run that never wrote
    // its .env. No instance of this .env has them; left alone, they would keep reaching this storage.
    for (const stale of listed) await provider.deleteKey(scope, stale.accessKeyId, signal);
    replaced += `; deleted ${ids(listed)}, key(s) of the identity its .env does not hold`;
  }
  if (held && !heldInfo) replaced += `; it replaces the .env's key ${held.accessKeyId}, not one of the identity's`;
  if (heldInfo) replaced += `; ${heldInfo.accessKeyId} stays valid until --revoke-old-storage-keys`;

  const key = await provider.createKey(scope, signal);
  let proof: string;
  try {
    proof = await keys.prove(key, scope, true, signal);
  } catch (error) {
    // Never handed out: deleted, so it neither lingers nor takes one of the identity's two places.
    await provider.deleteKey(scope, key.accessKeyId, signal).catch(() => {});
    throw error;
  }
  return { key, changed: true, note: `${identity}; ${proof}${replaced}` };
}

/** `a` was created after `b` (both dated). */
function isNewer(a: KeyInfo, b: KeyInfo): boolean {
  return Date.parse(a.createdAt ?? '') > Date.parse(b.createdAt ?? '');
}
