// The Secret the operator owns per EncryptedService with envelope secrets: the service's data key,
// wrapped (JWE under the KeyPolicy's KEK), and the envelope-encrypted values of its application
// Secrets. Nothing in it is readable without the KEK.
import type { V1Secret } from '@kubernetes/client-node';

export function envelopeStoreName(encryptedServiceName: string): string {
  return `${encryptedServiceName}-envelope`;
}
/** Data key of the wrapped data key (compact JWE). */
export const WRAPPED_DEK_KEY = 'dek.jwe';
/** Data key of the envelopes: {"<secret>": {"<key>": "lsenc1...."}}. */
export const ENVELOPES_KEY = 'envelopes.json';

export type Envelopes = Record<string, Record<string, string>>;

export interface EnvelopeStoreContent {
  wrappedDataKey: string | undefined;
  envelopes: Envelopes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readEnvelopeStore(secret: V1Secret | undefined): EnvelopeStoreContent {
  const data = secret?.data ?? {};
  const wrapped = data[WRAPPED_DEK_KEY];
  const rawEnvelopes = data[ENVELOPES_KEY];
  const envelopes: Envelopes = {};
  if (rawEnvelopes) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(rawEnvelopes, 'base64').toString('utf8'));
    } catch {
      throw new Error(`${ENVELOPES_KEY} of Secret ${secret?.metadata?.name ?? ''} is not JSON`);
    }
    if (!isRecord(parsed)) throw new Error(`${ENVELOPES_KEY} of Secret ${secret?.metadata?.name ?? ''} is not an object`);
    for (const [name, values] of Object.entries(parsed)) {
      if (!isRecord(values)) continue;
      envelopes[name] = Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  }
  return { wrappedDataKey: wrapped ? Buffer.from(wrapped, 'base64').toString('utf8') : undefined, envelopes };
}

export function envelopeStoreData(content: { wrappedDataKey: string; envelopes: Envelopes }): Record<string, string> {
  const sorted: Envelopes = {};
  for (const name of Object.keys(content.envelopes).sort()) {
    const values = content.envelopes[name] ?? {};
    sorted[name] = Object.fromEntries(Object.keys(values).sort().map((k) => [k, values[k] ?? '']));
  }
  return {
    [WRAPPED_DEK_KEY]: Buffer.from(content.wrappedDataKey, 'utf8').toString('base64'),
    [ENVELOPES_KEY]: Buffer.from(JSON.stringify(sorted), 'utf8').toString('base64'),
  };
}
