/**
 * The configured email provider (mail.ts' interface), its library (SMTP or SendGrid) loaded only when
 * used.
 */
import type { EmailTarget } from '../config/targets.js';
import type { EmailProvider } from './mail.js';

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
