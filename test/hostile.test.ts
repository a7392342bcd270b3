// Hostile input, property-based (fast-check): random strings, unicode, very long values, control
// characters, quotes and SQL fragments, odd URLs, in every variable. Invariants: a documented exit
// code and never 1 (a bug), no stack trace, no secret in the output, nothing written when the
// configuration is invalid.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as v from 'valibot';
import type { FieldDoc } from '../src/config/fields.js';
import { loadConfig, SECRET_VARIABLES, VARIABLES } from '../src/config/load.js';
import { loadProvisionConfig, provisionSchema } from '../src/config/provision-schema.js';
import { ConfigError } from '../src/errors.js';
import { assertNoSecrets, runCli, type Env } from './harness/cli.js';
import { instanceEnv, relations } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';

const DOCUMENTED = new Set([0, 2, 3, 4, 5, 6, 7, 8]);

/** Values an operator, a template or an attacker could put in a variable (an environment holds no NUL). */
const anyValue = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ minLength: 2000, maxLength: 5000 }),
  fc.constantFrom(
    "'; DROP SCHEMA public CASCADE; --",
    'tenant"; drop',
    '${HOME}',
    '$(id)',
    '\r\n',
    'true ',
    'TRUE',
    '-1',
    '1e3',
    '0x10',
    'NaN',
    '💥',
  ),
  fc.webUrl().map((u) => u.replace(/^https?/, 'postgres')),
  fc.tuple(fc.string(), fc.string(), fc.string()).map(([u, p, h]) => `postgres://${u}:${p}@${h}/db?sslmode=${u}`),
);
const hostileValue = anyValue.map((v) => v.replace(/\0/g, ''));

/** A random environment over every variable; secrets get long values so a leak cannot be a coincidence. */
const hostileEnv = fc.record(
  Object.fromEntries(
    VARIABLES.map((name) => [
      name,
      SECRET_VARIABLES.includes(name)
        ? fc.option(
            fc.string({ minLength: 10, maxLength: 60 }).filter((s) => s.trim().length >= 10 && !s.includes('\0')),
            { nil: undefined },
          )
        : fc.option(hostileValue, { nil: undefined }),
    ]),
  ),
  { requiredKeys: [] },
) as fc.Arbitrary<Env>;

/** Keeps a generated environment on loopback: the database URL's host, and no provider chosen. */
function loopbackOnly(env: Env): Env {
  let url = env.DATABASE_URL;
  try {
    const parsed = new URL(url ?? '');
    parsed.hostname = '127.0.0.1';
    parsed.port = '9';
    url = parsed.toString();
  } catch {
    /* not a URL: refused by validation, never connected to */
  }
  return { DATABASE_URL: url, STORAGE_PROVIDER: undefined, EMAIL_PROVIDER: undefined };
}

const secretsOf = (env: Env) =>
  SECRET_VARIABLES.map((name) => env[name]).filter((v): v is string => typeof v === 'string' && v.trim().length >= 10);

describe('configuration parsing (in process)', () => {
  it('accepts or refuses with a ConfigError, and never repeats a secret', () => {
    fc.assert(
      fc.property(hostileEnv, (env) => {
        try {
          loadConfig(env);
        } catch (error) {
          assert.ok(error instanceof ConfigError, `not a ConfigError: ${String(error)}`);
          const text = [error.message, ...error.problems, error.fix ?? ''].join('\n');
          for (const secret of secretsOf(env)) assert.ok(!text.includes(secret), 'a secret is repeated in a problem');
        }
      }),
      { numRuns: 400 },
    );
  });

  it('a control character in any secret is refused, naming the variable, where and which, never the value', () => {
    const provisionSecrets = Object.entries(provisionSchema.entries)
      .filter(([, schema]) => (v.getMetadata(schema) as FieldDoc).secret)
      .map(([name]) => name);
    const control = fc
      .oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f }))
      .map((code) => String.fromCodePoint(code));
    const printable = fc.string({ unit: 'grapheme', minLength: 12, maxLength: 40 }).filter((s) => !/\p{Cc}/u.test(s));
    fc.assert(
      fc.property(
        fc.constantFrom(...SECRET_VARIABLES, ...provisionSecrets),
        printable,
        control,
        fc.nat(),
        (name, text, char, at) => {
          const chars = [...text];
          const position = (at % (chars.length + 1)) + 1;
          chars.splice(position - 1, 0, char);
          const value = chars.join('');
          const load = name.startsWith('PROVISION_') ? loadProvisionConfig : loadConfig;
          let error: unknown;
          try {
            load({ [name]: value });
          } catch (caught) {
            error = caught;
          }
          assert.ok(error instanceof ConfigError, `${name} with U+${char.codePointAt(0)!.toString(16)} was accepted`);
          const code = `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
          const problem = error.problems.find((p) =>
            p.startsWith(`${name}: must not contain control characters: ${code} (`),
          );
          assert.ok(problem, `no control-character problem for ${name}:\n${error.problems.join('\n')}`);
          assert.match(problem, new RegExp(` at character ${position}\\b`));
          // Neither the value, nor a side of the control character (6 characters or more), nor the character itself.
          const parts = [value, char, ...value.split(char).filter((p) => [...p].length >= 6)];
          for (const line of [error.message, ...error.problems, error.fix ?? '']) {
            for (const part of parts)
              assert.ok(!line.includes(part), `${name}: the value is repeated in: ${JSON.stringify(line)}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the executable', () => {
  let pg: PgServer;
  before(async () => {
    pg = await startPostgres({ tls: false });
  });
  after(async () => {
    await pg?.stop();
  });

  it('always a documented exit code, never 1, no stack trace, no secret', async () => {
    await fc.assert(
      fc.asyncProperty(hostileEnv, async (env) => {
        // Bounded waits; and traffic only to loopback: a database port where nobody listens, no
        // storage or email provider (their variables are still validated), no DNS look-up.
        const r = await runCli(
          {
            ...env,
            ...loopbackOnly(env),
            SKIP_SETUP: 'true',
            DATABASE_CONNECT_TIMEOUT: '1',
            TERMINATION_LOG: undefined,
          },
          { timeoutMs: 30_000 },
        );
        assert.ok(r.code !== null && DOCUMENTED.has(r.code), `exit ${r.code}:\n${r.output}`);
        assert.doesNotMatch(r.output, /\n\s+at .+:\d+:\d+\)?\n/, 'stack trace');
        assertNoSecrets(r, secretsOf(env));
      }),
      { numRuns: 40 },
    );
  });

  it('an invalid variable beside a real database: exit 2 and nothing written', async () => {
    // Not the providers: a random value that happened to choose one would send traffic off loopback.
    const names = VARIABLES.filter(
      (n) =>
        ![
          'SKIP_SETUP',
          'DATABASE_URL',
          'DATABASE_SCHEMA',
          'NO_COLOR',
          'TERMINATION_LOG',
          'LOG_FORMAT',
          'STORAGE_PROVIDER',
          'EMAIL_PROVIDER',
        ].includes(n),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), hostileValue, async (name, value) => {
        const tenant = await createTenant(pg); // fresh: an earlier valid value may have bootstrapped one
        const env = instanceEnv(tenant, { [name]: value });
        const r = await runCli(env, { timeoutMs: 30_000 });
        assert.ok(r.code !== null && DOCUMENTED.has(r.code), `exit ${r.code}:\n${r.output}`);
        if (r.code === 2)
          assert.deepEqual(await relations(pg, tenant.schema), [], 'written despite an invalid configuration');
      }),
      { numRuns: 25 },
    );
  });
});
