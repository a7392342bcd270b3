import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../errors.js';
import { inShard, parseShard, selectShard, shardFromEnv } from './shard.js';

const names = (n: number, prefix = 'tenant-') => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}` }));

/** The ConfigError thrown by `fn`, after checking it is one. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    assert.equal(error.exitCode, 2);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('parseShard', () => {
  it('reads K/N', () => {
    assert.deepEqual(parseShard('0/1'), { index: 0, count: 1 });
    assert.deepEqual(parseShard('3/4'), { index: 3, count: 4 });
    assert.deepEqual(parseShard(' 9999/10000 '), { index: 9999, count: 10000 });
  });

  it('refuses anything else with a ConfigError naming the source and the form', () => {
    for (const text of [
      '',
      '1',
      '4/4',
      '5/4',
      '0/0',
      '-1/4',
      '1.5/4',
      '0/10001',
      'a/b',
      '1/2/3',
      '0x1/4',
      '/4',
      '1/',
    ]) {
      const error = configError(() => parseShard(text));
      assert.match(error.message, /^--shard must be K\/N/, text);
      assert.match(error.fix ?? '', /--shard as K\/N/, text);
    }
    assert.match(configError(() => parseShard('4/4')).message, /--shard K must be less than --shard N \(4\), not 4/);
    assert.match(configError(() => parseShard('0/10001')).message, /--shard N must be a whole number from 1 to 10000/);
    assert.match(configError(() => parseShard('x', '--only')).message, /^--only must be K\/N/);
  });
});

describe('shardFromEnv', () => {
  it('is undefined without the variables', () => {
    assert.equal(shardFromEnv({}), undefined);
    assert.equal(shardFromEnv({ JOB_COMPLETION_INDEX: '', JOB_COMPLETIONS: '' }), undefined);
  });

  it('reads JOB_COMPLETION_INDEX of JOB_COMPLETIONS', () => {
    assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: '2', JOB_COMPLETIONS: '8' }), { index: 2, count: 8 });
  });

  it('asks for the other variable when only one is set', () => {
    const noCount = configError(() => shardFromEnv({ JOB_COMPLETION_INDEX: '2' }));
    assert.match(noCount.message, /JOB_COMPLETIONS is not/);
    assert.deepEqual(noCount.problems, ['JOB_COMPLETIONS is needed with JOB_COMPLETION_INDEX']);
    assert.match(noCount.fix ?? '', /spec\.completions/);
    const noIndex = configError(() => shardFromEnv({ JOB_COMPLETIONS: '8' }));
    assert.deepEqual(noIndex.problems, ['JOB_COMPLETION_INDEX is needed with JOB_COMPLETIONS']);
  });

  it('validates both, naming the variables', () => {
    const error = configError(() => shardFromEnv({ JOB_COMPLETION_INDEX: '8', JOB_COMPLETIONS: '8' }));
    assert.deepEqual(error.problems, ['JOB_COMPLETION_INDEX must be less than JOB_COMPLETIONS (8), not 8']);
    const both = configError(() => shardFromEnv({ JOB_COMPLETION_INDEX: 'x', JOB_COMPLETIONS: '0' }));
    assert.deepEqual(both.problems, [
      'JOB_COMPLETIONS must be a whole number from 1 to 10000, not "0"',
      'JOB_COMPLETION_INDEX must be a whole number from 0, not "x"',
    ]);
  });
});

describe('inShard / selectShard', () => {
  it('the N shards cover every name exactly once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.uniqueArray(fc.string({ unit: 'grapheme', maxLength: 30 }), { maxLength: 2000 }),
        (count, list) => {
          const items = list.map((name) => ({ name }));
          const seen = new Map<string, number>();
          for (let index = 0; index < count; index++) {
            for (const item of selectShard(items, { index, count }))
              seen.set(item.name, (seen.get(item.name) ?? 0) + 1);
          }
          assert.equal(seen.size, list.length);
          for (const times of seen.values()) assert.equal(times, 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('puts a name in the same shard whatever the list around it', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.array(fc.string({ maxLength: 20 }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 64 }),
        (name, others, count) => {
          const home = Array.from({ length: count }, (_, index) => index).filter((index) =>
            inShard(name, { index, count }),
          );
          assert.equal(home.length, 1);
          const shard = { index: home[0]!, count };
          const list = [...others.filter((o) => o !== name).map((o) => ({ name: o })), { name }].reverse();
          assert.ok(selectShard(list, shard).some((item) => item.name === name));
        },
      ),
    );
  });

  it('is the same on every machine: the first 8 bytes of sha256, big-endian, mod N', () => {
    // sha256('acme') begins with 822b33ad87c148a0: stated here so that a change of hash or byte order is caught.
    const hash = 0x822b33ad87c148a0n;
    for (const count of [2, 3, 7, 10, 10000]) {
      const index = Number(hash % BigInt(count));
      assert.ok(inShard('acme', { index, count }), `count ${count}`);
      assert.ok(!inShard('acme', { index: (index + 1) % count, count }), `count ${count}`);
    }
    assert.equal(Number(hash % 7n), 2);
  });

  it('is roughly uniform: 8,000 names in 8 shards hold 800 to 1,200 each', () => {
    const items = names(8000);
    for (let index = 0; index < 8; index++) {
      const size = selectShard(items, { index, count: 8 }).length;
      assert.ok(size >= 800 && size <= 1200, `shard ${index} holds ${size}`);
    }
  });

  it('keeps everything, in order, without a shard or with 1 shard', () => {
    const items = names(5);
    assert.deepEqual(selectShard(items, undefined), items);
    assert.deepEqual(selectShard(items, { index: 0, count: 1 }), items);
    const picked = selectShard(names(100), { index: 1, count: 3 }).map((i) => Number(i.name.slice(7)));
    assert.deepEqual(
      picked,
      [...picked].sort((a, b) => a - b),
    );
  });
});
