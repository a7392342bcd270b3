/**
 * The non-secret settings of the instance, derived once from the environment: the steps use
 * them, and they are recorded in instance_settings (with the completion marker) for the app.
 * Keys and passwords are never part of them.
 */
import type { Env } from './config/schema.js';

export interface StorageSettings {
  provider: 's3';
  endpoint: string | null;
  bucket: string;
  region: string;
  prefix: string | null;
  force_path_style: boolean;
}

export type EmailSettings =
  | {
      provider: 'smtp';
      from: string;
      from_name: string | null;
      host: string;
      port: number;
      secure: 'starttls' | 'tls' | 'none';
    }
  | { provider: 'sendgrid'; from: string; from_name: string | null; api_url: string };

/** Key `apis`: which API modules the app enables. */
export type ApiSettings = { all: true; modules: null } | { all: false; modules: string[] };

export function storageSettings(env: Env): StorageSettings | undefined {
  if (env.STORAGE_PROVIDER !== 's3') return undefined;
  return {
    provider: 's3',
    endpoint: env.STORAGE_ENDPOINT ?? null,
    bucket: env.STORAGE_BUCKET!,
    region: env.STORAGE_REGION,
    prefix: env.STORAGE_PREFIX ?? null,
    // S3-compatible providers want path-style; AWS itself prefers virtual-hosted buckets.
    force_path_style: env.STORAGE_FORCE_PATH_STYLE ?? env.STORAGE_ENDPOINT !== undefined,
  };
}

export function emailSettings(env: Env): EmailSettings | undefined {
  const common = { from: env.EMAIL_FROM!, from_name: env.EMAIL_FROM_NAME ?? null };
  switch (env.EMAIL_PROVIDER) {
    case 'smtp':
      return {
        provider: 'smtp',
        ...common,
        host: env.SMTP_HOST!,
        port: env.SMTP_PORT ?? (env.SMTP_SECURE === 'tls' ? 465 : 587),
        secure: env.SMTP_SECURE,
      };
    case 'sendgrid':
      return { provider: 'sendgrid', ...common, api_url: env.SENDGRID_API_URL };
    case undefined:
      return undefined;
  }
}

export function apiSettings(env: Env): ApiSettings {
  return env.ENABLED_APIS ? { all: false, modules: env.ENABLED_APIS } : { all: true, modules: null };
}

/** Everything recorded in instance_settings, by key. A provider left unset is `{"provider": null}`. */
export function instanceSettings(env: Env): Record<string, object> {
  return {
    storage: storageSettings(env) ?? { provider: null },
    email: emailSettings(env) ?? { provider: null },
    apis: apiSettings(env),
  };
}
