/**
 * Last line of defence against leaking secrets: every line we print goes through redact().
 * Secrets are registered as soon as they are read (before validation), with the encodings in which
 * a library could echo them (a driver error that embeds the connection URL, for instance).
 */
const secrets = new Set<string>();
/**
 * The secrets by their first KEY characters, longest first: redact() looks each position of a text up
 * once, so its cost does not grow with the number of secrets (a fleet run registers thousands).
 */
let index: Map<string, string[]> | undefined;
const KEY = 4;

export const MASK = '***';

export function registerSecret(value: string | undefined): void {
  // Very short values would mask ordinary words; a secret that short is refused by validation anyway.
  if (!value || value.length < KEY) return;
  for (const form of [value, value.trim(), encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]) {
    if (form.length >= KEY && !secrets.has(form)) {
      secrets.add(form);
      index = undefined;
    }
  }
}

function secretIndex(): Map<string, string[]> {
  const built = new Map<string, string[]>();
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    const key = secret.slice(0, KEY);
    const list = built.get(key);
    if (list) list.push(secret);
    else built.set(key, [secret]);
  }
  return built;
}

/** user:password@ in any URL-looking text, whether or not the password was registered. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@\s/]*@/gi;

export function redact(text: string): string {
  let out = text;
  if (secrets.size > 0) {
    // Left to right, the longest secret starting at each position first (a secret containing another one is
    // masked whole): the URL rule below stops at the first @, and would leave the rest of a password holding one.
    index ??= secretIndex();
    let masked = '';
    let from = 0;
    for (let i = 0; i + KEY <= text.length; ) {
      const hit = index.get(text.slice(i, i + KEY))?.find((secret) => text.startsWith(secret, i));
      if (hit) {
        masked += `${text.slice(from, i)}${MASK}`;
        i += hit.length;
        from = i;
      } else i++;
    }
    out = masked + text.slice(from);
  }
  return out.replace(URL_CREDENTIALS, `$1:${MASK}@`);
}
