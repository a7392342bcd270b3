import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import type { Instance } from './instances.js';
import { crossed, describeMax, parseMaxFailures, planStages, type Stage } from './stages.js';

const instance = (name: string, stage?: string): Instance => ({
  name,
  file: `/envs/${name}.env`,
  env: {},
  ...(stage !== undefined && { stage }),
});
const fleet = (n: number) => Array.from({ length: n }, (_, i) => instance(`t${i}`));
/** Each stage as its name and its instances' names. */
const shape = (stages: Stage[]) => stages.map((s) => [s.name, s.instances.map((i) => i.name)]);

function configError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, message);
    return true;
  });
}

describe('planStages', () => {
  it('no stage column, no --canary: one stage, all, in order', () => {
    assert.deepEqual(shape(planStages(fleet(3), undefined)), [['all', ['t0', 't1', 't2']]]);
  });

  it('--canary N: the first N, then the rest', () => {
    assert.deepEqual(shape(planStages(fleet(5), 2)), [
      ['canary', ['t0', 't1']],
      ['rest', ['t2', 't3', 't4']],
    ]);
  });

  it('--canary N with N at least the count: one stage (no empty rest)', () => {
    for (const canary of [3, 4, 1000])
      assert.deepEqual(shape(planStages(fleet(3), canary)), [['all', ['t0', 't1', 't2']]]);
  });

  it('does not change the list it was given', () => {
    const instances = fleet(3);
    const stages = planStages(instances, undefined);
    stages[0]!.instances.pop();
    assert.equal(instances.length, 3);
  });

  it("the tenants file's stage column: stages in the order of their first appearance, members in file order", () => {
    const instances = [
      instance('a', 'canary'),
      instance('b', 'eu-west'),
      instance('c', 'canary'),
      instance('d', '2'),
      instance('e', 'eu-west'),
    ];
    assert.deepEqual(shape(planStages(instances, undefined)), [
      ['canary', ['a', 'c']],
      ['eu-west', ['b', 'e']],
      ['2', ['d']],
    ]);
  });

  it('a tenant without a stage among staged ones is refused, naming it', () => {
    configError(
      () => planStages([instance('a', '1'), instance('b'), instance('c', '2')], undefined),
      /\bb has no stage/,
    );
    configError(() => planStages([instance('a'), instance('b', '1')], undefined), /\ba has no stage/);
    configError(() => planStages([instance('a', '1'), instance('b', '')], undefined), /\bb has no stage/);
  });

  it('--canary with a stage column is refused', () => {
    configError(() => planStages([instance('a', '1'), instance('b', '2')], 1), /--canary and the stage column/);
  });
});

describe('parseMaxFailures', () => {
  it('default: 0 failures (the first failure stops the run)', () => {
    assert.deepEqual(parseMaxFailures(undefined), { count: 0 });
    assert.equal(describeMax(parseMaxFailures(undefined)), '--max-failures 0');
  });

  it('N: a count over the whole run; P%: a percentage of a stage', () => {
    assert.deepEqual(parseMaxFailures('0'), { count: 0 });
    assert.deepEqual(parseMaxFailures('3'), { count: 3 });
    assert.deepEqual(parseMaxFailures('5%'), { percent: 5 });
    assert.deepEqual(parseMaxFailures('0%'), { percent: 0 });
    assert.deepEqual(parseMaxFailures('100%'), { percent: 100 });
    assert.equal(describeMax({ percent: 5 }), '--max-failures 5% of the stage');
  });

  it('refuses what is neither', () => {
    for (const text of ['-1', '101%', 'many', '1.5', '', '%', '5 %', ' 3', '3x', '1e3', '-5%'])
      configError(() => parseMaxFailures(text), /--max-failures must be a whole number/);
  });
});

describe('crossed', () => {
  it('a count is over the run: 0 means the first failure stops', () => {
    assert.equal(crossed({ count: 0 }, 0, 0, 10), false);
    assert.equal(crossed({ count: 0 }, 1, 1, 10), true);
    assert.equal(crossed({ count: 2 }, 2, 0, 10), false);
    // Failures of earlier stages count: none in this stage, three in the run.
    assert.equal(crossed({ count: 2 }, 3, 0, 10), true);
  });

  it("a percentage is of the stage's size and this stage's failures: 50% of 4 crossed at 3, not at 2", () => {
    assert.equal(crossed({ percent: 50 }, 2, 2, 4), false);
    assert.equal(crossed({ percent: 50 }, 3, 3, 4), true);
    // Failures of earlier stages do not count against this one.
    assert.equal(crossed({ percent: 50 }, 10, 2, 4), false);
    assert.equal(crossed({ percent: 0 }, 1, 1, 4), true);
    assert.equal(crossed({ percent: 100 }, 4, 4, 4), false);
    // 5% of 10 is 0.5: the first failure is more than allowed.
    assert.equal(crossed({ percent: 5 }, 1, 1, 10), true);
    assert.equal(crossed({ percent: 5 }, 0, 0, 10), false);
  });
});
