// Type test (checked by `npm run typecheck`, never run): each @ts-expect-error below must be an
// error, or tsc fails with "Unused '@ts-expect-error' directive". It proves that the compiler, not a
// run-time check, keeps the code from using a setting its configuration may not have.
import type { ParsedEnv } from './instance.js';
import type { EmailTarget, InstanceConfig, StorageTarget } from './targets.js';

export function smtpHost(env: ParsedEnv): string {
  if (env.EMAIL_PROVIDER === 'smtp') return env.SMTP_HOST; // required in the smtp branch
  // @ts-expect-error: outside EMAIL_PROVIDER=smtp, SMTP_HOST may be unset
  return env.SMTP_HOST;
}

export function bucket(env: ParsedEnv): string {
  if (env.STORAGE_PROVIDER === 's3') return env.STORAGE_BUCKET;
  // @ts-expect-error: without STORAGE_PROVIDER=s3, STORAGE_BUCKET may be unset
  return env.STORAGE_BUCKET;
}

export function appUrl(env: ParsedEnv): string {
  if (env.AUTO_SUPERADMIN_WELCOME_EMAIL) return env.APP_URL;
  // @ts-expect-error: without the welcome email, APP_URL may be unset
  return env.APP_URL;
}

export const noHost: EmailTarget = {
  provider: 'smtp',
  // @ts-expect-error: SMTP settings without the host do not compile
  settings: { provider: 'smtp', from: 'a@example.com', from_name: null, port: 587, secure: 'starttls' },
  username: 'user',
  password: 'secret',
  timeoutSec: 10,
};

// @ts-expect-error: a SendGrid target without its key does not compile
export const noKey: EmailTarget = {
  provider: 'sendgrid',
  settings: { provider: 'sendgrid', from: 'a@example.com', from_name: null, api_url: 'https://api.sendgrid.com' },
  timeoutSec: 10,
};

// @ts-expect-error: a storage target without its keys does not compile
export const noKeys: StorageTarget = {
  settings: {
    provider: 's3',
    endpoint: null,
    bucket: 'b-1',
    region: 'us-east-1',
    prefix: null,
    force_path_style: false,
  },
  timeoutSec: 10,
  vars: {
    endpoint: 'STORAGE_ENDPOINT',
    bucket: 'STORAGE_BUCKET',
    region: 'STORAGE_REGION',
    accessKey: 'STORAGE_ACCESS_KEY',
    secretKey: 'STORAGE_SECRET_KEY',
  },
};

export function storageUsed(config: InstanceConfig): string {
  // @ts-expect-error: storage is optional (STORAGE_PROVIDER unset): it must be checked first
  return config.storage.settings.bucket;
}
