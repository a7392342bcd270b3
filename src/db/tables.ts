/** The program's own tables in the tenant schema, beside those of migrations/*.sql. */

/** The migration history: name, checksum, applied_at, bootstrap_version. */
export const HISTORY_TABLE = 'superfasttt_migrations';

/** Empty; the bootstrap holds an EXCLUSIVE lock on it while it runs (see lock.ts). */
export const BOOTSTRAP_LOCK_TABLE = 'superfasttt_lock';

/** The instance_settings key of the welcome email's state: pending (superadmin step), then sent (welcome step). */
export const WELCOME_KEY = 'welcome_email';
