// What the rotation suites share (rotation.e2e, faults-rotation.e2e): EncryptedServices with local
// mTLS workloads standing in for pods (TlsWorkload: a server in this process that hot-reloads its
// certificate from the TLS Secret, reached through a selector-less Service and a hand-made
// EndpointSlice), and RotationSchedules over them.
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { EncryptedService, RotationSchedule, RotationScheduleSpec } from '../../operator/api/v1alpha1/index.js';
import { eventually, type Clients } from './cluster.js';
import { applyAsUser, readSchedule, waitForSchedule } from './lockstep.js';
import { TlsWorkload, readMaterial, serialOfPem, workloadAddress, type WorkloadOptions } from './tls-workload.js';

export type DeployOptions = WorkloadOptions & { restart?: object; keyPolicy?: string };

export class RotationRig {
  readonly workloads = new Map<string, TlsWorkload>();

  constructor(private readonly c: Clients, readonly namespace: string, private readonly defaultKeyPolicy: string) {}

  service(name: string, issuer?: string, restart?: object, keyPolicy = this.defaultKeyPolicy): EncryptedService {
    return {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'EncryptedService',
      metadata: { name, namespace: this.namespace, labels: { suite: 'rotation' } },
      spec: {
        workload: { selector: { matchLabels: { app: name } }, serviceAccountName: name, ...(restart ? { restart } : {}) },
        ports: [{ name: 'https', port: 443 }], keyPolicyRef: { name: keyPolicy },
        ...(issuer ? { transit: { issuerRef: { name: issuer, kind: 'Issuer' } } } : {}),
      },
    } as EncryptedService;
  }

  schedule(name: string, spec: Partial<RotationScheduleSpec>, annotations: Record<string, string> = {}): RotationSchedule {
    return {
      apiVersion: 'lockstep.dev/v1alpha1', kind: 'RotationSchedule',
      metadata: { name, namespace: this.namespace, annotations },
      spec: { targets: { selector: {} }, rotate: ['certificates'], ...spec },
    } as RotationSchedule;
  }

  readSchedule(name: string): Promise<RotationSchedule> {
    return readSchedule(this.c, this.namespace, name);
  }

  waitSchedule(name: string, what: string, check: (rs: RotationSchedule) => boolean, timeoutMs = 90_000): Promise<RotationSchedule> {
    return waitForSchedule(this.c, this.namespace, name, what, check, timeoutMs);
  }

  async annotate(name: string, annotations: Record<string, string | null>): Promise<void> {
    await this.c.custom.patchNamespacedCustomObject(
      { group: 'lockstep.dev', version: 'v1alpha1', namespace: this.namespace, plural: 'rotationschedules', name, body: { metadata: { annotations } } },
      k8s.setHeaderOptions('Content-Type', 'application/merge-patch+json'),
    );
  }

  /** The serial of the certificate in the service's TLS Secret. */
  async serial(name: string): Promise<string> {
    const m = await readMaterial(this.c, this.namespace, name);
    if (!m) throw new Error(`${name} has no certificate`);
    return serialOfPem(m.cert);
  }

  /** EncryptedServices issued, then one local workload each with its Service and EndpointSlice. */
  async deploy(names: string[], options: Record<string, DeployOptions> = {}, issuer?: string): Promise<void> {
    const c = this.c;
    for (const name of names) await applyAsUser(c, this.service(name, issuer, options[name]?.restart, options[name]?.keyPolicy) as unknown as KubernetesObject);
    for (const name of names) {
      await eventually(`${name} issued and in the trust bundle`, async () => ((await readMaterial(c, this.namespace, name).catch(() => undefined)) ? true : undefined), 90_000);
      const workload = new TlsWorkload(c, this.namespace, name, workloadAddress(), options[name] ?? {});
      await workload.start();
      this.workloads.set(name, workload);
      for (const obj of workload.objects()) await applyAsUser(c, obj);
    }
  }

  /** Stops these workloads: a finished test's API polling would only slow the next one down. */
  async retire(names: string[]): Promise<void> {
    for (const n of names) await this.workloads.get(n)?.stop();
  }

  async stop(): Promise<void> {
    for (const w of this.workloads.values()) await w.stop();
  }
}
