// What a stand-in workload serves and trusts, read from the API server as a kubelet would mount
// it: the service's TLS Secret and the namespace's trust bundle. Shared by the test process and
// the workload host (workload-host.ts).
import { X509Certificate } from 'node:crypto';
import type { Clients } from './cluster.js';

const TRUST_BUNDLE = 'lockstep-trust-bundle';

export interface Material {
  cert: string;
  key: string;
  /** PEM roots from the namespace's trust bundle. */
  ca: string;
}

export async function readMaterial(c: Pick<Clients, 'core'>, namespace: string, service: string): Promise<Material | undefined> {
  const [secret, bundle] = await Promise.all([
    c.core.readNamespacedSecret({ namespace, name: `${service}-tls` }),
    c.core.readNamespacedConfigMap({ namespace, name: TRUST_BUNDLE }),
  ]);
  const cert = secret.data?.['tls.crt'];
  const key = secret.data?.['tls.key'];
  const ca = bundle.data?.['ca.crt'];
  if (!cert || !key || !ca) return undefined;
  return { cert: Buffer.from(cert, 'base64').toString('utf8'), key: Buffer.from(key, 'base64').toString('utf8'), ca };
}

export function serialOfPem(pem: string): string {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}

/** Polls for material every `everyMs` and calls `onChange` when the certificate or bundle changed. */
export class MaterialWatch {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly c: Pick<Clients, 'core'>,
    private readonly namespace: string,
    private readonly service: string,
    public current: Material,
    private readonly onChange: (m: Material) => void,
    private readonly everyMs = 200,
  ) {}

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        const next = await readMaterial(this.c, this.namespace, this.service);
        if (next && (next.cert !== this.current.cert || next.key !== this.current.key || next.ca !== this.current.ca)) {
          this.current = next;
          this.onChange(next);
        }
      } catch {
        // A failed poll is retried on the next tick, like a kubelet sync.
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.everyMs);
    };
    this.timer = setTimeout(() => void tick(), this.everyMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
