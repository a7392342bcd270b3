/**
 * The email provider behind one small interface: verify that it would accept our mail (without
 * sending any), and send one message. The SMTP and SendGrid libraries are loaded only when used.
 */
import type { Env } from '../config/schema.js';
import { emailSettings } from '../settings.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface EmailProvider {
  /** What was verified, for the log line. Throws EmailError. */
  verify(signal: AbortSignal): Promise<string>;
  send(mail: Mail, signal: AbortSignal): Promise<void>;
  close(): void;
}

let smtpModule: Promise<typeof import('./smtp.js')> | undefined;
let sendgridModule: Promise<typeof import('./sendgrid.js')> | undefined;

/** Starts loading the library of the configured provider, once. */
export function loadEmailLibrary(env: Env): Promise<unknown> | undefined {
  switch (env.EMAIL_PROVIDER) {
    case 'smtp':
      smtpModule ??= import('./smtp.js');
      return smtpModule;
    case 'sendgrid':
      sendgridModule ??= import('./sendgrid.js');
      return sendgridModule;
    case undefined:
      return undefined;
  }
}

export async function createEmailProvider(env: Env): Promise<EmailProvider | undefined> {
  const settings = emailSettings(env);
  await loadEmailLibrary(env);
  switch (settings?.provider) {
    case 'smtp':
      return (await smtpModule!).smtpProvider(env, settings);
    case 'sendgrid':
      return (await sendgridModule!).sendgridProvider(env, settings);
    case undefined:
      return undefined;
  }
}

/** "superfasttt <noreply@x>" with the name quoted when it needs to be. */
export function fromHeader(from: string, name: string | null): { address: string; name?: string } {
  return name ? { address: from, name } : { address: from };
}
