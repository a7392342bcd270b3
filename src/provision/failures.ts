/**
 * What a failure during provision or deprovision tells the operator: a tenant's unexpected error
 * as its own SchemaError (exit 4, the other tenants go on), a lock waited for past
 * PROVISION_LOCK_TIMEOUT as a SchemaError naming who holds it.
 */
import type { DatabaseTarget } from '../config/targets.js';
import { errorCode, type Sql } from '../db/connect.js';
import { isLockTimeout, lockTimeoutError } from '../db/locks.js';
import { BootstrapError, SchemaError } from '../errors.js';
import type { TenantSpec } from './tenants.js';

export function tenantFailure(spec: TenantSpec, error: unknown): BootstrapError {
  if (error instanceof BootstrapError) return error;
  return new SchemaError(
    `tenant ${spec.name}: ${(error as Error).message} (${errorCode(error) || 'error'})`,
    "check the deployer's rights (docs/provisioning.md)",
    { cause: error },
  );
}

/**
 * For `.catch()`: a lock timeout becomes the error naming the lock's holders (on `schemas`, while
 * `during`); anything else is thrown as it is.
 */
export function lockTimeoutAs(
  sql: Sql,
  database: DatabaseTarget,
  schemas: readonly string[],
  during: string,
): (error: unknown) => Promise<never> {
  return async (error) => {
    if (!isLockTimeout(error)) throw error;
    const { lockTimeoutSec, vars } = database;
    throw await lockTimeoutError(sql, schemas, during, vars.lockTimeout, lockTimeoutSec, error);
  };
}
