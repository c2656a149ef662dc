// What the rotation suites share (rotation.e2e, faults-rotation.e2e): EncryptedServices with local
// mTLS workloads standing in for pods (TlsWorkload: a server in this process that hot-reloads its
// certificate from the TLS Secret, reached through a selector-less Service and a hand-made
// EndpointSlice), and RotationSchedules over them.
import type { KubernetesObject } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import { X509Certificate } from 'node:crypto';
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

  /** A CA Issuer `rot-ca` on a self-signed test root (Certificate and Secret `rot-root`), for CA rotations to rotate. */
  async testRootIssuer(commonName: string): Promise<void> {
    const c = this.c;
    const cm = (kind: string, name: string, spec: object) => ({ apiVersion: 'cert-manager.io/v1', kind, metadata: { name, namespace: this.namespace }, spec }) as KubernetesObject;
    await applyAsUser(c, cm('Issuer', 'rot-selfsigned', { selfSigned: {} }));
    await applyAsUser(c, cm('Certificate', 'rot-root', {
      isCA: true, commonName, secretName: 'rot-root', duration: '8760h',
      privateKey: { algorithm: 'ECDSA', size: 256 }, issuerRef: { name: 'rot-selfsigned', kind: 'Issuer' },
    }));
    await eventually('test root CA issued', async () => ((await c.core.readNamespacedSecret({ namespace: this.namespace, name: 'rot-root' }).catch(() => undefined))?.data?.['tls.crt'] ? true : undefined));
    await applyAsUser(c, cm('Issuer', 'rot-ca', { ca: { secretName: 'rot-root' } }));
  }

  /** The roots in the namespace's trust bundle, as PEM. */
  async bundleRoots(): Promise<string[]> {
    const bundle = await this.c.core.readNamespacedConfigMap({ namespace: this.namespace, name: 'lockstep-trust-bundle' });
    return (bundle.data?.['ca.crt']?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => `${p}\n`);
  }

  /**
   * Checks every 300 ms, until stopped, that each named service's certificate chains to a root in
   * the trust bundle. A failed read (the API server away) is not a check.
   */
  chainChecker(names: string[]): { stop(): Promise<{ checks: number; violations: number }> } {
    let checks = 0;
    let violations = 0;
    let checking = true;
    const loop = (async () => {
      while (checking) {
        try {
          const roots = (await this.bundleRoots()).map((p) => new X509Certificate(p));
          for (const n of names) {
            const m = await readMaterial(this.c, this.namespace, n);
            if (!m) continue;
            const leaf = new X509Certificate(m.cert);
            checks++;
            if (!roots.some((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey))) violations++;
          }
        } catch {
          // not a check
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    return {
      async stop() {
        checking = false;
        await loop;
        return { checks, violations };
      },
    };
  }

  /** Stops these workloads: a finished test's API polling would only slow the next one down. */
  async retire(names: string[]): Promise<void> {
    for (const n of names) await this.workloads.get(n)?.stop();
  }

  async stop(): Promise<void> {
    for (const w of this.workloads.values()) await w.stop();
  }
}
