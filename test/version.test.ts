// One version: package.json's. The image tags in every example (README, docs/, compose, Kubernetes), the
// Dockerfile's VERSION default (its OCI label), the release workflow's tags and the executable's
// `--version` all say the same, so that a release changes one line and this test names the rest.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { assertExit, runCli } from './harness/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** Our image under either name: the local one the examples use, or the one releases publish. */
const IMAGE_REF =
  /(?<name>(?<![\w.-])superfasttt\/bootstrap|ghcr\.io\/[^\s/"'`]+\/superfasttt-bootstrap)(?::(?<tag>[\w.<>-]*[\w>]))?/g;

type Ref = { file: string; line: number; name: string; tag: string | undefined; text: string };
function imageRefs(file: string): Ref[] {
  return read(file)
    .split('\n')
    .flatMap((text, i) =>
      [...text.matchAll(IMAGE_REF)].map((m) => ({
        file,
        line: i + 1,
        name: m.groups!.name!,
        tag: m.groups!.tag,
        text: text.trim(),
      })),
    );
}

function filesIn(dir: string, name: RegExp): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && name.test(e.name))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}
const yamlFiles = (dir: string) => filesIn(dir, /\.ya?ml$/);

/** README.md and the pages of docs/. */
const PAGES = ['README.md', ...filesIn('docs', /\.md$/)];
const EXAMPLES = [...PAGES, 'compose.example.yml', ...yamlFiles('deploy')];
const WORKFLOWS = yamlFiles('.github/workflows');

describe(`one version: ${VERSION} (package.json)`, () => {
  it('is a plain semantic version', () => {
    assert.match(VERSION, /^\d+\.\d+\.\d+$/);
  });

  it('every image reference in the README, docs/, compose.example.yml and deploy/ is tagged with it', () => {
    const refs = EXAMPLES.flatMap(imageRefs);
    // The examples do name the image: the README, compose and each Kubernetes workload.
    for (const file of [
      'README.md',
      'compose.example.yml',
      'deploy/kubernetes/deployment.yaml',
      'deploy/kubernetes/job.yaml',
    ]) {
      assert.ok(
        refs.some((r) => r.file === file),
        `${file} names no image`,
      );
    }
    const wrong = refs.filter((r) => r.tag !== VERSION).map((r) => `${r.file}:${r.line}: ${r.text}`);
    assert.deepEqual(wrong, [], `not tagged :${VERSION}`);
  });

  it('the release workflow tags the image with the version it checked against package.json, never another', () => {
    assert.ok(WORKFLOWS.includes('.github/workflows/release.yml'));
    for (const r of WORKFLOWS.flatMap(imageRefs)) {
      // A literal tag would be a second source of truth; the workflow derives it from the git tag.
      assert.ok(r.tag === undefined || r.tag === VERSION, `${r.file}:${r.line}: ${r.text}`);
    }
    assert.match(
      read('.github/workflows/release.yml'),
      /tags: \$\{\{ steps\.version\.outputs\.image \}\}:\$\{\{ steps\.version\.outputs\.version \}\}/,
    );
  });

  it("the Dockerfile's VERSION default (the OCI version label) and the compose build argument", () => {
    const args = [...read('Dockerfile').matchAll(/^ARG VERSION=(.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(args, [VERSION]);
    assert.match(read('Dockerfile'), /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
    const compose = parse(read('compose.example.yml')) as {
      services: { bootstrap: { build: { args: Record<string, string> } } };
    };
    assert.equal(compose.services.bootstrap.build.args.VERSION, VERSION);
  });

  it("the README's build commands and the docs' sample output carry it", () => {
    const pages = PAGES.map(read).join('\n');
    const printed = [...pages.matchAll(/superfasttt-bootstrap (\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const buildArgs = [...pages.matchAll(/--build-arg VERSION=(\S+)/g)].map((m) => m[1]);
    assert.ok(printed.length > 0 && buildArgs.length > 0);
    assert.deepEqual([...new Set([...printed, ...buildArgs])], [VERSION]);
  });

  it('the built executable prints it (--version, -V, version)', async () => {
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await runCli({}, { args });
      assertExit(r, 0);
      assert.equal(r.stdout, `${VERSION}\n`);
    }
  });
});
