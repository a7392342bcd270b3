// The container image, without a Docker engine: the Dockerfile is parsed and checked against the
// rules operators rely on, then the runtime stage's file set (its COPY lines) is reproduced in an
// empty directory and a full bootstrap runs from there, under the image's Node version, as the
// image's user. A file missing from the image fails here, not in production.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { assertExit, assertNoSecrets, runCli } from './harness/cli.js';
import { ADMIN, instanceEnv, users, verifiedServices } from './harness/instance.js';
import { createTenant, startPostgres, type PgServer } from './harness/postgres.js';
import { startS3, type S3Server } from './harness/s3.js';
import { startSmtp, type SmtpServer } from './harness/smtp.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** The image's Node: the npm package `node` (a dev dependency) ships that binary. */
export const IMAGE_NODE = join(root, 'node_modules/node/bin/node');

interface Stage {
  name: string | null;
  image: string;
  instructions: Instruction[];
}

function stages(): Stage[] {
  const dockerfile = DockerfileParser.parse(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const out: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = dockerfile.getFROMs().find((f) => f.getRange().start.line === instruction.getRange().start.line)!;
      out.push({ name: from.getBuildStage(), image: from.getImage() ?? '', instructions: [] });
    } else {
      out.at(-1)?.instructions.push(instruction);
    }
  }
  return out;
}

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.getKeyword() === keyword);
const flag = (i: Instruction, name: string) =>
  (i as Instruction & { getFlags(): Array<{ getName(): string; getValue(): string | null }> })
    .getFlags()
    .find((f) => f.getName() === name)
    ?.getValue();

describe('Dockerfile rules', () => {
  const all = stages();
  const runtime = all.at(-1)!;
  const build = all.find((s) => s.name === 'build')!;

  it('is multi-stage: a build stage runs npm ci and npm run build', () => {
    assert.ok(all.length >= 2 && build && build !== runtime);
    const runs = of(build, 'RUN').map((i) => i.getArgumentsContent() ?? '');
    assert.ok(
      runs.some((r) => /\bnpm ci\b/.test(r)) && runs.some((r) => /\bnpm run build\b/.test(r)),
      runs.join(' | '),
    );
  });

  it('the runtime stage is a small supported Node LTS (22 or 24; distroless or slim)', () => {
    assert.match(runtime.image, /^(gcr\.io\/distroless\/nodejs(22|24)-debian\d+(:[\w.-]+)?|node:(22|24)[\w.-]*-slim)$/);
  });

  it('the runtime stage has no npm, no source, no dev tooling: no RUN, only dist/ copied from the build stage', () => {
    assert.deepEqual(of(runtime, 'RUN'), []);
    assert.deepEqual(of(runtime, 'ADD'), []);
    for (const copy of of(runtime, 'COPY')) {
      assert.equal(flag(copy, 'from'), 'build', copy.getTextContent());
      for (const source of args(copy).slice(0, -1)) assert.match(source, /^\/src\/dist\/?$/);
    }
  });

  it('runs as a non-root user, with an exec-form ENTRYPOINT on the bundle, and OCI labels', () => {
    const [user] = of(runtime, 'USER').map((i) => args(i)[0] ?? '');
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
    const [entrypoint] = of(runtime, 'ENTRYPOINT');
    const exec = JSON.parse(entrypoint!.getArgumentsContent() ?? '') as string[];
    assert.match(exec.at(-1)!, /\/superfasttt-bootstrap\.mjs$/);
    const labels = of(runtime, 'LABEL')
      .map((i) => i.getArgumentsContent())
      .join(' ');
    for (const label of [
      'org.opencontainers.image.source',
      'org.opencontainers.image.version',
      'org.opencontainers.image.licenses',
    ]) {
      assert.ok(labels.includes(label), `missing label ${label}`);
    }
  });

  it('silences the AWS SDK Node-version warning', () => {
    assert.match(
      of(runtime, 'ENV')
        .map((i) => i.getArgumentsContent())
        .join(' '),
      /AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true/,
    );
  });
});

