// Messages between the test process (tls-workload.ts) and the workload host (workload-host.ts).
import type * as tls from 'node:tls';

export interface WorkloadOptions {
  /** false: keeps serving the certificate it started with (a workload that cannot hot-reload). */
  hotReload?: boolean;
  /** Highest TLS version the server speaks. */
  maxVersion?: tls.SecureVersion;
  /** Lowest TLS version the server speaks (TLSv1.2 when omitted); TLSv1.3 for a TLS1.3 KeyPolicy. */
  minVersion?: tls.SecureVersion;
  /**
   * Also accept TLS 1.2 ECDHE CBC suites, as Node's defaults do (like tlsapp --cbc). Without it the
   * server offers only the default KeyPolicy's suites: the verifier probes for anything else.
   */
  cbc?: boolean;
  /** false: completes sessions with clients that present no certificate (mTLS not enforced). */
  requireClientCert?: boolean;
  /** true: the same port also answers plaintext HTTP (a connection whose first byte is not a TLS record). */
  acceptPlaintext?: boolean;
}

export interface HandshakeCounts {
  ok: number;
  failed: number;
  /** Due handshakes not started because a second's worth were still in flight (an overloaded rig). */
  skipped: number;
  /** First few failure messages with the second they happened at, for the test output. */
  errors: string[];
  elapsedMs: number;
  /** Times the host's event loop stood still for over a second, and the longest (ms). */
  stalls: number;
  longestStallMs: number;
}

export type Request =
  | { op: 'startWorkload'; id: number; namespace: string; service: string; address: string; options: WorkloadOptions }
  | { op: 'stopWorkload'; id: number }
  | { op: 'startClient'; id: number; namespace: string; identity: string; targets: number[]; perSecond: number }
  | { op: 'stopClient'; id: number };

export interface Call { call: number; request: Request }

export type Reply =
  | { call: number; ok: true; port?: number; servedSerial?: string; counts?: HandshakeCounts }
  | { call: number; ok: false; error: string };

/** Sent by the host when a workload reloaded its certificate. */
export interface Served { served: number; serial: string; reloads: number }
