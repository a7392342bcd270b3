/**
 * Small valibot builders for environment variables. Every variable is a string (or unset) in the
 * environment; each builder validates it and turns it into the value the steps use.
 *
 * Each field carries its documentation (description + metadata), so the one schema in schema.ts
 * is the single source for validation, `--help`, the table of docs/configuration.md and `.env.example`.
 * Messages never include the received value: some variables are secrets.
 */
import * as v from 'valibot';

export type Group = 'setup' | 'database' | 'storage' | 'email' | 'superadmin' | 'logging' | 'provision';

export type FieldDoc = {
  group: Group;
  /** Required when SKIP_SETUP=true (the only time the schema is applied). */
  required: boolean;
  /** Can be read from the file named by NAME_FILE; never printed. */
  secret: boolean;
  /** Default as the operator would write it, for the docs. */
  default?: string;
  /** Example value for `.env.example`. */
  example: string;
  /** Required only when another variable has this value ('*': is set); checked in load.ts. */
  requiredWhen?: readonly [variable: string, value: string];
  /** Default that depends on other variables, in words, for the docs. */
  defaultText?: string;
};

type Doc = Omit<FieldDoc, 'required' | 'secret' | 'default'> & Partial<Pick<FieldDoc, 'secret'>>;

const BOOLEAN_VALUES = ['true', 'false'] as const;

/** When a condition holds, in the words the docs use. */
export function conditionText([variable, value]: readonly [string, string]): string {
  return value === '*' ? `${variable} is set` : `${variable}=${value}`;
}

function documented<TSchema extends v.GenericSchema<string | undefined, unknown>>(
  schema: TSchema,
  description: string,
  doc: Doc,
  extra: { required: boolean; default?: string },
) {
  const meta: FieldDoc = { secret: false, ...doc, ...extra };
  return v.pipe(schema, v.description(description), v.metadata(meta));
}

export function required<TOut>(pipeline: v.GenericSchema<string, TOut>, description: string, doc: Doc) {
  // In the environment, the only non-string is a missing variable.
  const value = v.pipe(v.string('is required'), guarded(pipeline, doc));
  return documented(value, description, doc, { required: true });
}

export function optional<TOut>(pipeline: v.GenericSchema<string, TOut>, description: string, doc: Doc) {
  return documented(v.optional(guarded(pipeline, doc)), description, doc, { required: false });
}

export function withDefault<TOut>(
  pipeline: v.GenericSchema<string, TOut>,
  defaultText: string,
  description: string,
  doc: Doc,
) {
  // The default goes through the same pipeline, so it is validated and transformed like a value.
  const value = v.optional(guarded(pipeline, doc), defaultText);
  return documented(value, description, doc, { required: false, default: defaultText });
}

/** Every secret (`secret: true`, in any schema) goes through secretValue first. */
function guarded<TOut>(pipeline: v.GenericSchema<string, TOut>, doc: Doc): v.GenericSchema<string, TOut> {
  return doc.secret ? secretValue(pipeline) : pipeline;
}

// ---- secrets ---------------------------------------------------------------------------------

/** Control characters: U+0000 to U+001F and U+007F to U+009F (tab, line feed, carriage return, ...). */
const CONTROL_CHARACTER = /\p{Cc}/u;

const CONTROL_NAMES: Readonly<Record<number, string>> = {
  0: 'NUL',
  8: 'backspace',
  9: 'tab',
  10: 'line feed',
  11: 'vertical tab',
  12: 'form feed',
  13: 'carriage return',
  27: 'escape',
  127: 'delete',
};

/**
 * A secret's value, as it is, before the field's own rules: a control character (a tab pasted with
 * the password, a secret file ending with two newlines, a Windows line ending) is refused, never
 * hashed or sent, since nobody could type it back: the admin would be locked out, the provider would
 * refuse the key. Nothing is trimmed here: a `_FILE` only ever loses one final `\n` or `\r\n` (load.ts).
 */
export function secretValue<TOut>(pipeline: v.GenericSchema<string, TOut>) {
  return v.pipe(
    v.string(),
    v.check(
      (x) => !CONTROL_CHARACTER.test(x),
      (issue) => controlCharacterMessage(issue.input as string),
    ),
    pipeline,
  );
}

