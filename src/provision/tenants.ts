/**
 * Tenants to provision: names from --tenant, or rows of a CSV or JSON-lines file with the super
 * admin's details (read by tenants-file.ts). Every name is checked before anything is connected
 * to: lowercase letters, digits and _, and short enough that every identifier derived from it fits
 * PostgreSQL's 63 bytes (longer names are truncated silently, and two tenants could then share a
 * schema).
 */
import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { ConfigError } from '../errors.js';
import { email, phoneE164, text } from '../config/fields.js';
import { envValueProblem } from './env-file.js';
import { readTenantsFile } from './tenants-file.js';
import { issuePath } from '../config/load.js';

export const PREFIX = 'tenant_';
const MAX_NAME = 63 - PREFIX.length;

export interface TenantSpec {
  name: string;
  /** Schema and login role: tenant_<name>. */
  schema: string;
  role: string;
  /** Valid S3 bucket name for --storage-mode bucket: superfasttt-<name> with _ as -. */
  bucket: string;
  admin: { email?: string; firstName?: string; lastName?: string; phone?: string };
  s3?: { accessKey: string; secretKey: string };
}

const nameSchema = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9_]*$/, 'must start with a lowercase letter and hold only lowercase letters, digits and _'),
  v.maxLength(MAX_NAME, `must be at most ${MAX_NAME} characters (tenant_<name> must fit PostgreSQL's 63 bytes)`),
);

const rowSchema = v.object({
  name: v.string('is required'),
  email: v.optional(email()),
  first_name: v.optional(text(100)),
  last_name: v.optional(text(100)),
  phone: v.optional(phoneE164()),
  s3_access_key: v.optional(text(256)),
  s3_secret_key: v.optional(text(256)),
});

/**
 * Schema and role names: tenant_<name>, or with `opaque` a stable hash of it (every tenant can read
 * the catalogs, so names like tenant_<customer> reveal the customer list).
 */
export function tenantIdentifier(name: string, opaque: boolean): string {
  return PREFIX + (opaque ? createHash('sha256').update(name).digest('hex').slice(0, 20) : name);
}

export const BUCKET_PREFIX = 'superfasttt-';
/** Longest name whose bucket, superfasttt-<name>, fits S3's 63 characters without being cut. */
const MAX_BUCKET_NAME = 63 - BUCKET_PREFIX.length;
/** What an --opaque-names identifier looks like: a plain name of that shape could be someone's hash. */
const OPAQUE_SHAPE = /^[0-9a-f]{20}$/;

/**
 * The tenant's own bucket: superfasttt-<identifier> with _ as - (bucket names allow no _ nor
 * uppercase). Injective because names never hold -, and because names that would need cutting
 * (longer than 51) or trimming (a trailing _), or that would hold -- (reserved by S3 for its own
 * suffixes such as --x-s3 and --ol-s3), are refused in bucket mode instead of being mapped.
 */
export function bucketOf(identifier: string): string {
  return BUCKET_PREFIX + identifier.slice(PREFIX.length).replace(/_/g, '-');
}

/** Why a name cannot have a bucket of its own, or undefined. */
export function bucketProblem(name: string): string | undefined {
  if (name.length > MAX_BUCKET_NAME)
    return (
      `is longer than ${MAX_BUCKET_NAME} characters: its bucket ${BUCKET_PREFIX}<name> would not fit S3's 63 ` +
      `(use --opaque-names, or a shorter name)`
    );
  if (name.endsWith('_'))
    return (
      'ends with _: bucket names must end with a letter or ' +
      "digit, and trimming it would give another tenant's bucket"
    );
  if (name.includes('__')) return 'holds __: its bucket name would hold --, which S3 reserves';
  if (bucketOf(PREFIX + name).endsWith('-s3alias'))
    return 'ends with s3alias: S3 reserves bucket names ending with -s3alias';
  return undefined;
}

export function tenantSpecs(
  names: string[],
  file: string | undefined,
  opts: { opaque?: boolean; buckets?: boolean } = {},
): TenantSpec[] {
  const rows: Array<Record<string, unknown>> = names.map((name) => ({ name }));
  if (file !== undefined) rows.push(...readTenantsFile(file));
  const problems: string[] = [];
  const specs: TenantSpec[] = [];
  const seen = new Set<string>();
  for (const [i, row] of rows.entries()) {
    const where = `tenant ${typeof row.name === 'string' ? JSON.stringify(row.name) : `#${i + 1}`}`;
    const parsed = v.safeParse(rowSchema, row);
    const name = v.safeParse(nameSchema, row.name);
    for (const issue of [...(parsed.issues ?? []), ...(name.issues ?? [])]) {
      problems.push(`${where}: ${issuePath(issue, 'name')} ${issue.message}`);
    }
    if (!parsed.success || !name.success) continue;
    if (seen.has(name.output)) {
      problems.push(`${where}: listed twice`);
      continue;
    }
    seen.add(name.output);
    if (!opts.opaque && OPAQUE_SHAPE.test(name.output)) {
      problems.push(
        `${where}: name looks like an --opaque-names identifier (20 hexadecimal digits), which could be another ` +
          `tenant's: choose another name`,
      );
      continue;
    }
    const bucketIssue = opts.buckets && !opts.opaque ? bucketProblem(name.output) : undefined;
    if (bucketIssue) {
      problems.push(`${where}: with --storage-mode bucket, the name ${bucketIssue}`);
      continue;
    }
    const r = parsed.output;
    // Copied into the tenant's .env: refused now if a .env reader would not read it back unchanged.
    for (const [key, value] of Object.entries(r)) {
      const problem = typeof value === 'string' ? envValueProblem(value) : undefined;
      if (problem) problems.push(`${where}: ${key} ${problem}`);
    }
    if ((r.s3_access_key === undefined) !== (r.s3_secret_key === undefined))
      problems.push(`${where}: give both s3_access_key and s3_secret_key, or neither`);
    specs.push({
      name: name.output,
      schema: tenantIdentifier(name.output, opts.opaque ?? false),
      role: tenantIdentifier(name.output, opts.opaque ?? false),
      bucket: bucketOf(tenantIdentifier(name.output, opts.opaque ?? false)),
      admin: { email: r.email, firstName: r.first_name, lastName: r.last_name, phone: r.phone },
      ...(r.s3_access_key && r.s3_secret_key && { s3: { accessKey: r.s3_access_key, secretKey: r.s3_secret_key } }),
    });
  }
  if (specs.length === 0 && problems.length === 0)
    problems.push('no tenant given: use --tenant NAME (repeatable) or --tenants FILE');
  if (problems.length > 0)
    throw new ConfigError(
      `invalid tenants: ${problems.length} problem(s)`,
      problems,
      'tenant names: lowercase letters, digits and _, starting with a letter',
    );
  return specs;
}
