/**
 * Last line of defence against leaking secrets: every line we print goes through redact().
 * Secrets are registered as soon as they are read (before validation), with the encodings in which
 * a library could echo them (a driver error that embeds the connection URL, for instance).
 */
const secrets = new Set<string>();

export const MASK = '***';

export function registerSecret(value: string | undefined): void {
  // Very short values would mask ordinary words; a secret that short is refused by validation anyway.
  if (!value || value.length < 4) return;
  for (const form of [value, value.trim(), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]) {
    if (form.length >= 4) secrets.add(form);
  }
}

/** user:password@ in any URL-looking text, whether or not the password was registered. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@\s/]*@/gi;

export function redact(text: string): string {
  let out = text;
  // Registered secrets first, longest first (a secret containing another one is masked whole): the
  // URL rule below stops at the first @, and would leave the rest of a password holding one.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(MASK);
  }
  return out.replace(URL_CREDENTIALS, `$1:${MASK}@`);
}
