/**
 * The queries the steps run on the instance's tables, typed (Kysely, over the run's postgres.js
 * session or a transaction of it: see kysely.ts). Each takes the Kysely first, so that the same
 * function runs on the session (`await kyselyOver(sql)`) or inside `sql.begin(async (tx) => ...)`
 * (`kyselyOver(tx)`). Same SQL semantics as the tagged templates they replace (named on each, as
 * src/steps/<file>:<line> of commit 6f1920e).
 * Type imports only from kysely: this module costs nothing until a Kysely exists.
 */
import type { Expression, ExpressionBuilder, Selectable } from 'kysely';
import { HISTORY_TABLE, WELCOME_KEY } from './tables.js';
import type { Database, JsonbInput, TableName } from './database.js';
import type { Db } from './kysely.js';

/**
 * A jsonb value as a query parameter: `cast(cast($n as text) as jsonb)` with the JSON text of the
 * value, so the column holds the object itself (jsonb_typeof 'object'), as `sql.json(value)` stores
 * it. The inner cast matters: postgres.js serializes a parameter by the type the server infers
 * for it, and JSON.stringifies whatever goes to a jsonb one, so JSON text sent there directly would
 * be stored as one JSON string; as text, it is sent as is and parsed by the cast.
 * Objects and arrays only (a string would be a JSON string inside jsonb).
 */
export function jsonb<DB, TB extends keyof DB>(eb: ExpressionBuilder<DB, TB>, value: object): Expression<JsonbInput> {
  const text = value === null || typeof value !== 'object' ? undefined : JSON.stringify(value);
  if (typeof text !== 'string') throw new TypeError('jsonb: the value must be an object or an array');
  return eb.cast<JsonbInput>(eb.cast<string>(eb.val(text), 'text'), 'jsonb');
}

/** Whether all these tables exist (resolved by the search_path). */
export async function tablesExist(db: Db, tables: readonly TableName[]): Promise<boolean> {
  const row = await db
    .selectNoFrom((eb) =>
      eb
        .and(tables.map((table) => eb(eb.fn<string | null>('to_regclass', [eb.val(table)]), 'is not', null)))
        .as('ready'),
    )
    .executeTakeFirstOrThrow();
  return row.ready === true; // SqlBool: PostgreSQL answers a boolean
}

export type UserLogin = Pick<Selectable<Database['users']>, 'id' | 'role' | 'password_hash'>;

/** The account with this email (lowercase, as stored). */
export function findUserByEmail(db: Db, email: string): Promise<UserLogin | undefined> {
  return db.selectFrom('users').select(['id', 'role', 'password_hash']).where('email', '=', email).executeTakeFirst();
}

export interface NewSuperAdmin {
  email: string;
  first_name: string;
  last_name: string;
  phone?: string | null | undefined;
  password_hash: string;
}

/** A new user with role super_admin. */
export async function insertSuperAdmin(db: Db, admin: NewSuperAdmin): Promise<void> {
  await db
    .insertInto('users')
    .values({
      email: admin.email,
      first_name: admin.first_name,
      last_name: admin.last_name,
      phone: admin.phone ?? null,
      password_hash: admin.password_hash,
      role: 'super_admin',
    })
    .execute();
}

/** role = super_admin, updated_at = now(). */
export async function promoteToSuperAdmin(db: Db, userId: string): Promise<void> {
  await db
    .updateTable('users')
    .set((eb) => ({ role: 'super_admin', updated_at: eb.fn<Date>('now') }))
    .where('id', '=', userId)
    .execute();
}

/** password_hash = hash, updated_at = now(). */
export async function setPasswordHash(db: Db, userId: string, passwordHash: string): Promise<void> {
  await db
    .updateTable('users')
    .set((eb) => ({ password_hash: passwordHash, updated_at: eb.fn<Date>('now') }))
    .where('id', '=', userId)
    .execute();
}

