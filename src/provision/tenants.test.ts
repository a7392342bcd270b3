// Tenant names to schemas, roles and buckets: injective, valid, and refused rather than mapped
// when they cannot be (test/attacks.test.ts proves the same through the executable).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../errors.js';
import { bucketOf, bucketProblem, tenantIdentifier, tenantSpecs } from './tenants.js';

/** Names of the accepted alphabet, biased towards the hard cases: _ runs, trailing _, long names. */
const names = fc.stringMatching(/^[a-z][a-z0-9_]{0,60}$/);

/** S3's rules for general purpose buckets (AWS), which Scaleway and MinIO share. */
function validBucket(name: string): boolean {
  return /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(name) && !name.includes('--') && !name.endsWith('-s3alias');
}

function specsOrRefusal(list: string[], opts: { opaque?: boolean; buckets?: boolean }) {
  try {
    return tenantSpecs(list, undefined, opts);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
}

describe('tenant names to buckets', () => {
  it('every name accepted in bucket mode maps to a valid bucket, and no two names to the same one', () => {
    fc.assert(
      fc.property(names, names, (a, b) => {
        fc.pre(a !== b && !bucketProblem(a) && !bucketProblem(b));
        const [x, y] = [bucketOf(tenantIdentifier(a, false)), bucketOf(tenantIdentifier(b, false))];
        assert.ok(validBucket(x), x);
        assert.notEqual(x, y);
      }),
      { numRuns: 2000 },
    );
  });

  it('opaque names always have a valid bucket of their own', () => {
    fc.assert(
      fc.property(names, names, (a, b) => {
        fc.pre(a !== b);
        const [x, y] = [bucketOf(tenantIdentifier(a, true)), bucketOf(tenantIdentifier(b, true))];
        assert.ok(validBucket(x), x);
        assert.notEqual(x, y);
      }),
    );
  });

  it('a batch is either refused whole (exit 2) or every tenant has its own schema, role and bucket', () => {
    fc.assert(
      fc.property(fc.array(names, { maxLength: 8 }), fc.boolean(), (list, buckets) => {
        const result = specsOrRefusal(list, { buckets });
        if (result instanceof ConfigError) return;
        for (const key of ['schema', 'role', ...(buckets ? ['bucket' as const] : [])] as const) {
          assert.equal(new Set(result.map((s) => s[key])).size, result.length, key);
        }
        if (buckets) for (const spec of result) assert.ok(validBucket(spec.bucket), spec.bucket);
      }),
      { numRuns: 500 },
    );
  });

  it('the collisions found by the attack pass are refused with the reason', () => {
    const refused = (list: string[]) => {
      const result = specsOrRefusal(list, { buckets: true });
      assert.ok(result instanceof ConfigError, `${list.join(', ')} accepted`);
      return result.problems.join('\n');
    };
    assert.match(refused(['bk1', 'bk1_']), /"bk1_": with --storage-mode bucket, the name ends with _/);
    assert.match(refused(['a'.repeat(51) + 'x', 'a'.repeat(51) + 'y']), /longer than 51 characters/);
    assert.match(refused(['x__x_s3']), /holds __/);
    assert.match(refused(['logs_s3alias']), /ends with s3alias/);
    assert.match(refused(['s3alias']), /ends with s3alias/);
    // Prefix mode has no such limit: tenant_<name>/ folders never collide.
    assert.ok(!(specsOrRefusal(['bk1', 'bk1_'], {}) instanceof ConfigError));
  });

  it("a plain name shaped like an opaque identifier is refused: it could be another tenant's hash", () => {
    const opaque = tenantIdentifier('some_customer', true).slice('tenant_'.length);
    const result = specsOrRefusal([opaque], {});
    assert.ok(result instanceof ConfigError);
    assert.match(result.problems.join('\n'), /looks like an --opaque-names identifier/);
  });
});

describe('tenant identifiers', () => {
  it('plain names: tenant_<name> for the schema and the role', () => {
    assert.equal(tenantIdentifier('acme', false), 'tenant_acme');
    assert.equal(tenantIdentifier('a_b_2', false), 'tenant_a_b_2');
  });

  it('opaque names: tenant_ and the first 20 hex digits of the sha256 of the name, stable across versions', () => {
    // Fixed values: changing the mapping would orphan every tenant provisioned with --opaque-names.
    assert.equal(tenantIdentifier('acme', true), 'tenant_822b33ad87c148a0a20a');
    assert.equal(tenantIdentifier('some_customer', true), 'tenant_d45083cdd381a473a8cf');
    fc.assert(
      fc.property(names, (name) => {
        const id = tenantIdentifier(name, true);
        assert.match(id, /^tenant_[0-9a-f]{20}$/);
        assert.equal(id, tenantIdentifier(name, true));
        if (name.length >= 4) assert.ok(!id.includes(name.slice(1)), 'the name does not show through');
      }),
    );
  });

  it('bucketOf: superfasttt-<identifier> with _ as -', () => {
    assert.equal(bucketOf(tenantIdentifier('acme', false)), 'superfasttt-acme');
    assert.equal(bucketOf(tenantIdentifier('big_corp_2', false)), 'superfasttt-big-corp-2');
    assert.equal(bucketOf(tenantIdentifier('acme', true)), 'superfasttt-822b33ad87c148a0a20a');
  });

  it('bucketProblem: none for ordinary names; the 51-character limit exactly', () => {
    for (const name of ['acme', 'a_b', 'x1', 'xs3alias', 's3alias_x', 'a'.repeat(51)])
      assert.equal(bucketProblem(name), undefined, name);
    assert.equal(bucketOf(tenantIdentifier('a'.repeat(51), false)).length, 63);
    const problem = (name: string) => bucketProblem(name) ?? '(none)';
    assert.match(problem('a'.repeat(52)), /longer than 51 characters/);
    assert.match(problem('abc_'), /ends with _/);
    assert.match(problem('a__b'), /holds __/);
    assert.match(problem('my_s3alias'), /ends with s3alias/);
  });
});

describe('tenant names given with --tenant', () => {
  const refusal = (list: string[], opts: { opaque?: boolean; buckets?: boolean } = {}) => {
    const result = specsOrRefusal(list, opts);
    assert.ok(result instanceof ConfigError, `${list.join(', ')} accepted`);
    assert.equal(result.exitCode, 2);
    return result.problems.join('\n');
  };

  it('each spec: schema and role tenant_<name>, bucket superfasttt-<name>, no admin details', () => {
    const admin = { email: undefined, firstName: undefined, lastName: undefined, phone: undefined };
    assert.deepEqual(tenantSpecs(['acme', 'big_corp'], undefined), [
      { name: 'acme', schema: 'tenant_acme', role: 'tenant_acme', bucket: 'superfasttt-acme', admin },
      { name: 'big_corp', schema: 'tenant_big_corp', role: 'tenant_big_corp', bucket: 'superfasttt-big-corp', admin },
    ]);
  });

  it('names: a lowercase letter first, then lowercase letters, digits and _; at most 56 characters', () => {
    assert.deepEqual(
      tenantSpecs(['a'.repeat(56)], undefined).map((spec) => spec.schema.length),
      [63],
    );
    assert.match(refusal(['a'.repeat(57)]), /^tenant "a+": name must be at most 56 characters/);
    for (const name of ['Acme', '1acme', '_acme', 'ac-me', 'ac me', 'acmé', ''])
      assert.match(refusal([name]), /must start with a lowercase letter/, name);
  });

  it('every problem is reported at once, and a name listed twice is one of them', () => {
    const problems = refusal(['acme', 'Bad', 'acme', 'x'.repeat(60)]);
    assert.match(problems, /tenant "Bad": name must start/);
    assert.match(problems, /tenant "acme": listed twice/);
    assert.match(problems, /tenant "x+": name must be at most/);
    assert.equal(problems.split('\n').length, 3);
  });

  it('no tenant at all is refused', () => {
    assert.match(refusal([]), /no tenant given: use --tenant NAME/);
  });

  it('with --opaque-names, bucket mode accepts the names it refuses otherwise (the bucket is the hash)', () => {
    for (const name of ['abc_', 'a__b', 'my_s3alias', 'a'.repeat(56)]) {
      assert.match(refusal([name], { buckets: true }), /with --storage-mode bucket/, name);
      const specs = tenantSpecs([name], undefined, { buckets: true, opaque: true });
      assert.equal(specs.length, 1);
      for (const spec of specs) {
        assert.equal(spec.schema, tenantIdentifier(name, true));
        assert.equal(spec.bucket, bucketOf(spec.schema));
        assert.ok(validBucket(spec.bucket), spec.bucket);
      }
    }
    // A name of the opaque shape is fine there: every identifier is a hash, none is taken as given.
    const hexName = tenantIdentifier('some_customer', true).slice('tenant_'.length);
    assert.ok(!(specsOrRefusal([hexName], { opaque: true }) instanceof ConfigError));
  });
});
