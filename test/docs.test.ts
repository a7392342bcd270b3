// The documentation cannot drift from the program: the variable table (docs/configuration.md), the
// exit-code table (README.md) and .env.example are generated from the schema and must match it, the IAM
// policies of docs/provisioning.md are those of src/provision/storage-keys/policy.ts; no
// page holds a generated section that npm run docs does not refresh; every relative link of README.md
// and docs/ reaches a file and a heading, and so does every `docs/PAGE.md, "Heading"` that a message of
// src/ names; the README's short deployment examples are excerpts of the real ones; and
// docs/dependencies.md says why each package of package.json is there.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { EXAMPLE_SCOPES, FILES, generated, SECTIONS, startMarker } from '../build/docs.js';
import { deployerIamPolicy, deployerS3Policy, tenantPolicy } from '../src/provision/storage-keys/policy.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** README.md and every page under docs/, as paths from the repository root. */
const PAGES = [
  'README.md',
  ...readdirSync(join(root, 'docs'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.md'))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort(),
];

/** A page without its fenced code blocks (their `#` lines are not headings, their brackets not links). */
const prose = (text: string) => text.replace(/^( *)(```|~~~)[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, '');

/** GitHub's anchors for a page's headings: lowercased, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, title] of prose(text).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = title!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The titles of a page's headings, as they read (without their backquotes). */
const headings = (text: string) =>
  [...prose(text).matchAll(/^#{1,6} +(.+?) *#*$/gm)].map(([, title]) => title!.replace(/`/g, ''));

/** The fenced code blocks of a page that follow a heading, in order, with their language. */
function blocksUnder(text: string, heading: string): Array<{ lang: string; code: string }> {
  const start = text.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no heading ${heading}`);
  const next = text.slice(start + heading.length + 2).search(/^#{1,3} /m);
  const section = text.slice(start, next < 0 ? undefined : start + heading.length + 2 + next);
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

/** `part` is found in `whole`: objects key by key, each array element in some element of `whole`'s array. */
function within(part: unknown, whole: unknown): boolean {
  if (Array.isArray(part)) return Array.isArray(whole) && part.every((p) => whole.some((w) => within(p, w)));
  if (part !== null && typeof part === 'object') {
    if (whole === null || typeof whole !== 'object' || Array.isArray(whole)) return false;
    return Object.entries(part).every(([k, v]) => k in whole && within(v, (whole as Record<string, unknown>)[k]));
  }
  return part === whole;
}

describe('generated documentation', () => {
  it('README.md, docs/configuration.md, docs/provisioning.md and .env.example are up to date (npm run docs)', () => {
    const files = Object.keys(generated());
    assert.deepEqual(files.sort(), ['.env.example', 'README.md', 'docs/configuration.md', 'docs/provisioning.md']);
    for (const [file, content] of Object.entries(generated())) {
      assert.equal(read(file), content, `${file} is out of date: run npm run docs`);
    }
  });

  it("docs/provisioning.md's IAM policies, parsed, are those provision puts and asks for", () => {
    const page = read('docs/provisioning.md');
    const policy = (marker: string): unknown => {
      const from = page.indexOf(startMarker(marker));
      const to = page.indexOf(`<!-- ${marker}:end -->`);
      assert.ok(from >= 0 && to > from, `no section ${marker} in docs/provisioning.md`);
      const blocks = [...page.slice(from, to).matchAll(/^```json\n([\s\S]*?)^```$/gm)];
      assert.equal(blocks.length, 1, `one JSON block in ${marker}`);
      return JSON.parse(blocks[0]![1]!);
    };
    assert.deepEqual(policy('tenant-policy-prefix'), tenantPolicy(EXAMPLE_SCOPES.prefix));
    assert.deepEqual(policy('tenant-policy-bucket'), tenantPolicy(EXAMPLE_SCOPES.bucket));
    assert.deepEqual(policy('deployer-iam-policy'), deployerIamPolicy());
    assert.deepEqual(policy('deployer-s3-policy'), deployerS3Policy(EXAMPLE_SCOPES.prefix.bucket, true));
    // The prose around them names the same example tenant and buckets.
    for (const name of ['tenant_acme/', EXAMPLE_SCOPES.prefix.bucket, EXAMPLE_SCOPES.bucket.bucket]) {
      assert.ok(page.includes(`\`${name}\``), `docs/provisioning.md does not name \`${name}\``);
    }
  });

  it('every generated section of README.md and docs/ is one that npm run docs refreshes', () => {
    const known = new Set(SECTIONS.map((s) => `${s.file} ${s.marker}`));
    const found = PAGES.flatMap((file) =>
      [...read(file).matchAll(/<!-- ([\w-]+):start \(generated by npm run docs\) -->/g)].map((m) => `${file} ${m[1]}`),
    );
    assert.deepEqual(found.sort(), [...known].sort());
    for (const { file, marker } of SECTIONS) assert.ok(read(file).includes(startMarker(marker)));
    for (const file of Object.keys(FILES)) assert.ok(existsSync(join(root, file)), file);
  });
});

