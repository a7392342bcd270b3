// deploy/kubernetes/: every manifest valid against the Kubernetes API schemas (kubernetes-models),
// and wired as the bootstrap needs: one namespace (created by namespace.yaml, restricted pod
// security), secrets as files readable by the non-root user, the private CA mounted where
// DATABASE_SSL_CA_FILE points (sslmode=verify-full), termination message, resources, a locked-down
// securityContext, a NetworkPolicy for the Job, and an environment the program accepts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { parseAllDocuments } from 'yaml';
import { SECRET_VARIABLES } from '../src/config/load.js';
import { FLEET_FAILED_EXIT_CODE } from '../src/errors.js';
import { loadInstances } from '../src/fleet/instances.js';
import { shardFromEnv } from '../src/fleet/shard.js';
import { assertDeployableEnvironment } from './harness/env-check.js';

const dir = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
};

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
};
const FLEET_FILE = 'fleet-job.yaml';
/** As kubectl reads them (YAML 1.1): `defaultMode: 0400` is octal. */
const YAML_1_1 = { version: '1.1' } as const;
const read = (f: string) =>
  parseAllDocuments(readFileSync(join(dir, f), 'utf8'), YAML_1_1).map((d) => d.toJS() as Manifest);
/** One instance's manifests (every file but the fleet Job's, which has its own namespace). */
const manifests: Manifest[] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml') && f !== FLEET_FILE)
  .flatMap(read);
