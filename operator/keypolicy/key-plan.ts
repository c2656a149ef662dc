// What should happen to a policy's key sets now: pure decisions over the stored sets, the spec,
// the usage counts and the clock. The reconciler generates keys and writes; nothing here does I/O
// except `rotateKeySet`'s key generation.
import { parseDuration } from '../api/v1alpha1/duration.js';
import { CRD_DEFAULTS, type EffectiveKeyWrap, type KeyPolicySpec } from '../api/v1alpha1/index.js';
import { activeKey, sealingAlgorithmFor, type KeySet, type KeyWrapAlgorithm, type RsaBits, type EcCurve } from '../crypto/keyset.js';
import { retireUnusedKeys, rotateKeySet, type KidUsage } from '../crypto/rotation.js';
import { kekBackendOf, kekView } from '../crypto/kek-view.js';
import { Pkcs11KekBackend } from '../crypto/pkcs11-kek-backend.js';

export type RotationTrigger = 'period' | 'on-demand' | 'algorithm-change';

export interface RotationDecision {
  readonly due: boolean;
  readonly trigger?: RotationTrigger;
  /** When the active KEK is next due, from its activation. */
  readonly nextRotation: Date;
}

export interface RotationInputs {
  readonly kek: KeySet;
  readonly keyWrap: EffectiveKeyWrap;
  readonly periodMs: number;
  /** lockstep.dev/rotate-now on the KeyPolicy, and the value the last rotation was made for. */
  readonly requested: string | undefined;
  readonly handled: string | undefined;
  readonly now: Date;
}

/** Whether the active KEK must be replaced now, and when it will be otherwise. */
export function rotationDecision(input: RotationInputs): RotationDecision {
  const active = activeKey(input.kek);
  const nextRotation = new Date(Date.parse(active.activatedAt) + input.periodMs);
  // An HSM KEK is AES-256-GCM in the token whatever keyWrap says (keyWrap picks the sealing key).
  if (!kekBackendOf(input.kek) && active.alg !== input.keyWrap.algorithm) return { due: true, trigger: 'algorithm-change', nextRotation };
  if (input.requested !== undefined && input.requested !== '' && input.requested !== input.handled) {
    return { due: true, trigger: 'on-demand', nextRotation };
  }
  if (input.now.getTime() >= nextRotation.getTime()) return { due: true, trigger: 'period', nextRotation };
  return { due: false, nextRotation };
}

export interface RetentionSettings {
  readonly retention: number;
  readonly retireAfterMs: number;
}

export function retentionSettings(spec: KeyPolicySpec): RetentionSettings {
  return {
    retention: spec.rotation?.retainDecryptOnly ?? 2,
    retireAfterMs: parseDuration(spec.rotation?.retireAfter ?? '2160h'),
  };
}

export function rotationPeriodMs(spec: KeyPolicySpec): number {
  return parseDuration(spec.rotation?.period ?? CRD_DEFAULTS.keyRotationPeriod);
}

function generationOptions(keyWrap: EffectiveKeyWrap): { rsaBits?: RsaBits; curve?: EcCurve } {
  return {
    ...(keyWrap.rsaKeySize === undefined ? {} : { rsaBits: keyWrap.rsaKeySize as RsaBits }),
    ...(keyWrap.curve === undefined ? {} : { curve: keyWrap.curve }),
  };
}

export interface KeySets {
  readonly kek: KeySet;
  readonly seal: KeySet;
}

export interface KeyChange {
  readonly keySets: KeySets;
  /** kek and seal kids activated, deactivated and retired by this change (for audit and events). */
  readonly activated: readonly string[];
  readonly deactivated: readonly string[];
  readonly retired: readonly string[];
}

/** Rotates both sets: a new active KEK and a new active sealing key; old ones decrypt-only. */
export async function rotateBoth(
  sets: KeySets,
  keyWrap: EffectiveKeyWrap,
  retention: RetentionSettings,
  usage: KidUsage,
  now: Date,
): Promise<KeyChange> {
  const common = { retention: retention.retention, retireAfterMs: retention.retireAfterMs, usage, now };
  const kek = await rotateKek(sets.kek, common, keyWrap);
  const sealAlg = sealingAlgorithmFor(keyWrap.algorithm);
  const seal = await rotateKeySet(sets.seal, { ...common, alg: sealAlg, ...(sealAlg === keyWrap.algorithm ? generationOptions(keyWrap) : {}) });
  return {
    keySets: { kek: kek.keySet, seal: seal.keySet },
    activated: [kek.activated, seal.activated],
    deactivated: [kek.deactivated, seal.deactivated],
    retired: [...kek.retired, ...seal.retired],
  };
}

/** Retires what retention allows and nothing uses; undefined when nothing changes. */
export function retireBoth(sets: KeySets, retention: RetentionSettings, usage: KidUsage, now: Date): KeyChange | undefined {
  const common = { retention: retention.retention, retireAfterMs: retention.retireAfterMs, usage, now };
  const kek = retireKek(sets.kek, common);
  const seal = retireUnusedKeys(sets.seal, common);
  if (kek.retired.length === 0 && seal.retired.length === 0) return undefined;
  return { keySets: { kek: kek.keySet, seal: seal.keySet }, activated: [], deactivated: [], retired: [...kek.retired, ...seal.retired] };
}

export function generationSettings(keyWrap: EffectiveKeyWrap): { kek: KeyWrapAlgorithm; seal: KeyWrapAlgorithm; rsaBits?: RsaBits; curve?: EcCurve } {
  return { kek: keyWrap.algorithm, seal: sealingAlgorithmFor(keyWrap.algorithm), ...generationOptions(keyWrap) };
}

type Common = { retention: number; retireAfterMs: number; usage: KidUsage; now: Date };

// With an HSM the token makes the new KEK and destroys retired ones; the backend is forked so the
// one cached for the stored Secret stays as stored if writing the new index fails (the new key
// is then an orphan in the token, reported by the backend, never used).
async function rotateKek(kek: KeySet, common: Common, keyWrap: EffectiveKeyWrap): Promise<{ keySet: KeySet; activated: string; deactivated: string; retired: readonly string[] }> {
  const backend = hsmBackend(kek);
  if (!backend) return rotateKeySet(kek, { ...common, alg: keyWrap.algorithm, ...generationOptions(keyWrap) });
  const result = await backend.rotate(common);
  return { keySet: kekView(backend, (kid) => backend.macSecret(kid)), ...result };
}

function retireKek(kek: KeySet, common: Common): { keySet: KeySet; retired: readonly string[] } {
  const backend = hsmBackend(kek);
  if (!backend) return retireUnusedKeys(kek, common);
  const retired = backend.retireNow(common);
  return { keySet: retired.length === 0 ? kek : kekView(backend, (kid) => backend.macSecret(kid)), retired };
}

function hsmBackend(kek: KeySet): Pkcs11KekBackend | undefined {
  const backend = kekBackendOf(kek);
  return backend instanceof Pkcs11KekBackend ? backend.fork() : undefined;
}
