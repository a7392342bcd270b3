/**
 * Documentation rendered from the schema: `--help`, the variable table of docs/configuration.md, the
 * exit-code table of README.md, `.env.example`. build/docs.ts writes all but `--help`; a test fails when
 * they are out of date.
 */
import * as v from 'valibot';
import { EXIT_CODES } from '../errors.js';
import { conditionText, type FieldDoc, type Group } from './fields.js';
import { fieldDoc, VARIABLES } from './load.js';
import { envSchema } from './schema.js';
import { provisionSchema } from './provision-schema.js';

export interface VariableDoc extends FieldDoc {
  name: string;
  description: string;
}

const GROUP_TITLES: Record<Group, string> = {
  setup: 'Setup',
  database: 'PostgreSQL',
  storage: 'Storage (S3)',
  email: 'Email',
  superadmin: 'Super admin',
  logging: 'Logging',
  provision: 'Provisioning (deployment machine only)',
};

/** "yes", "if STORAGE_PROVIDER=s3" or "no". */
function requirement(doc: FieldDoc): string {
  if (doc.group === 'provision') return doc.required ? 'for provision' : 'no';
  return doc.required ? 'yes' : doc.requiredWhen ? `if ${conditionText(doc.requiredWhen)}` : 'no';
}

/** The default in words: a value, a rule, or nothing. */
function defaultOf(doc: FieldDoc): string | undefined {
  return doc.default ?? doc.defaultText;
}

/** The instance's variables, then the deployment machine's (provision, deprovision). */
export function variableDocs(): VariableDoc[] {
  const instance = VARIABLES.map((name) => ({
    name,
    description: v.getDescription(envSchema.entries[name]) ?? '',
    ...fieldDoc(name),
  }));
  const deployer = Object.entries(provisionSchema.entries).map(([name, schema]) => ({
    name,
    description: v.getDescription(schema) ?? '',
    ...(v.getMetadata(schema) as FieldDoc),
  }));
  return [...instance, ...deployer];
}

export const COMMANDS: ReadonlyArray<{ usage: string; description: string }> = [
  {
    usage: 'bootstrap',
    description:
      'the default: with SKIP_SETUP=true, set the instance up and disable the setup wizard; otherwise change nothing',
  },
  {
    usage: 'check [--env-file PATH] [--json] [--no-write]',
    description:
      'run every verification of bootstrap read-only and print a report (the storage probe writes one object and ' +
      'deletes it; --no-write skips it)',
  },
  {
    usage:
      'provision (--tenant NAME ... | --tenants FILE) [--out-dir DIR] [--format json] [--force] [--rotate-password] ' +
      '[--concurrency N] [--storage-mode prefix|bucket] [--opaque-names] [--storage-keys shared|per-tenant] ' +
      '[--rotate-storage-key | --revoke-old-storage-keys]',
    description:
      "deployment machine: create each tenant's role and schema with " +
      'least privilege, its storage and (per-tenant) its own proven storage key, and write its .env ' +
      '(PROVISION_DATABASE_URL)',
  },
  {
    usage:
      'deprovision --tenant NAME ... [--yes] [--purge-storage] [--storage-mode prefix|bucket] [--opaque-names] ' +
      '[--storage-keys shared|per-tenant]',
    description:
      "deployment machine: drop the tenants' schemas and roles (and their storage identities with per-tenant " +
      'keys), and their storage with --purge-storage (a dry run without --yes)',
  },
  {
    usage:
      'fleet check --envs DIR [--tenants FILE] [--concurrency N] [--format table|json|csv] [--shard K/N] ' +
      '[--log-dir DIR] [--no-write]',
    description:
      'deployment machine: check every instance of DIR (the .env files provision wrote) read-only, as check does: ' +
      'one row per instance (status, migrations, setup, admin, drift) and a summary',
  },
  {
    usage:
      'fleet bootstrap --envs DIR [--tenants FILE] [--canary N] [--max-failures N|P%] [--concurrency N] ' +
      '[--format table|json|csv] [--shard K/N] [--log-dir DIR]',
    description:
      'deployment machine: bootstrap every instance in stages (a canary group first), stopping before the next ' +
      'stage once failures cross --max-failures (default 0)',
  },
  { usage: '--help, -h', description: 'this help' },
  { usage: '--version, -V', description: 'print the version' },
];

export function renderHelp(version: string): string {
  const lines = [
    `superfasttt-bootstrap ${version}: one-shot setup of a superfasttt ` +
      `instance (PostgreSQL, migrations, storage, email, super admin).`,
    '',
    'Usage: superfasttt-bootstrap [command] [options]',
    '',
    'Commands:',
    ...COMMANDS.flatMap((c) => [`  ${c.usage}`, `      ${c.description}`]),
    '',
    'Environment (* required when SKIP_SETUP=true; secrets also as NAME_FILE=<path>):',
  ];
  for (const [group, title] of Object.entries(GROUP_TITLES)) {
    lines.push(`  ${title}`);
    for (const doc of variableDocs().filter((d) => d.group === group)) {
      const flags = [
        doc.required && (doc.group === 'provision' ? 'required by provision' : '*'),
        doc.requiredWhen && `required if ${conditionText(doc.requiredWhen)}`,
        doc.secret && 'secret',
        defaultOf(doc) !== undefined && `default ${defaultOf(doc)}`,
      ]
        .filter(Boolean)
        .join(', ');
      lines.push(`    ${doc.name}${flags ? ` (${flags})` : ''}`, `        ${doc.description}`);
    }
  }
  lines.push('', 'Exit codes:', ...EXIT_CODES.map((e) => `  ${String(e.code).padStart(3)}  ${e.meaning}`));
  lines.push(
    '',
    'Full documentation: README.md and docs/ of the superfasttt-bootstrap repository ' +
      '(label org.opencontainers.image.source of the image).',
  );
  return lines.join('\n');
}

export function renderVariableTable(): string {
  const rows = [
    '| Variable | Required | Default | Secret (`_FILE`) | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const doc of variableDocs()) {
    rows.push(
      `| \`${doc.name}\` | ${requirement(doc)} ` +
        `| ${doc.default !== undefined ? `\`${doc.default}\`` : (doc.defaultText ?? '')} ` +
        `| ${doc.secret ? 'yes' : ''} ` +
        `| ${doc.description.replace(/\|/g, '\\|')} |`,
    );
  }
  return rows.join('\n');
}

export function renderExitCodeTable(): string {
  return ['| Code | Meaning |', '| --- | --- |', ...EXIT_CODES.map((e) => `| ${e.code} | ${e.meaning} |`)].join('\n');
}

export function renderEnvExample(): string {
  const lines = [
    '# superfasttt-bootstrap environment. Generated from the schema (npm run docs): do not edit by hand.',
    '# Secrets: prefer NAME_FILE=/run/secrets/name over NAME=value (never commit real values).',
  ];
  for (const [group, title] of Object.entries(GROUP_TITLES)) {
    if (group === 'provision') continue; // the deployment machine's, never an instance's
    lines.push('', `# --- ${title}`);
    for (const doc of variableDocs().filter((d) => d.group === group)) {
      const req = requirement(doc);
      lines.push(`# ${doc.description}${req === 'no' ? '' : ` (required${req === 'yes' ? '' : ` ${req}`})`}`);
      const value = doc.default ?? doc.example;
      lines.push(`${doc.required || doc.default !== undefined ? '' : '# '}${doc.name}=${value}`);
      if (doc.secret) lines.push(`# ${doc.name}_FILE=/run/secrets/${doc.name.toLowerCase()}`);
    }
  }
  return lines.join('\n') + '\n';
}