/**
 * Where the control characters of a secret are, without repeating the secret: the first one's code
 * point, name and position (in characters, from 1), e.g.
 * "must not contain control characters: U+0009 (tab) at character 13".
 */
export function controlCharacterMessage(value: string): string {
  const chars = [...value];
  const found = chars.flatMap((char, i) =>
    CONTROL_CHARACTER.test(char) ? [{ code: char.codePointAt(0) ?? 0, position: i + 1 }] : [],
  );
  const first = found[0];
  if (!first) return 'must not contain control characters';
  const code = `U+${first.code.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = CONTROL_NAMES[first.code] ?? 'control character';
  const last = first.position === chars.length;
  const more = found.length > 1 ? ` (and ${found.length - 1} more)` : '';
  let message =
    `must not contain control characters: ${code} (${name}) at character ` +
    `${first.position}${last ? ', the last one' : ''}${more}`;
  // Only line breaks, all at the end: a secret file with one newline too many.
  const trailingLineBreaks = found.every(
    (c, i) => (c.code === 0x0a || c.code === 0x0d) && c.position === chars.length - found.length + 1 + i,
  );
  if (trailingLineBreaks)
    message +=
      '; only one final newline (\\n or \\r\\n) is removed from a _FILE: delete the extra line break at its end';
  return message;
}

// ---- value pipelines -------------------------------------------------------------------------

export const boolean = () =>
  v.pipe(
    v.string(),
    v.picklist(BOOLEAN_VALUES, 'must be true or false'),
    v.transform((x) => x === 'true'),
  );

export const integer = (min: number, max: number, unit = '') =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, `must be a whole number${unit}`),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}${unit}`),
    v.maxValue(max, `must be at most ${max}${unit}`),
  );

export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  v.pipe(v.string(), v.picklist(values, oneOfMessage(values)));

export function oneOfMessage(values: readonly string[]): string {
  return `must be one of: ${values.join(', ')}`;
}

/** The field's condition (`requiredWhen`), for a schema that requires it in that case. */
export function requiredWhen(field: v.GenericSchema): readonly [variable: string, value: string] {
  const when = (v.getMetadata(field) as Partial<FieldDoc>).requiredWhen;
  if (!when) throw new Error('internal: the field has no requiredWhen');
  return when;
}

/** The field, required: for the branch of the configuration where its `requiredWhen` holds. */
export function requiredIn<TField extends v.GenericSchema>(field: TField) {
  return v.nonOptional(field, `is required when ${conditionText(requiredWhen(field))}`);
}

/** Printable text: names and the like. Control characters would corrupt logs and emails. */
export const text = (maxLength: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.minLength(1, 'must not be empty'),
    v.maxLength(maxLength, `must be at most ${maxLength} characters`),
    v.check((x) => !/[\p{Cc}]/u.test(x), 'must not contain control characters'),
  );

/** An http(s) URL without credentials, query or fragment; `https` only when httpsOnly. */
export const httpUrl = (opts: { httpsOnly: boolean; path: boolean }) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.check((x) => URL.canParse(x), 'must be a URL such as https://host.example'),
    v.transform((x) => new URL(x)),
    v.check(
      (u) => u.protocol === 'https:' || (!opts.httpsOnly && u.protocol === 'http:'),
      opts.httpsOnly ? 'must start with https://' : 'must start with http:// or https://',
    ),
    v.check((u) => !u.username && !u.password, 'must not contain credentials (use the key variables)'),
    v.check((u) => !u.search && !u.hash, 'must not contain a query or fragment'),
    v.check((u) => opts.path || u.pathname === '/', 'must not contain a path'),
    // Without the trailing slash that URL adds, so paths can be appended.
    v.transform((u) => u.toString().replace(/\/$/, '')),
  );

/** Host names and IP addresses. */
export const hostname = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(
      /^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$/,
      'must be a host name or IP address (no scheme, no port)',
    ),
  );

export const email = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.maxLength(254, 'must be at most 254 characters'),
    v.email('must be an email address such as admin@example.com'),
    // Emails are compared case-insensitively and stored lowercase.
    v.toLowerCase(),
  );

/** E.164: a plus sign, then up to 15 digits, no spaces. */
export const phoneE164 = () =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 phone number: + then 7 to 15 digits, no spaces (e.g. +33612345678)'),
  );
