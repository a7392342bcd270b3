/**
 * Holding the bootstrap lock of a schema as a stuck run would: the tenant role itself takes the
 * EXCLUSIVE lock on <schema>.superfasttt_lock in an open transaction (the table must be the
 * tenant's own, or the schema would not pass the ownership check).
 */
import postgres from 'postgres';
import type { Tenant } from './postgres.js';

export interface HeldLock {
  pid: number;
  release(): Promise<void>;
}

export async function holdBootstrapLock(tenant: Tenant, applicationName = 'stuck-bootstrap'): Promise<HeldLock> {
  const sql = postgres(tenant.url, {
    max: 1,
    onnotice: () => {},
    ssl: tenant.url.includes('sslmode=require') ? { rejectUnauthorized: false } : false,
    connection: { application_name: applicationName },
  });
  await sql`create table if not exists ${sql(tenant.schema)}.superfasttt_lock ()`;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => (locked = resolve));
  const transaction = sql.begin(async (tx) => {
    const [me] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await tx`lock table ${tx(tenant.schema)}.superfasttt_lock in exclusive mode`;
    locked(me!.pid);
    await released;
  });
  return {
    pid: await Promise.race([pid, transaction.then(() => -1)]),
    async release() {
      release();
      await transaction.catch(() => {});
      await sql.end({ timeout: 1 });
    },
  };
}
