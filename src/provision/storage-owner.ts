/**
 * Whose storage is this? Provision leaves proof in every tenant's storage: a small marker object
 * (`<prefix>.superfasttt-tenant`, at the bucket's root in bucket mode) holding the tenant id that
 * provision also writes as the comment of the tenant's schema (COMMENT ON SCHEMA, which only the
 * deployer, the schema's owner, can set). Provision refuses storage that carries another tenant's
 * proof, or that holds data without proof (exit 2, before anything is created); deprovision deletes
 * storage only when its proof matches the schema of the tenant being removed. Two deployments that
 * share a bucket, or a name that maps onto another's storage, can therefore never take each other's.
 * Reading the marker needs no trust in its content: it is parsed as untrusted input, size-bounded.
 */
import { ConfigError, StorageError } from '../errors.js';
import type { S3Session } from '../storage/client.js';
import { httpStatus } from '../storage/s3-errors.js';

export const MARKER_NAME = '.superfasttt-tenant';
/** The proof is a few dozen bytes; anything larger is not ours and is not read further. */
const MAX_MARKER_BYTES = 1024;

export interface StorageLocation {
  mode: 'prefix' | 'bucket';
  bucket: string;
  /** 'tenant_x/' in prefix mode, '' in bucket mode. */
  prefix: string;
}

export interface Ownership {
  tenant_id: string;
  schema: string;
  database: string;
}

export interface LocationState {
  /** The bucket exists (bucket mode) or any object is under the prefix (prefix mode). */
  exists: boolean;
  /** The proof found there; `invalid` when a marker exists but is not one we wrote. */
  marker?: Ownership | 'invalid';
  /** Objects other than the marker and the folder marker (counted up to 10). */
  data: number;
}

export function where(loc: StorageLocation): string {
  return loc.mode === 'bucket' ? `bucket ${loc.bucket}` : `folder ${loc.bucket}/${loc.prefix}`;
}

function notFound(error: unknown): boolean {
  return error instanceof StorageError && httpStatus((error as { cause?: unknown }).cause) === 404;
}

/** Read-only: what is at the location, and whose it says it is. */
export async function inspectLocation(session: S3Session, loc: StorageLocation): Promise<LocationState> {
  const { s3, send } = session;
  if (loc.mode === 'bucket') {
    try {
      await send('HeadBucket', new s3.HeadBucketCommand({ Bucket: loc.bucket }));
    } catch (error) {
      if (notFound(error)) return { exists: false, data: 0 };
      throw error;
    }
  }
  // The proof by its key (a listing shows it only if it sorts among the first keys), then a few keys
  // to tell an empty location from one that holds data.
  const marker = await readMarker(session, loc);
  const page = await send<{ Contents?: Array<{ Key?: string }> }>(
    'ListObjectsV2',
    new s3.ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.prefix || undefined, MaxKeys: 12 }),
  );
  const keys = (page.Contents ?? []).map((o) => o.Key ?? '');
  const data = keys.filter((k) => k !== loc.prefix + MARKER_NAME && k !== loc.prefix).length;
  const exists = loc.mode === 'bucket' || keys.length > 0;
  return { exists, data, ...(marker && { marker }) };
}

/** The proof at the location: undefined when there is none, 'invalid' when it is not one we wrote. */
export async function readMarker(session: S3Session, loc: StorageLocation): Promise<Ownership | 'invalid' | undefined> {
  const { s3, send } = session;
  let body: string;
  try {
    const object = await send<{ Body?: { transformToString(): Promise<string> }; ContentLength?: number }>(
      'GetObject',
      new s3.GetObjectCommand({
        Bucket: loc.bucket,
        Key: loc.prefix + MARKER_NAME,
        Range: `bytes=0-${MAX_MARKER_BYTES - 1}`,
      }),
    );
    body = (await object.Body?.transformToString()) ?? '';
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
  return parseMarker(body.slice(0, MAX_MARKER_BYTES)) ?? 'invalid';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export function parseMarker(text: string): Ownership | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (
      typeof o.tenant_id === 'string' &&
      UUID.test(o.tenant_id) &&
      typeof o.schema === 'string' &&
      IDENT.test(o.schema) &&
      typeof o.database === 'string' &&
      o.database.length <= 63
    ) {
      return { tenant_id: o.tenant_id, schema: o.schema, database: o.database };
    }
  } catch {
    // not JSON: not ours
  }
  return undefined;
}

