/**
 * Checks a deployment example's environment (compose, Kubernetes) with the program's own schema:
 * every variable known, secrets only as _FILE, and the whole set valid. The secret files are
 * stood in for by temporary files holding plausible values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, SECRET_VARIABLES, VARIABLES } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const PLAUSIBLE: Record<string, string> = {
  DATABASE_URL_FILE: 'postgres://tenant_clienta:pw@postgres:5432/superfasttt\n',
};

/** `secretOf(path)`: the example's own content for a secret file, when it has one. */
export function assertDeployableEnvironment(
  env: Record<string, string>,
  secretOf: (path: string) => string | undefined = () => undefined,
): void {
  const known = new Set<string>([...VARIABLES, ...SECRET_VARIABLES.map((n) => `${n}_FILE`)]);
  for (const name of Object.keys(env)) assert.ok(known.has(name), `unknown variable ${name}`);
  for (const name of SECRET_VARIABLES)
    assert.equal(env[name], undefined, `${name} must come from ${name}_FILE, not a plain value`);
  const dir = mkdtempSync(join(tmpdir(), 'sf-env-'));
  try {
    const raw: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) {
      if (!name.endsWith('_FILE')) {
        raw[name] = value;
        continue;
      }
      const file = join(dir, name);
      writeFileSync(file, secretOf(value) ?? PLAUSIBLE[name] ?? 'Generated-Secret-Value-42\n');
      raw[name] = file;
    }
    try {
      assert.deepEqual(loadConfig(raw).warnings, []);
    } catch (error) {
      if (error instanceof ConfigError) assert.fail(`${error.message}: ${error.problems.join('; ')}`);
      throw error;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
