// settleTenantKey's decisions, one per state of the identity and the .env. The provider here is an in-memory
// implementation of our own KeyProvider interface (the real ones are tested against the local IAM and real
// commands in test/storage-keys-*.test.ts and end to end in test/provision-storage-keys.test.ts); `prove`
// accepts exactly the keys the test says work.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../errors.js';
import type { IssuedKey, KeyInfo, KeyProvider, KeyScope } from './provider.js';
import { type KeyAction, settleTenantKey, type TenantKeys } from './tenant-key.js';

const scope: KeyScope = { tenant: 'tenant_acme', mode: 'prefix', bucket: 'central', prefix: 'tenant_acme/' };
const signal = new AbortController().signal;

class MemoryProvider implements KeyProvider {
  readonly name = 'memory';
  exists = false;
  keys: Array<IssuedKey & { createdAt: string }> = [];
  deleted: string[] = [];
  private clock = Date.parse('2026-01-01T00:00:00Z');
  private serial = 0;

  async ensureIdentity() {
    const created = !this.exists;
    this.exists = true;
    return { created };
  }
  async listKeys(): Promise<KeyInfo[]> {
    return this.keys.map((k) => ({ accessKeyId: k.accessKeyId, active: true, createdAt: k.createdAt }));
  }
  async createKey(): Promise<IssuedKey> {
    this.clock += 60_000;
    const key = {
      accessKeyId: `AKIA${++this.serial}`,
      secretAccessKey: `secret-${this.serial}`,
      createdAt: new Date(this.clock).toISOString(),
    };
    this.keys.push(key);
    return key;
  }
  async deleteKey(_scope: KeyScope, id: string) {
    this.deleted.push(id);
    this.keys = this.keys.filter((k) => k.accessKeyId !== id);
  }
  async deleteIdentity() {
    this.exists = false;
    this.keys = [];
  }
}

/** A provider with an identity holding `n` keys (oldest first), and the run's keys; `broken`: ids whose proof fails. */
async function setup(n: number, action: KeyAction, broken: string[] = []) {
  const provider = new MemoryProvider();
  if (n > 0) provider.exists = true;
  for (let i = 0; i < n; i++) await provider.createKey();
  const proven: string[] = [];
  const keys: TenantKeys = {
    provider,
    action,
    async prove(key) {
      proven.push(key.accessKeyId);
      if (broken.includes(key.accessKeyId) || !provider.keys.some((k) => k.accessKeyId === key.accessKeyId))
        throw new StorageError(`the key ${key.accessKeyId} does not work`, 'check it');
      return `key ${key.accessKeyId} proven`;
    },
  };
  return { provider, keys, proven, held: (i: number) => provider.keys[i] };
}

describe('settleTenantKey, ensure (every provision run)', () => {
  it('a new identity: its first key, proven, to be written', async () => {
    const { provider, keys, proven } = await setup(0, 'ensure');
    const out = await settleTenantKey(keys, scope, undefined, true, signal);
    assert.equal(out.changed, true);
    assert.equal(out.key?.accessKeyId, 'AKIA1');
    assert.deepEqual(proven, ['AKIA1']);
    assert.match(out.note, /storage identity tenant_acme created \(memory\); key AKIA1 proven/);
    assert.equal(provider.keys.length, 1);
  });

  it("the .env holds one of the identity's keys: proven and kept, nothing made", async () => {
    const { provider, keys, held } = await setup(1, 'ensure');
    const out = await settleTenantKey(keys, scope, held(0), true, signal);
    assert.deepEqual({ changed: out.changed, key: out.key?.accessKeyId }, { changed: false, key: 'AKIA1' });
    assert.equal(provider.keys.length, 1);
  });

  it("the .env holds a key that is not the identity's (the shared keys): a new key replaces it", async () => {
    const { keys } = await setup(0, 'ensure');
    const shared = { accessKeyId: 'SHAREDKEY', secretAccessKey: 'shared-secret' };
    const out = await settleTenantKey(keys, scope, shared, true, signal);
    assert.equal(out.changed, true);
    assert.match(out.note, /it replaces the \.env's key SHAREDKEY, not one of the identity's/);
  });

  it("the .env's key of the identity does not work: a failure, its fix --rotate-storage-key", async () => {
    const { provider, keys, held } = await setup(1, 'ensure', ['AKIA1']);
    await assert.rejects(settleTenantKey(keys, scope, held(0), true, signal), (e: StorageError) => {
      assert.match(e.fix ?? '', /--rotate-storage-key/);
      return true;
    });
    assert.equal(provider.keys.length, 1);
  });

  it('nowhere to write a key (no .env, JSON output not produced): the identity only, no key made', async () => {
    const { provider, keys } = await setup(1, 'ensure');
    const out = await settleTenantKey(keys, scope, undefined, false, signal);
    assert.equal(out.key, undefined);
    assert.match(out.note, /with 1 key\(s\); no \.env here/);
    assert.equal(provider.keys.length, 1);
  });

  it('keys of the identity its .env does not hold (an earlier tenant of this name) are deleted first', async () => {
    const { provider, keys } = await setup(2, 'ensure');
    const out = await settleTenantKey(keys, scope, undefined, true, signal);
    assert.deepEqual(provider.deleted, ['AKIA1', 'AKIA2']);
    assert.deepEqual(
      provider.keys.map((k) => k.accessKeyId),
      ['AKIA3'],
    );
    assert.equal(out.key?.accessKeyId, 'AKIA3');
    assert.match(out.note, /deleted AKIA1, AKIA2, key\(s\) of the identity its \.env does not hold/);
  });

  it('a new key that fails its proof is deleted, never returned', async () => {
    const { provider, keys } = await setup(0, 'ensure', ['AKIA1']);
    await assert.rejects(settleTenantKey(keys, scope, undefined, true, signal), /AKIA1 does not work/);
    assert.deepEqual(provider.deleted, ['AKIA1']);
    assert.equal(provider.keys.length, 0);
  });
});

