/**
 * The stages of a fleet run and when to stop. `--canary N`: the first N instances, then the rest; or
 * the tenants file's `stage` column: its values in the order they first appear (a stage may be
 * named anything: canary, 1, eu-west...). `--max-failures N` counts failures over the whole run;
 * `--max-failures P%` compares a stage's failures with P% of that stage's size. Crossing it (more
 * failures than allowed) starts nothing new: not the next stage, not the next instance of this one.
 */
import { ConfigError } from '../errors.js';
import type { Instance } from './instances.js';

export interface Stage {
  name: string;
  instances: Instance[];
}

/** The one stage of a run without --canary nor a stage column. */
export const ALL_STAGE = 'all';

export type MaxFailures = { count: number } | { percent: number };

export function planStages(instances: readonly Instance[], canary: number | undefined): Stage[] {
  const staged = instances.some((i) => i.stage !== undefined);
  if (staged && canary !== undefined)
    throw new ConfigError(
      '--canary and the stage column of --tenants cannot be used together',
      [],
      'drop --canary, or the stage column',
    );
  if (staged) {
    const stages = new Map<string, Instance[]>();
    for (const instance of instances) {
      const name = instance.stage ?? '';
      if (!name)
        throw new ConfigError(
          `--tenants: ${instance.name} has no stage while others have one`,
          [],
          'give every tenant a stage, or none',
        );
      stages.set(name, [...(stages.get(name) ?? []), instance]);
    }
    return [...stages].map(([name, members]) => ({ name, instances: members }));
  }
  if (canary === undefined || canary >= instances.length) return [{ name: ALL_STAGE, instances: [...instances] }];
  return [
    { name: 'canary', instances: instances.slice(0, canary) },
    { name: 'rest', instances: instances.slice(canary) },
  ];
}

export function parseMaxFailures(text: string | undefined): MaxFailures {
  if (text === undefined) return { count: 0 };
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent && Number(percent[1]) <= 100) return { percent: Number(percent[1]) };
  if (/^\d{1,7}$/.test(text)) return { count: Number(text) };
  throw new ConfigError(
    '--max-failures must be a whole number (failures in the whole run) or a percentage such as 5% (of a stage)',
    [],
    'the default, 0, stops at the first failure',
  );
}

/** More failures than allowed: the run starts nothing new. */
export function crossed(max: MaxFailures, failedInRun: number, failedInStage: number, stageSize: number): boolean {
  if ('count' in max) return failedInRun > max.count;
  return failedInStage > (max.percent / 100) * stageSize;
}

export function describeMax(max: MaxFailures): string {
  return 'count' in max ? `--max-failures ${max.count}` : `--max-failures ${max.percent}% of the stage`;
}
