/**
 * Every failure the operator can act on is a BootstrapError: a message (what failed, on which
 * variable or resource) and a fix (what to do). The exit code is a property of the class, so the
 * mapping error class -> exit code lives here and nowhere else.
 */
export abstract class BootstrapError extends Error {
  abstract readonly exitCode: number;
  /** What the operator should do: a SQL statement to run, a variable to correct, a permission to grant. */
  readonly fix: string | undefined;

  constructor(message: string, fix?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.fix = fix;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** 2: the environment is invalid; nothing was connected to or written. */
export class ConfigError extends BootstrapError {
  readonly exitCode = 2;
  constructor(
    message: string,
    /** One line per invalid variable, all reported at once. */
    readonly problems: readonly string[] = [],
    fix?: string,
  ) {
    super(message, fix);
  }
}

/** 3: PostgreSQL unreachable, authentication refused, unknown database, TLS refused. */
export class DatabaseError extends BootstrapError {
  readonly exitCode = 3;
}

/**
 * 4: tenant schema missing, not usable by the role, not ours, or locked past its timeout;
 * provision: a tenant refused.
 */
export class SchemaError extends BootstrapError {
  readonly exitCode = 4;
}

/** 5: a migration failed, changed after it was applied, or the schema is newer than this binary. */
export class MigrationError extends BootstrapError {
  readonly exitCode = 5;
}

/** 6: S3 storage cannot be used. */
export class StorageError extends BootstrapError {
  readonly exitCode = 6;
}

/** 7: the email provider cannot be used. */
export class EmailError extends BootstrapError {
  readonly exitCode = 7;
}

/** 8: the super admin could not be created or promoted, or the completion marker not written. */
export class SuperAdminError extends BootstrapError {
  readonly exitCode = 8;
}

/** 143 (128 + SIGTERM) / 130 (SIGINT): stopped by a signal before completion; nothing was marked done. */
export class InterruptedError extends BootstrapError {
  readonly exitCode: number;
  constructor(signal: NodeJS.Signals) {
    super(
      `stopped by ${signal} before completion; the setup was not marked as done`,
      'run the bootstrap again: it resumes where it stopped',
    );
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

/** Exit code of an unexpected error: a bug, the only case that prints a stack trace. */
export const INTERNAL_ERROR_EXIT_CODE = 1;

/** fleet check / fleet bootstrap: at least one instance needs the operator (see EXIT_CODES). */
export const FLEET_FAILED_EXIT_CODE = 9;

export const EXIT_CODES: ReadonlyArray<{ code: number; meaning: string }> = [
  { code: 0, meaning: 'done, or nothing to do (SKIP_SETUP unset or false)' },
  { code: 1, meaning: 'unexpected internal error (a bug: the only case that prints a stack trace)' },
  { code: 2, meaning: 'invalid configuration (environment variables, _FILE secrets, command line)' },
  {
    code: 3,
    meaning: 'database unreachable (or lost during the run), authentication refused, unknown database, or TLS refused',
  },
  {
    code: 4,
    meaning:
      'tenant schema missing, not usable by the role, already used by something else, or holding objects or triggers ' +
      "that are not the instance's own; a lock held past DATABASE_LOCK_TIMEOUT (another bootstrap, or the app " +
      'holding one of our tables); provision / deprovision: a right the deployer lacks, a tenant refused, or a lock ' +
      'held past PROVISION_LOCK_TIMEOUT',
  },
  { code: 5, meaning: 'migration failed, changed since it was applied, or schema migrated by a newer version' },
  { code: 6, meaning: 'storage (S3)' },
  { code: 7, meaning: 'email provider' },
  { code: 8, meaning: 'super admin could not be created or promoted' },
  {
    code: 9,
    meaning:
      'fleet check: an instance failed or drifted; fleet bootstrap: an instance failed, or was not started because ' +
      "failures crossed --max-failures (each instance's own code is in the report)",
  },
  { code: 130, meaning: 'interrupted by SIGINT; nothing was marked done' },
  { code: 143, meaning: 'stopped by SIGTERM; nothing was marked done' },
];
