/**
 * libpq's environment variables (PGHOST, PGSSLMODE, PGPASSWORD, ...) are not read: DATABASE_URL
 * (or PROVISION_DATABASE_URL) and our DATABASE_* variables are the one source of the connection.
 * postgres.js would read some of them as defaults (PGHOST, PGUSER, PGPASSWORD, PGDATABASE, PGAPPNAME,
 * PGTARGETSESSIONATTRS, PGSSLNEGOTIATION, PGDEBUG, ... every option it has, as PG + its name), so
 * they are removed from the process' environment before any connection, and the operator is told.
 */

/** libpq's documented variables and postgres.js' own: named in the warning as libpq's when they are. */
export const LIBPQ_VARIABLES = [
  'PGHOST',
  'PGHOSTADDR',
  'PGPORT',
  'PGDATABASE',
  'PGUSER',
  'PGPASSWORD',
  'PGPASSFILE',
  'PGREQUIREAUTH',
  'PGCHANNELBINDING',
  'PGSERVICE',
  'PGSERVICEFILE',
  'PGOPTIONS',
  'PGAPPNAME',
  'PGSSLMODE',
  'PGREQUIRESSL',
  'PGSSLNEGOTIATION',
  'PGSSLCOMPRESSION',
  'PGSSLCERT',
  'PGSSLKEY',
  'PGSSLCERTMODE',
  'PGSSLROOTCERT',
  'PGSSLCRL',
  'PGSSLCRLDIR',
  'PGSSLSNI',
  'PGREQUIREPEER',
  'PGSSLMINPROTOCOLVERSION',
  'PGSSLMAXPROTOCOLVERSION',
  'PGMINPROTOCOLVERSION',
  'PGMAXPROTOCOLVERSION',
  'PGGSSENCMODE',
  'PGKRBSRVNAME',
  'PGGSSLIB',
  'PGGSSDELEGATION',
  'PGCONNECT_TIMEOUT',
  'PGCLIENTENCODING',
  'PGTARGETSESSIONATTRS',
  'PGLOADBALANCEHOSTS',
  'PGDATESTYLE',
  'PGTZ',
  'PGGEQO',
  'PGSYSCONFDIR',
  'PGLOCALEDIR',
] as const;

/** Any PG-prefixed name postgres.js may read (PG + an option name in upper case), libpq's included. */
const PG_VARIABLE = /^PG[A-Z0-9_]*$/;

/** Removes every PG* variable from `env` (process.env) and returns their names, sorted (never their values). */
export function neutraliseLibpqEnvironment(env: NodeJS.ProcessEnv): string[] {
  const names = Object.keys(env)
    .filter((name) => PG_VARIABLE.test(name))
    .sort();
  for (const name of names) delete env[name];
  return names;
}

export function libpqEnvironmentWarning(names: readonly string[]): string | undefined {
  if (names.length === 0) return undefined;
  const known = names.filter((name) => (LIBPQ_VARIABLES as readonly string[]).includes(name));
  const list = names.length > 12 ? `${names.slice(0, 12).join(', ')} and ${names.length - 12} more` : names.join(', ');
  return (
    `${list} ${names.length > 1 ? 'are' : 'is'} set but ignored${known.length > 0 ? ' (libpq variables)' : ''}: ` +
    `the connection comes from DATABASE_URL (PROVISION_DATABASE_URL for provision and deprovision) and DATABASE_SSL* ` +
    `only; put host, port, user, password, database, sslmode and sslrootcert in the URL`
  );
}