describe("the runtime stage's files, under the image's Node, as the image's user", () => {
  let pg: PgServer;
  let s3: S3Server;
  let smtp: SmtpServer;
  let image: string;
  let entry: string[];
  let nodeArgs: string[];
  let uid: number;

  before(async () => {
    [pg, s3, smtp] = await Promise.all([startPostgres({ tls: true }), startS3(), startSmtp('starttls')]);
    await s3.createBucket('superfasttt-image');
    // Reproduce the runtime stage: each COPY --from=build, with the build stage's /src as this checkout.
    const all = stages();
    const runtime = all.at(-1)!;
    image = mkdtempSync(join(tmpdir(), 'sf-image-'));
    chmodSync(image, 0o755);
    for (const copy of of(runtime, 'COPY')) {
      const parts = args(copy);
      const dest = join(image, parts.at(-1)!);
      mkdirSync(dest, { recursive: true });
      for (const source of parts.slice(0, -1))
        cpSync(join(root, source.replace(/^\/src\//, '')), dest, { recursive: true });
    }
    const exec = JSON.parse(of(runtime, 'ENTRYPOINT')[0]!.getArgumentsContent() ?? '') as string[];
    const dashes = exec.indexOf('--');
    assert.ok(dashes > 0, 'the ENTRYPOINT must end Node options with -- (else Node reads check --env-file itself)');
    nodeArgs = exec.slice(1, dashes);
    entry = exec.slice(dashes + 1).map((a) => (a.startsWith('/') ? join(image, a) : a));
    uid = Number((args(of(runtime, 'USER')[0]!)[0] ?? '').split(':')[0]);
    // Read-only for the process: owned by root, not writable by the image's user.
    for (const dir of [image, join(image, 'app')]) chmodSync(dir, 0o555);
  });
  after(async () => {
    await Promise.all([pg?.stop(), s3?.stop(), smtp?.stop()]);
    if (image) {
      chmodSync(image, 0o755);
      rmSync(image, { recursive: true, force: true });
    }
  });

  it("the tests' Node binary is the image's major version", async () => {
    const { execFileSync } = await import('node:child_process');
    const major = /nodejs(\d+)|node:(\d+)/.exec(stages().at(-1)!.image)!.slice(1).find(Boolean);
    assert.match(execFileSync(IMAGE_NODE, ['--version'], { encoding: 'utf8' }), new RegExp(`^v${major}\\.`));
  });

  it('the image holds the entry, its chunks and the native argon2 binding', () => {
    const files = readdirSync(join(image, 'app'));
    assert.ok(files.includes('superfasttt-bootstrap.mjs'));
    assert.ok(files.some((f) => /^argon2\.linux-x64-(gnu|musl)\.node$/.test(f)));
    assert.ok(statSync(IMAGE_NODE).isFile());
  });

  it('--version and --help', async () => {
    const version = await runCli(
      {},
      { node: IMAGE_NODE, nodeArgs, bundle: entry[0], args: ['--version'], cwd: '/', uid },
    );
    assertExit(version, 0, /^\d+\.\d+\.\d+/);
    assertExit(
      await runCli({}, { node: IMAGE_NODE, nodeArgs, bundle: entry[0], args: ['--help'], cwd: '/', uid }),
      0,
      /Usage/,
    );
  });

  it('a full bootstrap (PostgreSQL verify-full, S3 over HTTPS, SMTP STARTTLS) exits 0 and writes no file', async () => {
    const tenant = await createTenant(pg);
    const url = new URL(tenant.url);
    url.searchParams.set('sslmode', 'verify-full');
    const before = new Set(readdirSync(tmpdir()));
    const r = await runCli(
      instanceEnv(tenant, {
        DATABASE_URL: url.toString(),
        ...verifiedServices(tenant, s3, smtp, 'superfasttt-image'),
        HOME: '/nonexistent',
      }),
      { node: IMAGE_NODE, nodeArgs, bundle: entry[0], cwd: join(image, 'app'), uid },
    );
    assertExit(r, 0, /super admin .* created/, /probe written/, /authenticated as/);
    assert.doesNotMatch(r.output, /Warning|AWS SDK/);
    assertNoSecrets(r, [ADMIN.password, tenant.password, s3.admin.secretAccessKey, smtp.password]);
    assert.equal((await users(pg, tenant.schema))[0]?.role, 'super_admin');
    const created = readdirSync(tmpdir()).filter((f) => !before.has(f) && statSync(join(tmpdir(), f)).uid === uid);
    assert.deepEqual(created, [], 'the program must write nothing (read-only root filesystem)');
  });
});
