/**
 * The PostgreSQL majors this program supports: `npm test` runs the bootstrap, check, provision and
 * isolation tests against each of them (test/versions.test.ts). Outside the range the database step
 * warns (the connection itself refuses only servers too old to work at all): majors differ in
 * default privileges (PUBLIC may create in schema public before 15) and in what CREATEROLE allows
 * (nearly superuser before 16), so an untested one is a risk to isolation, not just to features.
 */
export const POSTGRES_MIN_SUPPORTED = 14;
export const POSTGRES_MAX_SUPPORTED = 18;

/** The major version from `server_version`: "16.14", "18beta1", "17.2 (Debian 17.2-1.pgdg120+1)". */
export function serverMajor(version: string): number | undefined {
  const match = /^(\d+)/.exec(version.trim());
  return match ? Number(match[1]) : undefined;
}

/** The warning for a server outside the supported range, or undefined when it is supported. */
export function unsupportedServerWarning(version: string): string | undefined {
  const major = serverMajor(version);
  const range = `PostgreSQL ${POSTGRES_MIN_SUPPORTED} to ${POSTGRES_MAX_SUPPORTED}`;
  if (major === undefined) return `PostgreSQL "${version}": cannot tell its major version; supported: ${range}`;
  if (major < POSTGRES_MIN_SUPPORTED) {
    return (
      `PostgreSQL ${version} is older than the supported versions (${range}): untested, and its defaults are ` +
      `weaker (every role may create in schema public): upgrade the server`
    );
  }
  if (major > POSTGRES_MAX_SUPPORTED) {
    return (
      `PostgreSQL ${version} is newer than the supported versions (${range}): untested with this release of ` +
      `superfasttt-bootstrap; check the instance (check command) and the tenants' isolation`
    );
  }
  return undefined;
}
