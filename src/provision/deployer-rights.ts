/**
 * The deployer's rights, checked once per provision run before anything is changed: CREATEROLE
 * (or superuser) and CREATE on the database, with what to grant when one is missing; and the
 * warning that before PostgreSQL 16, CREATEROLE is almost a superuser's power.
 */
import type { DatabaseTarget } from '../config/targets.js';
import type { Connection } from '../db/connect.js';
import { SchemaError } from '../errors.js';
import type { Logger } from '../log.js';

export async function checkDeployer(db: Connection, target: DatabaseTarget): Promise<void> {
  const { database } = target.url;
  const [me] = await db.sql<{ user: string; createrole: boolean; superuser: boolean; create: boolean }[]>`
    select current_user as user, rolcreaterole as createrole, rolsuper as superuser,
           has_database_privilege(current_database(), 'CREATE') as create
    from pg_roles where rolname = current_user`;
  const missing = [
    !me?.createrole && !me?.superuser && 'CREATEROLE',
    !me?.create && `CREATE on database ${database}`,
  ].filter(Boolean);
  if (missing.length > 0) {
    const grants = [
      !me?.createrole && `ALTER ROLE "${me?.user}" CREATEROLE`,
      !me?.create && `GRANT CREATE ON DATABASE "${database}" TO "${me?.user}"`,
    ];
    throw new SchemaError(
      `the deployer role ${me?.user} lacks ${missing.join(' and ')}`,
      `as a superuser, run: ${grants.filter(Boolean).join('; ')}`,
    );
  }
}

/** Before 16, CREATEROLE grants membership in any role, pg_execute_server_program included. */
export function warnIfCreateroleIsBroad(db: Connection, log: Logger): void {
  if (Number.parseInt(db.serverVersion, 10) <= 15) {
    log.warn(
      `PostgreSQL ${db.serverVersion}: before 16, CREATEROLE lets the deployer take almost any right (even run ` +
        `programs on the server): keep its credentials like a superuser's`,
      { step: 'provision' },
    );
  }
}
