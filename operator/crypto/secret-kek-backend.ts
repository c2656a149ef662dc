import type { ServiceBinding } from './binding.js';
import { unwrapDataKey, wrapDataKey, type DataKey } from './datakey.js';
import { KeySetError } from './errors.js';
import type { KekBackend, KekRotation } from './kek-backend.js';
import { activeKey, type KeySet } from './keyset.js';
import { retireUnusedKeys, rotateKeySet, type RetentionOptions, type RotateOptions } from './rotation.js';

// The KEK as it has always been kept: a JWKS in a Secret the operator owns. This is a thin shell
// over datakey.ts and rotation.ts — the same functions, the same ciphertexts — holding the
// current key set so that callers can be written against KekBackend; they persist `keySet`
// after rotate/retire exactly as they persist the document today.

export class SecretKekBackend implements KekBackend {
  readonly kind = 'secret' as const;
  private current: KeySet;

  constructor(keySet: KeySet, private readonly rotateDefaults: Omit<RotateOptions, keyof RetentionOptions> = {}) {
    if (keySet.purpose !== 'kek') throw new KeySetError('WrongPurpose', 'a KEK backend needs a kek key set');
    activeKey(keySet);
    this.current = keySet;
  }

  /** The document to store in the Secret. */
  get keySet(): KeySet {
    return this.current;
  }

  activeKid(): string {
    return activeKey(this.current).kid;
  }

  liveKids(): readonly string[] {
    return this.current.keys.map((key) => key.kid);
  }

  wrapDataKey(dataKey: DataKey, binding: ServiceBinding): Promise<string> {
    return wrapDataKey(this.current, dataKey, binding);
  }

  unwrapDataKey(wrapped: string, binding: ServiceBinding): Promise<DataKey> {
    return unwrapDataKey(this.current, wrapped, binding);
  }

  async rotate(options: RetentionOptions): Promise<KekRotation> {
    const result = await rotateKeySet(this.current, { ...this.rotateDefaults, ...options });
    this.current = result.keySet;
    return { activated: result.activated, deactivated: result.deactivated, retired: result.retired };
  }

  async retire(options: RetentionOptions): Promise<readonly string[]> {
    const result = retireUnusedKeys(this.current, options);
    this.current = result.keySet;
    return result.retired;
  }
}
