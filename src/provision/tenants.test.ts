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
