/**
 * `deprovision --tenant NAME --yes`: drops the tenant's schema (with everything in it) and its
 * role. Without --yes it only prints what it would do. Storage is not touched here.
 */
import { parseOptions } from '../cli-options.js';
import { loadProvisionConfig } from '../config/provision-schema.js';
import { connect } from '../db/connect.js';
import { quoteIdent } from '../db/sql-text.js';
import { ConfigError } from '../errors.js';
import { PROVISION_LOCK } from '../provision/tenant-sql.js';
import { tenantSpecs } from '../provision/tenants.js';
import type { CommandInput } from './bootstrap.js';

export interface DeprovisionOptions {
  tenants: string[];
  yes: boolean;
}

export function deprovisionOptions(args: readonly string[]): DeprovisionOptions {
  const o = parseOptions('deprovision', args, { flags: ['--yes'], repeatable: ['--tenant'] });
  const tenants = o.lists.get('--tenant') ?? [];
  if (tenants.length === 0) throw new ConfigError('deprovision needs --tenant NAME', [], 'name the tenant(s) to remove');
  return { tenants, yes: o.flags.has('--yes') };
}

export async function deprovision(input: CommandInput, opts: DeprovisionOptions): Promise<number> {
  const specs = tenantSpecs(opts.tenants, undefined);
  const env = loadProvisionConfig(input.env);
  const { database } = env.PROVISION_DATABASE_URL;
  const plan = specs.map((spec) => [
    `DROP SCHEMA IF EXISTS ${quoteIdent(spec.schema)} CASCADE`,
    `REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(spec.role)}`,
    `DROP ROLE IF EXISTS ${quoteIdent(spec.role)}`,
  ]);
  if (!opts.yes) {
    process.stdout.write(`deprovision (dry run: add --yes to do it) would run on database ${database}:\n${plan.flat().map((s) => `  ${s};`).join('\n')}\n`);
    return 0;
  }
  const db = await connect(
    { DATABASE_URL: env.PROVISION_DATABASE_URL, DATABASE_SSL: false, DATABASE_SSL_CA: undefined, DATABASE_SSL_CA_FILE: undefined, DATABASE_CONNECT_TIMEOUT: env.PROVISION_CONNECT_TIMEOUT },
    input.log,
    input.signal,
  );
  try {
    for (const [i, spec] of specs.entries()) {
      await db.sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${PROVISION_LOCK[0]}, ${PROVISION_LOCK[1]})`;
        const [role] = await tx`select 1 from pg_roles where rolname = ${spec.role}`;
        for (const statement of plan[i]!) {
          if (!role && !statement.startsWith('DROP SCHEMA')) continue; // REVOKE needs the role
          await tx.unsafe(statement);
        }
      });
      input.log.info(`${spec.name}: schema ${spec.schema} and role ${spec.role} removed`, { step: 'deprovision' });
    }
  } finally {
    await db.sql.end({ timeout: 5 });
  }
  process.stdout.write(`deprovision: ${specs.length} tenant(s) removed\n`);
  return 0;
}