describe('settleTenantKey, rotate', () => {
  it('a new key; the old one stays (running instances hold it)', async () => {
    const { provider, keys, held } = await setup(1, 'rotate');
    const out = await settleTenantKey(keys, scope, held(0), true, signal);
    assert.equal(out.key?.accessKeyId, 'AKIA2');
    assert.match(out.note, /AKIA1 stays valid until --revoke-old-storage-keys/);
    assert.deepEqual(
      provider.keys.map((k) => k.accessKeyId),
      ['AKIA1', 'AKIA2'],
    );
  });

  it('resumed: the .env holds the newer of two keys, nothing made', async () => {
    const { provider, keys, held } = await setup(2, 'rotate');
    const out = await settleTenantKey(keys, scope, held(1), true, signal);
    assert.equal(out.changed, false);
    assert.match(out.note, /rotated already/);
    assert.equal(provider.keys.length, 2);
  });

  it('a newer key the .env never received (an interrupted run) is deleted, then a key is made', async () => {
    const { provider, keys, held } = await setup(2, 'rotate');
    const out = await settleTenantKey(keys, scope, held(0), true, signal);
    assert.deepEqual(provider.deleted, ['AKIA2']);
    assert.equal(out.key?.accessKeyId, 'AKIA3');
    assert.match(out.note, /AKIA2 \(made by an interrupted rotation, never written\) deleted/);
    assert.deepEqual(
      provider.keys.map((k) => k.accessKeyId),
      ['AKIA1', 'AKIA3'],
    );
  });

  it('without dates, which key is newer cannot be told: refused, nothing deleted nor made', async () => {
    const { provider, keys, held } = await setup(2, 'rotate');
    for (const k of provider.keys) k.createdAt = '';
    await assert.rejects(settleTenantKey(keys, scope, held(0), true, signal), (e: Error) => {
      assert.ok(e instanceof StorageError);
      assert.match(e.message, /not rotated: .*no creation dates/);
      assert.match(e.fix ?? '', /--revoke-old-storage-keys/);
      return true;
    });
    assert.deepEqual(provider.deleted, []);
    assert.equal(provider.keys.length, 2);
  });
});

describe('settleTenantKey, revoke', () => {
  it("deletes every key but the .env's, once the .env's is proven", async () => {
    const { provider, keys, held, proven } = await setup(2, 'revoke');
    const out = await settleTenantKey(keys, scope, held(1), true, signal);
    assert.deepEqual(proven, ['AKIA2']);
    assert.deepEqual(provider.deleted, ['AKIA1']);
    assert.match(out.note, /key AKIA2 of the \.env proven, revoked AKIA1/);
    assert.equal(out.changed, false);
  });

  const refusals: Array<[string, (k: IssuedKey[]) => IssuedKey | undefined, string[], RegExp]> = [
    ['no .env key', () => undefined, [], /its \.env holds no storage key/],
    [
      "a .env key that is not the identity's",
      () => ({ accessKeyId: 'OTHER', secretAccessKey: 'x' }),
      [],
      /the key of its \.env \(OTHER\) is not one of its identity's keys \(AKIA1, AKIA2\)/,
    ],
    ['a .env key that does not work', (k) => k[1], ['AKIA2'], /AKIA2 does not work; revoking refused/],
  ];
  for (const [what, heldOf, broken, pattern] of refusals) {
    it(`refused, nothing deleted: ${what}`, async () => {
      const { provider, keys } = await setup(2, 'revoke', broken);
      await assert.rejects(settleTenantKey(keys, scope, heldOf(provider.keys), true, signal), (e: Error) => {
        assert.ok(e instanceof StorageError);
        assert.match(e.message, pattern);
        assert.match(e.message, /no key was revoked/);
        return true;
      });
      assert.deepEqual(provider.deleted, []);
      assert.equal(provider.keys.length, 2);
    });
  }
});
