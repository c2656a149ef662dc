// What to do with one application Secret of spec.secrets.envelope. The deploy pipeline creates
// the plain Secret; the operator keeps its values envelope-encrypted in the service's store and
// keeps the Secret materialised for the workload from that store:
// - a value present in the Secret is the truth: stored when new or changed, kept when equal;
// - a value missing from the Secret (or the whole Secret gone) is restored from the store;
// - a declared key in neither place is reported as missing.
// Pure: encryption and decryption are passed in, so tests need no keys.
import type { EnvelopeSecret } from '../api/v1alpha1/index.js';

export interface EnvelopeCrypto {
  encrypt(key: string, plaintext: Buffer): string;
  /** Throws DecryptError when the stored envelope does not open for this Secret and key. */
  decrypt(key: string, envelope: string): Buffer;
}

export interface EnvelopePlan {
  /** The Secret's envelopes after this pass (only declared keys). */
  readonly envelopes: Record<string, string>;
  /** Values to write back into the Secret, by key. */
  readonly restore: Record<string, Buffer>;
  /** Keys whose envelope was written or replaced in this pass. */
  readonly stored: readonly string[];
  /** Declared keys found nowhere. */
  readonly missing: readonly string[];
  /** Neither the Secret nor anything of it in the store: nothing is protected yet. */
  readonly absent: boolean;
}

export function planEnvelope(
  declared: EnvelopeSecret,
  live: Readonly<Record<string, Buffer>> | undefined,
  stored: Readonly<Record<string, string>>,
  crypto: EnvelopeCrypto,
): EnvelopePlan {
  // Without an explicit list, every key the Secret or the store has is protected.
  const keys = declared.keys ?? [...new Set([...Object.keys(live ?? {}), ...Object.keys(stored)])].sort();
  const envelopes: Record<string, string> = {};
  const restore: Record<string, Buffer> = {};
  const written: string[] = [];
  const missing: string[] = [];
  for (const key of keys) {
    const value = live?.[key];
    const envelope = stored[key];
    if (value !== undefined) {
      if (envelope !== undefined && crypto.decrypt(key, envelope).equals(value)) {
        envelopes[key] = envelope;
      } else {
        envelopes[key] = crypto.encrypt(key, value);
        written.push(key);
      }
    } else if (envelope !== undefined) {
      restore[key] = crypto.decrypt(key, envelope);
      envelopes[key] = envelope;
    } else {
      missing.push(key);
    }
  }
  return { envelopes, restore, stored: written, missing, absent: live === undefined && Object.keys(stored).length === 0 };
}