/**
 * Writes the proof, then reads it back: two deployments sharing the bucket that provision the same
 * name at the same instant both found the location free; the last writer wins, and the other one
 * must learn it here rather than hand out storage that is not its own.
 */
export async function writeMarker(session: S3Session, loc: StorageLocation, owner: Ownership): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(owner) + '\n');
  await session.send(
    'PutObject',
    new session.s3.PutObjectCommand({
      Bucket: loc.bucket,
      Key: loc.prefix + MARKER_NAME,
      Body: body,
      ContentLength: body.length,
      ContentType: 'application/json',
    }),
  );
  const found = await readMarker(session, loc);
  if (found === undefined || found === 'invalid' || found.tenant_id !== owner.tenant_id) {
    throw new ConfigError(
      `${where(loc)} was claimed by ${found === undefined || found === 'invalid' ? 'someone else' : describe(found)} ` +
        `while this tenant was being provisioned: it is not this tenant's storage`,
      [],
      'choose another tenant name, or find out which deployment provisions the same name into this storage',
    );
  }
}

function describe(owner: Ownership): string {
  return `tenant id ${owner.tenant_id} (schema ${owner.schema} in database ${owner.database})`;
}

/**
 * Provision, before anything is created: may this tenant use (or create) the location?
 * `tenantId` is the id on the tenant's schema, when the schema exists and carries one.
 * Returns undefined when it may; throws a ConfigError (exit 2) naming what was found otherwise.
 */
export function assertMayUse(
  state: LocationState,
  loc: StorageLocation,
  tenantId: string | undefined,
  legacyTenant: boolean,
): void {
  const refuse = (found: string) =>
    new ConfigError(
      `${where(loc)} ${found}: it is not this tenant's storage, and nothing was created`,
      [],
      'choose another tenant name; if it is what a deprovisioned tenant of this name left behind, delete it first ' +
        '(deprovision --purge-storage before removing a tenant, or by hand after checking whose it is)',
    );
  if (state.marker === 'invalid')
    throw refuse(`holds a marker object ${loc.prefix}${MARKER_NAME} that superfasttt did not write`);
  if (state.marker) {
    if (state.marker.tenant_id !== tenantId) throw refuse(`belongs to ${describe(state.marker)}`);
    return;
  }
  // Unmarked data: only a tenant that existed before proofs were written may claim it.
  if (state.data > 0 && !legacyTenant)
    throw refuse(
      `already holds ${state.data >= 10 ? '10 or more' : state.data} object(s) and no proof of whose they are`,
    );
}

/**
 * The shared bucket of --storage-mode prefix must not be a tenant's own bucket (a tenant `central`
 * of bucket mode owns superfasttt-central): its folders would be purged with that tenant.
 */
export async function assertSharedBucket(session: S3Session, bucket: string, variable: string): Promise<void> {
  const owner = await readMarker(session, { mode: 'bucket', bucket, prefix: '' });
  if (owner !== undefined) {
    throw new ConfigError(
      `${variable}=${bucket} is ` +
        `${owner === 'invalid' ? "marked as a tenant's own bucket" : `the own bucket of ${describe(owner)}`}: ` +
        `tenants' folders must not live in another tenant's bucket`,
      [],
      `give ${variable} a bucket of its own, whose name does not ` +
        `start with superfasttt- (the names of --storage-mode bucket)`,
    );
  }
}

/**
 * Deprovision, before deleting: the location must carry this tenant's proof. 'match', 'gone' when
 * there is nothing there (already purged), or why it may not be deleted.
 */
export function proofMatches(
  state: LocationState,
  loc: StorageLocation,
  tenantId: string | undefined,
): 'match' | 'gone' | string {
  if (!state.exists || (state.data === 0 && !state.marker)) return 'gone';
  if (!tenantId) return `the tenant's schema carries no tenant id, so ${where(loc)} cannot be proven to be its storage`;
  if (state.marker === 'invalid') return `${where(loc)} holds a marker object that superfasttt did not write`;
  if (!state.marker) return `${where(loc)} holds ${state.data} or more object(s) but no proof of whose they are`;
  if (state.marker.tenant_id !== tenantId)
    return `${where(loc)} belongs to ${describe(state.marker)}, not to this tenant (tenant id ${tenantId})`;
  return 'match';
}
