/**
 * Sharding of a fleet run: shard K of N (0-based) takes the instances whose name hashes to K, so N copies of
 * `fleet check` / `fleet bootstrap` (N pods, N CI jobs) split the fleet between them without talking to each other.
 *
 * The shard comes from `--shard K/N`, or from a Kubernetes Indexed Job: the Job controller sets
 * JOB_COMPLETION_INDEX (the pod's index, 0-based) in every pod, but the Job's `completions` count has no variable
 * of its own, so the manifest passes it as JOB_COMPLETIONS, the same number as `spec.completions`:
 *
 *     env:
 *       - name: JOB_COMPLETIONS
 *         value: "8"          # = spec.completions
 *
 * The assignment of a name to a shard depends on that name and N only (the first 8 bytes of its SHA-256 as an
 * unsigned integer, modulo N): the same on every machine and every run, whatever the order or size of the list,
 * so each instance is handled by exactly one of the N shards.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';

export interface Shard {
  /** K: 0-based, 0 <= index < count. */
  index: number;
  /** N: the number of shards, 1..MAX_SHARDS. */
  count: number;
}

export const MAX_SHARDS = 10_000;

const WHOLE = /^\d{1,9}$/;

/** The problems of K and N as typed (none when valid), worded for the operator. */
function shardProblems(indexText: string, countText: string, indexName: string, countName: string): string[] {
  const problems: string[] = [];
  const countValid = WHOLE.test(countText) && Number(countText) >= 1 && Number(countText) <= MAX_SHARDS;
  if (!countValid) {
    problems.push(`${countName} must be a whole number from 1 to ${MAX_SHARDS}, not ${JSON.stringify(countText)}`);
  }
  if (!WHOLE.test(indexText)) {
    problems.push(`${indexName} must be a whole number from 0, not ${JSON.stringify(indexText)}`);
  } else if (countValid && Number(indexText) >= Number(countText)) {
    problems.push(`${indexName} must be less than ${countName} (${countText}), not ${indexText}`);
  }
  return problems;
}

/** `K/N` (whole numbers, 0 <= K < N, 1 <= N <= 10000), e.g. `--shard 0/4` ... `--shard 3/4`. */
export function parseShard(text: string, source = '--shard'): Shard {
  const fix = `give ${source} as K/N: shard K (0-based) of N, 0 <= K < N <= ${MAX_SHARDS}, for example 0/4`;
  const match = /^\s*([^/]*?)\s*\/\s*([^/]*?)\s*$/.exec(text);
  if (!match) {
    const shown = JSON.stringify(text.slice(0, 40));
    throw new ConfigError(`${source} must be K/N (shard K of N, 0-based), not ${shown}`, [], fix);
  }
  const [, indexText = '', countText = ''] = match;
  const problems = shardProblems(indexText, countText, `${source} K`, `${source} N`);
  if (problems.length > 0) {
    throw new ConfigError(
      `${source} must be K/N with 0 <= K < N <= ${MAX_SHARDS}: ${problems.join('; ')}`,
      problems,
      fix,
    );
  }
  return { index: Number(indexText), count: Number(countText) };
}

/**
 * The shard of a pod of a Kubernetes Indexed Job: JOB_COMPLETION_INDEX (set by Kubernetes) of JOB_COMPLETIONS (set
 * by the manifest, see above). Neither set: undefined (no sharding); only one: a ConfigError asking for the other.
 */
export function shardFromEnv(env: NodeJS.ProcessEnv): Shard | undefined {
  const index = env.JOB_COMPLETION_INDEX?.trim() || undefined;
  const count = env.JOB_COMPLETIONS?.trim() || undefined;
  if (index === undefined && count === undefined) return undefined;
  const fix =
    'in an Indexed Job, set JOB_COMPLETIONS to spec.completions in the pod template (Kubernetes sets ' +
    'JOB_COMPLETION_INDEX itself); elsewhere, unset both or use --shard K/N';
  if (count === undefined) {
    throw new ConfigError(
      'JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: the number of shards is needed with the index',
      ['JOB_COMPLETIONS is needed with JOB_COMPLETION_INDEX'],
      fix,
    );
  }
  if (index === undefined) {
    throw new ConfigError(
      'JOB_COMPLETIONS is set but JOB_COMPLETION_INDEX is not: the index of this shard is needed with the count',
      ['JOB_COMPLETION_INDEX is needed with JOB_COMPLETIONS'],
      fix,
    );
  }
  const problems = shardProblems(index, count, 'JOB_COMPLETION_INDEX', 'JOB_COMPLETIONS');
  if (problems.length > 0) {
    throw new ConfigError(`invalid shard from the environment: ${problems.join('; ')}`, problems, fix);
  }
  return { index: Number(index), count: Number(count) };
}

/** Whether the instance `name` belongs to `shard`: first 8 bytes of sha256(name) (UTF-8), big-endian, mod N === K. */
export function inShard(name: string, shard: Shard): boolean {
  const hash = createHash('sha256').update(name, 'utf8').digest().readBigUInt64BE(0);
  return hash % BigInt(shard.count) === BigInt(shard.index);
}

/** The items of `shard`, in their order; all of them without a shard. */
export function selectShard<T extends { name: string }>(items: T[], shard: Shard | undefined): T[] {
  if (!shard || shard.count === 1) return [...items];
  return items.filter((item) => inShard(item.name, shard));
}