const fleetManifests: Manifest[] = read(FLEET_FILE);
const find = <T>(kind: string, name?: string, among: Manifest[] = manifests) => {
  const found = among.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` named ${name}` : ''}`);
  return found[0] as unknown as T;
};

const deployment = find<{ spec: { template: { spec: IPodSpec } } }>('Deployment');
const job = find<{ spec: { template: { metadata: { labels: Record<string, string> }; spec: IPodSpec } } }>('Job');
const configMap = find<{ data: Record<string, string> }>('ConfigMap', 'superfasttt-clienta-bootstrap');
const caConfigMap = find<{ metadata: { name: string }; data: Record<string, string> }>(
  'ConfigMap',
  'superfasttt-clienta-postgres-ca',
);
const namespace = find<Manifest>('Namespace');
const secret = find<{ metadata: { name: string }; stringData: Record<string, string> }>('Secret');
const policy = find<{
  spec: { podSelector: { matchLabels: Record<string, string> }; egress: Array<{ ports?: Array<{ port: number }> }> };
}>('NetworkPolicy');

describe('Kubernetes manifests', () => {
  it('every manifest is valid against its API schema', () => {
    assert.ok(manifests.length >= 7);
    for (const manifest of [...manifests, ...fleetManifests]) {
      const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      assert.ok(Model, `no validator for ${manifest.apiVersion} ${manifest.kind}`);
      new Model(manifest as never).validate();
    }
  });

  it('the validator rejects what the API server would', () => {
    const broken = structuredClone(deployment) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'two';
    assert.throws(() =>
      new Deployment({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        ...broken,
      } as never).validate(),
    );
  });

  const bootstrapContainers: Array<[string, () => IContainer]> = [
    [
      'the Deployment initContainer',
      () => deployment.spec.template.spec.initContainers!.find((c) => c.name === 'bootstrap')!,
    ],
    ['the Job container', () => job.spec.template.spec.containers.find((c) => c.name === 'bootstrap')!],
  ];
  for (const [where, container] of bootstrapContainers) {
    it(`${where}: termination message, resources, locked-down securityContext, secrets as files`, () => {
      const c = container();
      assert.equal(c.terminationMessagePolicy, 'FallbackToLogsOnError');
      assert.deepEqual(c.securityContext, {
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      // npm run bench: peak RSS ≈ 95 MiB (Node 24, as the image runs it) with storage and email verified.
      assert.equal(c.resources?.requests?.memory, '96Mi');
      assert.equal(c.resources?.limits?.memory, '160Mi');
      assert.ok(c.resources?.requests?.cpu && c.resources.limits?.cpu);
      // Each secret's _FILE variable points at a key of the mounted Secret.
      const mount = c.volumeMounts!.find((m) => m.name === 'bootstrap-secrets')!;
      assert.equal(mount.readOnly, true);
      const secretFiles = Object.entries(configMap.data).filter(([n]) =>
        (SECRET_VARIABLES as string[]).map((v) => `${v}_FILE`).includes(n),
      );
      assert.ok(secretFiles.length >= 5);
      for (const [name, path] of secretFiles) {
        assert.ok(path.startsWith(`${mount.mountPath}/`), `${name} is not under the secret mount`);
        assert.ok(path.slice(mount.mountPath.length + 1) in secret.stringData, `${name}: no such key in the Secret`);
      }
    });

    it(`${where}: the private CA is mounted where DATABASE_SSL_CA_FILE points`, () => {
      const c = container();
      const pod = where.includes('Job') ? job.spec.template.spec : deployment.spec.template.spec;
      const mount = c.volumeMounts!.find((m) => m.name === 'postgres-ca')!;
      assert.equal(mount.readOnly, true);
      const volume = pod.volumes!.find((v) => v.name === 'postgres-ca')!;
      assert.equal(volume.configMap?.name, caConfigMap.metadata.name);
      const item = volume.configMap!.items!.find((i) => i.key in caConfigMap.data)!;
      assert.equal(configMap.data.DATABASE_SSL_CA_FILE, `${mount.mountPath}/${item.path}`);
      // Readable by the non-root user (a ConfigMap, not a Secret: a CA certificate is public).
      assert.equal((volume.configMap!.defaultMode! & 0o004) !== 0, true);
    });
  }

  it('the ConfigMap environment is accepted by the program', () => {
    // The Secret's placeholders stand in for the files; CHANGE_ME is refused as a password, as it should be.
    const mount = '/var/run/secrets/superfasttt/';
    assertDeployableEnvironment(configMap.data, (path) => {
      const value = path.startsWith(mount) ? secret.stringData[path.slice(mount.length)] : undefined;
      return value?.includes('CHANGE_ME') && !value.startsWith('postgres://') ? undefined : value;
    });
  });

  it('namespace.yaml creates the one namespace every other manifest uses, with restricted pod security', () => {
    assert.equal(namespace.apiVersion, 'v1');
    const others = manifests.filter((m) => m !== namespace);
    assert.deepEqual([...new Set(others.map((m) => m.metadata.namespace))], [namespace.metadata.name]);
    assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('pods: the restricted profile holds, and secret files are readable by the non-root user (fsGroup)', () => {
    for (const pod of [deployment.spec.template.spec, job.spec.template.spec]) {
      const sc = pod.securityContext!;
      assert.equal(sc.runAsNonRoot, true);
      assert.equal(sc.seccompProfile?.type, 'RuntimeDefault');
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
      }
      for (const v of pod.volumes ?? [])
        assert.ok(v.secret || v.configMap, `${v.name}: only secret and configMap volumes`);
      // Secret files belong to root; with a mode that others cannot read (0400), only fsGroup (the
      // files' group, with group read added) lets user 65532 read them.
      for (const v of (pod.volumes ?? []).filter((x) => x.secret && ((x.secret.defaultMode ?? 0o644) & 0o004) === 0)) {
        assert.equal(sc.fsGroup, sc.runAsGroup, `${v.name}: unreadable by ${sc.runAsUser} without fsGroup`);
      }
    }
  });

  it('the database URL verifies the server against that CA (sslmode=verify-full), over TLS only', () => {
    const url = new URL(secret.stringData['database-url']!);
    assert.equal(url.searchParams.get('sslmode'), 'verify-full');
    assert.equal(url.searchParams.get('sslrootcert'), null); // one CA source: DATABASE_SSL_CA_FILE
    assert.equal(configMap.data.DATABASE_SSL, 'true');
    assert.match(caConfigMap.data['ca.crt']!, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
  });

  it('the Job never restarts in place, and is bounded in time', () => {
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    assert.ok((job.spec as unknown as { activeDeadlineSeconds: number }).activeDeadlineSeconds > 0);
  });

  it('the NetworkPolicy selects the Job pods and allows only DNS, PostgreSQL, S3 and SMTP', () => {
    for (const [label, value] of Object.entries(policy.spec.podSelector.matchLabels))
      assert.equal(job.spec.template.metadata.labels[label], value);
    const ports = policy.spec.egress.flatMap((rule) => rule.ports?.map((p) => p.port) ?? []).sort((a, b) => a - b);
    assert.deepEqual([...new Set(ports)], [53, 443, 465, 587, 5432]);
  });
});

describe('Kubernetes: the fleet Job (fleet-job.yaml)', () => {
  type FleetJob = {
    spec: {
      completionMode: string;
      completions: number;
      parallelism: number;
      activeDeadlineSeconds: number;
      podFailurePolicy: { rules: Array<{ action: string; onExitCodes?: { containerName: string; values: number[] } }> };
      template: { metadata: { labels: Record<string, string> }; spec: IPodSpec };
    };
  };
  const fleetJob = find<FleetJob>('Job', undefined, fleetManifests);
  const pod = fleetJob.spec.template.spec;
  const fleet = pod.containers.find((c) => c.name === 'fleet')!;
  const option = (name: string) => fleet.args![fleet.args!.indexOf(name) + 1]!;
  const mountOf = (c: IContainer, path: string) => c.volumeMounts!.find((m) => m.mountPath === path)!;
  const volumeOf = (name: string) => pod.volumes!.find((v) => v.name === name)!;

  it('is an Indexed Job whose pods know N: JOB_COMPLETIONS = spec.completions', () => {
    assert.equal(fleetJob.spec.completionMode, 'Indexed');
    assert.ok(fleetJob.spec.completions > 1 && fleetJob.spec.parallelism <= fleetJob.spec.completions);
    assert.equal(fleet.env!.find((e) => e.name === 'JOB_COMPLETIONS')?.value, String(fleetJob.spec.completions));
    // As the program reads it in each pod: Kubernetes sets JOB_COMPLETION_INDEX from 0 to completions - 1.
    const last = String(fleetJob.spec.completions - 1);
    const env = Object.fromEntries(fleet.env!.map((e) => [e.name, e.value!]));
    assert.deepEqual(shardFromEnv({ ...env, JOB_COMPLETION_INDEX: last }), {
      index: fleetJob.spec.completions - 1,
      count: fleetJob.spec.completions,
    });
  });

  it('runs fleet check, JSON report on stdout, --envs read-only, --log-dir on an emptyDir', () => {
    assert.deepEqual(fleet.args!.slice(0, 2), ['fleet', 'check']);
    assert.equal(option('--format'), 'json');
    const envs = mountOf(fleet, option('--envs'));
    assert.equal(envs.readOnly, true);
    const logs = mountOf(fleet, option('--log-dir'));
    assert.notEqual(logs.readOnly, true);
    assert.ok(volumeOf(logs.name).emptyDir);
    assert.equal(fleet.image, job.spec.template.spec.containers[0]!.image);
    assert.equal(pod.initContainers, undefined);
  });

  it('exit 9 fails its index without a retry; the other shards go on; bounded in time', () => {
    assert.equal(pod.restartPolicy, 'Never');
    assert.ok(fleetJob.spec.activeDeadlineSeconds > 0);
    const rule = fleetJob.spec.podFailurePolicy.rules.find((r) => r.onExitCodes?.values.includes(9))!;
    assert.equal(9, FLEET_FAILED_EXIT_CODE);
    assert.equal(rule.action, 'FailIndex');
    assert.equal(rule.onExitCodes!.containerName, fleet.name);
  });

  it('the .env files come from a Secret (0400, fsGroup) mounted where --envs reads, its links followed', () => {
    const secretMount = mountOf(fleet, option('--envs'));
    assert.equal(secretMount.readOnly, true);
    const secretVolume = volumeOf(secretMount.name).secret!;
    assert.equal(secretVolume.defaultMode, 0o400);
    assert.equal(pod.securityContext!.fsGroup, pod.securityContext!.runAsGroup);
    const fleetSecret = find<{ stringData: Record<string, string> }>('Secret', secretVolume.secretName, fleetManifests);

    // The Secret volume as the kubelet lays it out: NAME.env -> ..data/NAME.env -> ..<timestamp>/NAME.env.
    const tmp = mkdtempSync(join(tmpdir(), 'sf-fleet-job-'));
    try {
      const from = join(tmp, 'secret');
      mkdirSync(join(from, '..2025_01_01'), { recursive: true });
      symlinkSync('..2025_01_01', join(from, '..data'));
      for (const [key, value] of Object.entries(fleetSecret.stringData)) {
        writeFileSync(join(from, '..2025_01_01', key), value, { mode: 0o400 });
        symlinkSync(join('..data', key), join(from, key));
      }
      const instances = loadInstances(from, undefined);
      assert.deepEqual(
        instances.map((i) => i.name),
        Object.keys(fleetSecret.stringData).map((k) => k.replace(/\.env$/, '')),
      );
      for (const instance of instances) {
        assert.equal(instance.env.SKIP_SETUP, 'true');
        assert.equal(
          instance.env.DATABASE_SSL_CA_FILE,
          `${mountOf(fleet, '/etc/superfasttt/postgres-ca').mountPath}/ca.crt`,
        );
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('every container: resources, locked-down securityContext, termination message; restricted pod', () => {
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of pod.containers) {
      assert.equal(c.terminationMessagePolicy, 'FallbackToLogsOnError', c.name);
      assert.deepEqual(
        c.securityContext,
        {
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        },
        c.name,
      );
      const r = c.resources!;
      assert.ok(r.requests?.cpu && r.requests.memory && r.limits?.cpu && r.limits.memory, `${c.name}: resources`);
    }
    for (const v of pod.volumes!) assert.ok(v.secret || v.configMap || v.emptyDir, `${v.name}: unexpected volume`);
  });

  it('its own restricted namespace, and a NetworkPolicy that selects its pods: DNS, PostgreSQL, S3, SMTP only', () => {
    const ns = find<Manifest>('Namespace', undefined, fleetManifests);
    assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    for (const m of fleetManifests.filter((x) => x !== ns)) assert.equal(m.metadata.namespace, ns.metadata.name);
    const fleetPolicy = find<typeof policy>('NetworkPolicy', undefined, fleetManifests);
    for (const [label, value] of Object.entries(fleetPolicy.spec.podSelector.matchLabels))
      assert.equal(fleetJob.spec.template.metadata.labels[label], value);
    const ports = fleetPolicy.spec.egress.flatMap((rule) => rule.ports?.map((p) => p.port) ?? []).sort((a, b) => a - b);
    assert.deepEqual([...new Set(ports)], [53, 443, 465, 587, 5432]);
  });
});