describe('README.md and docs/', () => {
  it('every relative link reaches a file, and a heading of it when it names one', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue;
        const [path, anchor] = target!.split('#') as [string, string | undefined];
        const file = path === '' ? page : relative(root, join(root, dirname(page), path));
        if (!existsSync(join(root, file))) broken.push(`${page}: ${target} (no ${file})`);
        else if (anchor !== undefined && !anchors(read(file)).has(anchor)) {
          broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('every page and heading that src/ names exists; no message points at a README section', () => {
    // Messages and variable descriptions say where to read on as `docs/PAGE.md, "Heading"`. The README
    // keeps what a newcomer needs first and links the rest: a message names a page of docs/, not it.
    const sources = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
      .map((e) => relative(root, join(e.parentPath, e.name)))
      .sort();
    const broken: string[] = [];
    const named: string[] = [];
    for (const file of sources) {
      // A long message is a concatenation: its pieces are joined first ('... ' +\n '...').
      const text = read(file).replace(/(['"`])\s*\+\s*\1/g, '');
      for (const [ref, path, heading] of text.matchAll(/\b(docs\/[\w-]+\.md)(?:, "([^"]+)")?/g)) {
        named.push(ref);
        if (!existsSync(join(root, path!))) broken.push(`${file}: ${ref} (no ${path})`);
        else if (heading !== undefined && !headings(read(path!)).includes(heading)) {
          broken.push(`${file}: ${ref} (no heading "${heading}" in ${path})`);
        }
      }
      for (const [ref] of text.matchAll(/README(?!\.md)[^\n]{0,40}/g)) broken.push(`${file}: ${ref}`);
    }
    assert.ok(named.length >= 4, `only ${named.join('; ')}`);
    assert.deepEqual(broken, []);
  });

  it("the README's docker compose example is an excerpt of compose.example.yml", () => {
    const [block, ...more] = blocksUnder(read('README.md'), '### docker compose');
    assert.equal(more.length, 0);
    assert.equal(block?.lang, 'yaml');
    const example = parse(block!.code) as { services: Record<string, unknown> };
    assert.deepEqual(Object.keys(example.services), ['bootstrap', 'app']);
    assert.ok(within(example, parse(read('compose.example.yml'))), 'not found as such in compose.example.yml');
  });

  it("the README's Kubernetes example is an excerpt of deploy/kubernetes/deployment.yaml", () => {
    const [block, ...more] = blocksUnder(read('README.md'), '### Kubernetes');
    assert.equal(more.length, 0);
    assert.equal(block?.lang, 'yaml');
    const excerpt = parse(block!.code) as { spec: { template: { spec: { initContainers: unknown[] } } } };
    assert.equal(excerpt.spec.template.spec.initContainers.length, 1);
    const [deployment] = parseAllDocuments(read('deploy/kubernetes/deployment.yaml')).map((d) => d.toJS());
    assert.ok(within(excerpt, deployment), 'not found as such in deploy/kubernetes/deployment.yaml');
  });

  it('docs/dependencies.md says why each package of package.json is there', () => {
    const pkg = JSON.parse(read('package.json')) as Record<string, Record<string, string> | undefined>;
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
    const page = read('docs/dependencies.md');
    const missing = names.filter((name) => !page.includes(`\`${name}\``) && !page.includes(`\`${name}@`));
    assert.deepEqual(missing, [], 'add a line for each to docs/dependencies.md');
  });
});