/** Insert or overwrite a setting, whatever it held. */
export async function putSetting(db: Db, key: string, value: object): Promise<void> {
  await db
    .insertInto('instance_settings')
    .values((eb) => ({ key, value: jsonb(eb, value) }))
    .onConflict((oc) =>
      oc.column('key').doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), updated_at: eb.fn<Date>('now') })),
    )
    .execute();
}

/**
 * Insert a setting, or update it only when its value differs (updated_at then moves); true when a
 * row was written, false when it already held this value.
 */
export async function recordSettingIfChanged(db: Db, key: string, value: object): Promise<boolean> {
  const rows = await db
    .insertInto('instance_settings')
    .values((eb) => ({ key, value: jsonb(eb, value) }))
    .onConflict((oc) =>
      oc
        .column('key')
        .doUpdateSet((eb) => ({ value: eb.ref('excluded.value'), updated_at: eb.fn<Date>('now') }))
        .where((eb) => eb('instance_settings.value', 'is distinct from', eb.ref('excluded.value'))),
    )
    .returning('key')
    .execute();
  return rows.length > 0;
}

/** The welcome email's state in instance_settings (whatever the app or an older version wrote). */
export interface WelcomeEmail {
  status?: string;
  to?: string;
  sent_at?: string;
}

/** The welcome email is to be sent to `to` (overwrites any earlier state). */
export function markWelcomePending(db: Db, to: string): Promise<void> {
  return putSetting(db, WELCOME_KEY, { status: 'pending', to });
}

/** The welcome email's state, undefined without one. */
export async function readWelcomeEmail(db: Db): Promise<WelcomeEmail | undefined> {
  const row = await db
    .selectFrom('instance_settings')
    .select('value')
    .where('key', '=', WELCOME_KEY)
    .executeTakeFirst();
  if (!row) return undefined;
  const value = row.value;
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as WelcomeEmail) : {};
}

/** The welcome email was sent (value and updated_at replaced); false when no state was there. */
export async function markWelcomeSent(db: Db, to: string, sentAt: Date = new Date()): Promise<boolean> {
  const result = await db
    .updateTable('instance_settings')
    .set((eb) => ({
      value: jsonb(eb, { status: 'sent', to, sent_at: sentAt.toISOString() }),
      updated_at: eb.fn<Date>('now'),
    }))
    .where('key', '=', WELCOME_KEY)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export type SetupState = Pick<Selectable<Database['setup_state']>, 'completed' | 'completed_by' | 'completed_at'>;

/** The completion marker (its one row; undefined if it was never created). */
export function readSetupState(db: Db): Promise<SetupState | undefined> {
  return db.selectFrom('setup_state').select(['completed', 'completed_by', 'completed_at']).executeTakeFirst();
}

/**
 * Marks the setup completed by the bootstrap (now, this version) unless it already is; true when
 * this call marked it (`where not completed returning 1`).
 */
export async function markSetupCompleted(db: Db, bootstrapVersion: string): Promise<boolean> {
  const rows = await db
    .updateTable('setup_state')
    .set((eb) => ({
      completed: true,
      completed_at: eb.fn<Date>('now'),
      completed_by: 'bootstrap',
      bootstrap_version: bootstrapVersion,
    }))
    .where((eb) => eb.not(eb.ref('completed')))
    .returning((eb) => eb.lit(1).as('marked'))
    .execute();
  return rows.length > 0;
}

export type HistoryRow = Pick<Selectable<Database[typeof HISTORY_TABLE]>, 'name' | 'checksum' | 'bootstrap_version'>;

/** The applied migrations, by name. */
export function readHistory(db: Db): Promise<HistoryRow[]> {
  return db.selectFrom(HISTORY_TABLE).select(['name', 'checksum', 'bootstrap_version']).orderBy('name').execute();
}

/** One applied migration (applied_at: now(), the column's default). */
export async function insertHistory(db: Db, row: HistoryRow): Promise<void> {
  await db
    .insertInto(HISTORY_TABLE)
    .values({ name: row.name, checksum: row.checksum, bootstrap_version: row.bootstrap_version })
    .execute();
}
