// The step runner with steps of its own (no server): ordering, skips, failures and signals.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceConfig } from '../config/targets.js';
import { InterruptedError, SchemaError, StorageError } from '../errors.js';
import { createLogger } from '../log.js';
import { sleep } from '../sleep.js';
import { type AnyStep, defineStep, done, Resources, runSteps, type StepContext } from './step.js';

/** What the steps did, in order: "start a", "end a", ... */
type Journal = string[];

function context(signal = new AbortController().signal): StepContext {
  const log = createLogger({ format: 'json', color: false, stdout: () => {}, stderr: () => {} });
  return { config: {} as InstanceConfig, log, signal, version: 'test', write: true, resources: new Resources() };
}

/** A step that waits `ms`, then passes with `value` (or throws `fails`). */
function step<Needs extends Record<string, AnyStep>>(
  journal: Journal,
  name: string,
  opts: { ms?: number; needs?: Needs; after?: AnyStep[]; fails?: Error; value?: string } = {},
) {
  const body = async () => {
    journal.push(`start ${name}`);
    await sleep(opts.ms ?? 5);
    journal.push(`end ${name}`);
    if (opts.fails) throw opts.fails;
    return done(`${name} ok`, opts.value ?? name, [`${name} changed`]);
  };
  return defineStep({
    name,
    errorClass: SchemaError,
    needs: opts.needs ?? ({} as Needs),
    ...(opts.after && { after: opts.after }),
    inspect: () => body(),
    apply: () => body(),
  });
}

describe('runSteps', () => {
  it('apply: independent steps run at the same time; a step starts once its needs passed', async () => {
    const journal: Journal = [];
    const a = step(journal, 'a', { ms: 30 });
    const b = step(journal, 'b', { ms: 30 });
    const c = step(journal, 'c', { needs: { a } });
    const results = await runSteps([a, b, c], context(), 'apply');
    assert.deepEqual(journal.slice(0, 2), ['start a', 'start b'], 'a and b overlap');
    assert.ok(journal.indexOf('start c') > journal.indexOf('end a'), 'c after a');
    assert.deepEqual(
      results.map((r) => [r.step.name, r.status]),
      [
        ['a', 'pass'],
        ['b', 'pass'],
        ['c', 'pass'],
      ],
    );
    assert.deepEqual(
      results.flatMap((r) => r.changes),
      ['a changed', 'b changed', 'c changed'],
    );
  });

  it('inspect: one step at a time, in declaration order', async () => {
    const journal: Journal = [];
    const a = step(journal, 'a', { ms: 20 });
    const b = step(journal, 'b', { ms: 5 });
    const c = step(journal, 'c', { ms: 5 });
    await runSteps([a, b, c], context(), 'inspect');
    assert.deepEqual(journal, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('a step receives the outputs of the steps it needs, under the names it gave them', async () => {
    const journal: Journal = [];
    const source = step(journal, 'source', { value: 'forty-two' });
    let received: unknown;
    const sink = defineStep({
      name: 'sink',
      errorClass: SchemaError,
      needs: { from: source },
      inspect: async (_ctx, input) => done('inspected', input.from),
      apply: async (_ctx, input) => {
        received = input.from;
        return done('applied', undefined);
      },
    });
    await runSteps([source, sink], context(), 'apply');
    assert.equal(received, 'forty-two');
  });

  it('the dependents of a failure are skipped, naming it; other steps still run', async () => {
    const journal: Journal = [];
    const a = step(journal, 'a', { fails: new StorageError('bucket gone', 'create it') });
    const b = step(journal, 'b', { needs: { a } });
    const c = step(journal, 'c', { needs: { b } });
    const d = step(journal, 'd');
    for (const mode of ['apply', 'inspect'] as const) {
      const results = await runSteps([a, b, c, d], context(), mode);
      assert.deepEqual(
        results.map((r) => [r.step.name, r.status, r.summary]),
        [
          ['a', 'fail', 'bucket gone'],
          ['b', 'skip', 'skipped: a did not pass'],
          ['c', 'skip', 'skipped: b did not pass'],
          ['d', 'pass', 'd ok'],
        ],
        mode,
      );
      assert.ok(results[0]?.error instanceof StorageError);
    }
  });

  it('`after` orders the bootstrap only: check reports the step even when its `after` failed', async () => {
    const journal: Journal = [];
    const verify = step(journal, 'verify', { fails: new StorageError('no bucket') });
    const mark = step(journal, 'mark', { after: [verify] });
    const applied = await runSteps([verify, mark], context(), 'apply');
    assert.equal(applied[1]?.status, 'skip', 'nothing is marked done before every verification passed');
    const inspected = await runSteps([verify, mark], context(), 'inspect');
    assert.equal(inspected[1]?.status, 'pass');
  });

  it('an error without a code is a bug: it stays as it is (not given the step error class)', async () => {
    const journal: Journal = [];
    const broken = step(journal, 'broken', { fails: new TypeError('undefined is not a function') });
    const [result] = await runSteps([broken], context(), 'apply');
    assert.ok(result?.error instanceof TypeError);
  });

  it('a signal fails the steps not yet started with InterruptedError, and waits for the running ones', async () => {
    const journal: Journal = [];
    const controller = new AbortController();
    const slow = step(journal, 'slow', { ms: 40 });
    const next = step(journal, 'next', { needs: { slow } });
    setTimeout(() => controller.abort('SIGTERM'), 10);
    const results = await runSteps([slow, next], context(controller.signal), 'apply');
    assert.ok(journal.includes('end slow'), 'the running step was waited for');
    assert.ok(!journal.includes('start next'), 'no step starts after the signal');
    assert.equal(results[0]?.status, 'pass', 'it finished: what it did is true (its sockets are what a signal closes)');
    assert.equal(results[1]?.status, 'fail');
    assert.ok(results[1]?.error instanceof InterruptedError);
    assert.equal(results[1]?.error.exitCode, 143);
  });

  it('resources are closed in the reverse order of opening, and one that lets go early is not', async () => {
    const closed: string[] = [];
    const resources = new Resources();
    const held = (name: string) => ({ close: async () => void closed.push(name), destroy: () => {} });
    resources.add(held('database'));
    const forget = resources.add(held('lock attempt'));
    resources.add(held('lock'));
    forget();
    await resources.closeAll();
    assert.deepEqual(closed, ['lock', 'database']);
  });
});
