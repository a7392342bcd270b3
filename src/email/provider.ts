/**
 * The email provider behind one small interface: verify that it would accept our mail (without
 * sending any), and send one message. The SMTP and SendGrid libraries are loaded only when used.
 */
import type { EmailTarget } from '../config/targets.js';

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

function smtpLibrary() {
  smtpModule ??= import('./smtp.js');
  return smtpModule;
}

function sendgridLibrary() {
  sendgridModule ??= import('./sendgrid.js');
  return sendgridModule;
}

/** Starts loading the library of the configured provider, once. */
export function loadEmailLibrary(target: EmailTarget | undefined): Promise<unknown> | undefined {
  switch (target?.provider) {
    case 'smtp':
      return smtpLibrary();
    case 'sendgrid':
      return sendgridLibrary();
    case undefined:
      return undefined;
  }
}

export async function createEmailProvider(target: EmailTarget): Promise<EmailProvider> {
  switch (target.provider) {
    case 'smtp':
      return (await smtpLibrary()).smtpProvider(target);
    case 'sendgrid':
      return (await sendgridLibrary()).sendgridProvider(target);
  }
}

/** "superfasttt <noreply@x>" with the name quoted when it needs to be. */
export function fromHeader(from: string, name: string | null): { address: string; name?: string } {
  return name ? { address: from, name } : { address: from };
}
