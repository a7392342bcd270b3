// deploy/kubernetes/: every manifest valid against the Kubernetes API schemas (kubernetes-models),
// and wired as the bootstrap needs: secrets as files, termination message, resources, a locked-down
// securityContext, a NetworkPolicy for the Job, and an environment the program accepts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { parseAllDocuments } from 'yaml';
import { assertDeployableEnvironment } from './harness/env-check.js';

const dir = fileURLToPath(new URL('../deploy/kubernetes/', import.meta.url));
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
};

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: unknown };
const manifests: Manifest[] = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Manifest));
const find = <T>(kind: string) => manifests.find((m) => m.kind === kind) as unknown as T;

const deployment = find<{ spec: { template: { spec: IPodSpec } } }>('Deployment');
const job = find<{ spec: { template: { metadata: { labels: Record<string, string> }; spec: IPodSpec } } }>('Job');
const configMap = find<{ data: Record<string, string> }>('ConfigMap');
const secret = find<{ metadata: { name: string }; stringData: Record<string, string> }>('Secret');
const policy = find<{ spec: { podSelector: { matchLabels: Record<string, string> }; egress: Array<{ ports?: Array<{ port: number }> }> } }>('NetworkPolicy');

describe('Kubernetes manifests', () => {
  it('every manifest is valid against its API schema', () => {
    assert.ok(manifests.length >= 5);
    for (const manifest of manifests) {
      const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      assert.ok(Model, `no validator for ${manifest.apiVersion} ${manifest.kind}`);
      new Model(manifest as never).validate();
    }
  });

  it('the validator rejects what the API server would', () => {
    const broken = structuredClone(deployment) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'two';
    assert.throws(() => new Deployment({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, ...broken } as never).validate());
  });

  const bootstrapContainers: Array<[string, () => IContainer]> = [
    ['the Deployment initContainer', () => deployment.spec.template.spec.initContainers!.find((c) => c.name === 'bootstrap')!],
    ['the Job container', () => job.spec.template.spec.containers.find((c) => c.name === 'bootstrap')!],
  ];
  for (const [where, container] of bootstrapContainers) {
    it(`${where}: termination message, resources, locked-down securityContext, secrets as files`, () => {
      const c = container();
      assert.equal(c.terminationMessagePolicy, 'FallbackToLogsOnError');
      assert.deepEqual(c.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      // npm run bench: peak RSS ≈ 95 MiB (Node 24, as the image runs it) with storage and email verified.
      assert.equal(c.resources?.requests?.memory, '96Mi');
      assert.equal(c.resources?.limits?.memory, '160Mi');
      assert.ok(c.resources?.requests?.cpu && c.resources.limits?.cpu);
      // Each _FILE variable points at a key of the mounted Secret.
      const mount = c.volumeMounts!.find((m) => m.name === 'bootstrap-secrets')!;
      assert.equal(mount.readOnly, true);
      for (const [name, path] of Object.entries(configMap.data).filter(([n]) => n.endsWith('_FILE'))) {
        assert.ok(path.startsWith(`${mount.mountPath}/`), `${name} is not under the secret mount`);
        assert.ok(path.slice(mount.mountPath.length + 1) in secret.stringData, `${name}: no such key in the Secret`);
      }
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

  it('the Job never restarts in place, and is bounded in time', () => {
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    assert.ok((job.spec as unknown as { activeDeadlineSeconds: number }).activeDeadlineSeconds > 0);
  });

  it('the NetworkPolicy selects the Job pods and allows only DNS, PostgreSQL, S3 and SMTP', () => {
    for (const [label, value] of Object.entries(policy.spec.podSelector.matchLabels)) assert.equal(job.spec.template.metadata.labels[label], value);
    const ports = policy.spec.egress.flatMap((rule) => rule.ports?.map((p) => p.port) ?? []).sort((a, b) => a - b);
    assert.deepEqual([...new Set(ports)], [53, 443, 465, 587, 5432]);
  });
});
