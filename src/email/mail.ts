/**
 * The email provider behind one small interface: verify that it would accept our mail (without
 * sending any), and send one message. smtp.ts and sendgrid.ts implement it; provider.ts loads one.
 */

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

/** "superfasttt <noreply@x>" with the name quoted when it needs to be. */
export function fromHeader(from: string, name: string | null): { address: string; name?: string } {
  return name ? { address: from, name } : { address: from };
}
