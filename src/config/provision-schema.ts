/**
 * The deployment machine's environment for `provision` and `deprovision`: admin credentials the
 * instances themselves never hold. Same builders and _FILE convention as the instance's schema.
 */
import * as v from 'valibot';
import { ConfigError } from '../errors.js';
import { integer, required, withDefault } from './fields.js';
import { readVariables, registerUrlPassword } from './load.js';
import { databaseUrl } from './schema.js';

export const provisionSchema = v.object({
  PROVISION_DATABASE_URL: required(
    databaseUrl(),
    'URL of the deployer role: CREATEROLE and CREATE on the database (ideally its owner), not a superuser. The tenants\' URLs are derived from it (host, port, database, sslmode).',
    { group: 'provision', secret: true, example: 'postgres://deployer:CHANGE_ME@postgres:5432/superfasttt?sslmode=verify-full' },
  ),
  PROVISION_CONNECTION_LIMIT: withDefault(integer(1, 10_000), '20', 'Connection limit of each tenant role.', { group: 'provision', example: '20' }),
  PROVISION_CONNECT_TIMEOUT: withDefault(integer(1, 3600, ' (seconds)'), '60', 'Seconds to keep retrying an unreachable server.', {
    group: 'provision',
    example: '60',
  }),
});

export type ProvisionEnv = v.InferOutput<typeof provisionSchema>;

export function loadProvisionConfig(raw: NodeJS.ProcessEnv): ProvisionEnv {
  const names = Object.keys(provisionSchema.entries);
  const { input, problems } = readVariables(names, ['PROVISION_DATABASE_URL'], raw);
  registerUrlPassword(input.PROVISION_DATABASE_URL);
  const result = v.safeParse(provisionSchema, input);
  for (const issue of result.issues ?? []) problems.push(`${issue.path?.map((p) => String(p.key)).join('.')}: ${issue.message}`);
  if (problems.length > 0 || !result.success) {
    throw new ConfigError(`invalid configuration: ${problems.length} problem(s)`, problems, 'correct the variables listed above (see the README, "Provisioning")');
  }
  return result.output;
}
