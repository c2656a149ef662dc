// Which Secrets claiming to be a KeyPolicy's envelope stores the operator actually wrote, and
// what is in use under the policy's keys. Labels, names and JWE headers are tenant-writable, so
// retirement counts only stores whose integrity tag verifies (or whose data key opens) and sealed
// values the operator opened; everything else is reported (metric, Event) and never acted on.
import type { V1Secret } from '@kubernetes/client-node';
import {
  API_VERSION, KEY_POLICY, LABEL_COMPONENT, LABEL_ENCRYPTED_SERVICE, LABEL_KEY_POLICY, Reasons,
  type EncryptedService, type KeyPolicy,
} from '../api/v1alpha1/index.js';
import { unwrapDataKey } from '../crypto/datakey.js';
import { BindingError, isDecryptError, isKeySetError } from '../crypto/errors.js';
import { inspectSealedValue } from '../crypto/seal.js';
import { accessDenied } from '../encryptedservice/policy.js';
import { envelopeStoreName } from '../encryptedservice/envelope-store.js';
import { verifyEnvelopeStore, type StoreExpectation, type UntrustedReason } from '../encryptedservice/store-integrity.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Logger } from '../runtime/logger.js';
import type { OperatorMetrics } from '../runtime/metrics.js';
import { auditFingerprint } from './audit-trail.js';
import type { KeySets } from './key-plan.js';
import { LABEL_KEY_POLICY_NAMESPACE } from './names.js';
import { countUsage, type KeyUsage } from './status.js';

/** Untrusted-store names an Event lists before it only counts the rest. */
const UNTRUSTED_EVENT_NAMES = 5;
/** Data key checks of untagged or tampered stores remembered; cleared when full. */
const DATA_KEY_CHECK_LIMIT = 4096;
const UNTRUSTED_REASONS = ['NotOperatorWritten', 'UnknownKey', 'IntegrityMismatch', 'NoIntegrityTag'] as const;

export interface TrustedStore {
  store: V1Secret;
  /** No service reconciles it: the policy re-wraps it itself. */
  orphan: boolean;
  service: string;
  wrapped: string;
  /** Its data key is genuine but its tag does not verify (changed, or untagged and not adopted): counted, reported, never re-wrapped. */
  tampered: boolean;
}

export interface UntrustedStore {
  namespace: string;
  name: string;
  reason: UntrustedReason;
  /** uid@resourceVersion: a changed forgery is reported again. */
  version: string;
}

function sealedKidOf(jwe: string): string | undefined {
  try {
    return inspectSealedValue(jwe).kid;
  } catch {
    return undefined;
  }
}

export interface StoreCensusOptions {
  /** The operator's Secret cache (label-selected: what carries Lockstep's labels). */
  secrets: { get(namespace: string | undefined, name: string): V1Secret | undefined; list(namespace?: string): V1Secret[] };
  events: EventRecorder;
  metrics: OperatorMetrics;
  logger: Logger;
  /** Count untagged stores whose data key opens as the operator's, so they may be re-wrapped and tagged. */
  adoptUntaggedStores?: boolean;
}

export class StoreCensus {
  /** Per policy: the untrusted-store set last reported, so an Event is emitted only when it changes. */
  private readonly untrustedReported = new Map<string, string>();
  private readonly dataKeyChecked = new Map<string, boolean>();
  private readonly log: Logger;

  constructor(private readonly o: StoreCensusOptions) {
    this.log = o.logger.child('store-census');
  }

  /**
   * Envelope stores wrapped under this policy's KEKs: those of its services, and stores a deleted
   * service left behind (deletionPolicy Retain), found by their policy labels. Labels and headers
   * are tenant-writable, so each candidate is verified (store-integrity.ts); only stores the
   * operator wrote count for retirement or get re-wrapped, the rest are returned as untrusted.
   */
  async stores(policy: KeyPolicy, users: readonly EncryptedService[], sets: KeySets): Promise<{ trusted: TrustedStore[]; untrusted: UntrustedStore[] }> {
    const namespace = policy.metadata.namespace ?? '';
    const name = policy.metadata.name ?? '';
    const candidates = new Map<string, { store: V1Secret; service: string; uid?: string }>();
    for (const es of users) {
      const store = this.o.secrets.get(es.metadata.namespace, envelopeStoreName(es.metadata.name ?? ''));
      if (store) candidates.set(`${es.metadata.namespace}/${store.metadata?.name}`, { store, service: es.metadata.name ?? '', ...(es.metadata.uid ? { uid: es.metadata.uid } : {}) });
    }
    for (const store of this.o.secrets.list()) {
      const labels = store.metadata?.labels ?? {};
      if (labels[LABEL_KEY_POLICY] !== name || labels[LABEL_KEY_POLICY_NAMESPACE] !== namespace || labels[LABEL_COMPONENT] !== 'secrets') continue;
      const id = `${store.metadata?.namespace}/${store.metadata?.name}`;
      if (candidates.has(id)) continue;
      const service = labels[LABEL_ENCRYPTED_SERVICE] ?? '';
      const es = users.find((u) => u.metadata.namespace === store.metadata?.namespace && u.metadata.name === service);
      candidates.set(id, { store, service, ...(es?.metadata.uid ? { uid: es.metadata.uid } : {}) });
    }
    const trusted: TrustedStore[] = [];
    const untrusted: UntrustedStore[] = [];
    for (const { store, service, uid } of candidates.values()) {
      const storeNamespace = store.metadata?.namespace ?? '';
      const expectation = { namespace: storeNamespace, service, policy: { namespace, name }, ...(uid ? { serviceUid: uid } : {}) };
      const verdict = verifyEnvelopeStore(store, expectation, sets.kek);
      const orphan = !users.some((es) => es.metadata.namespace === storeNamespace && es.metadata.name === service);
      const report = (reason: UntrustedReason) => untrusted.push({ namespace: storeNamespace, name: store.metadata?.name ?? '', reason, version: `${store.metadata?.uid ?? ''}@${store.metadata?.resourceVersion ?? ''}` });
      if (verdict.trusted) {
        trusted.push({ store, orphan, service, wrapped: verdict.wrapped, tampered: false });
        continue;
      }
      // Untagged (older) stores, and tagged ones whose contents changed: only a data key that
      // opens with this service's binding is the operator's. A tampered store whose data key is
      // genuine still holds its kid (its data must not be lost), but is reported and never re-wrapped.
      const wrapped = verdict.wrapped;
      const checkable = verdict.legacy || verdict.reason === 'IntegrityMismatch';
      const genuine = checkable && wrapped !== undefined && await this.dataKeyOpens(store, sets, expectation, wrapped);
      // An untagged store is adopted only when the administrator says so; until then it is
      // counted if genuine (nothing lost) but, like a tampered one, reported and never re-tagged.
      const adopted = verdict.legacy === true && this.o.adoptUntaggedStores === true;
      if (genuine) trusted.push({ store, orphan, service, wrapped, tampered: !adopted });
      if (!verdict.legacy) report(verdict.reason);
      else if (!adopted || !genuine) report('NoIntegrityTag');
    }
    return { trusted, untrusted };
  }

  /**
   * Whether a store's data key opens under this policy's KEK with its service's binding: what
   * decides for stores without a valid tag. Results are kept per Secret version, bounded.
   */
  private async dataKeyOpens(store: V1Secret, sets: KeySets, expectation: StoreExpectation, wrapped: string): Promise<boolean> {
    const version = `${store.metadata?.uid ?? ''}@${store.metadata?.resourceVersion ?? ''}@${sets.kek.keys.map((k) => k.kid).join(',')}`;
    const known = this.dataKeyChecked.get(version);
    if (known !== undefined) return known;
    let opens = false;
    try {
      await unwrapDataKey(sets.kek, wrapped, { namespace: expectation.namespace, name: expectation.service });
      opens = true;
    } catch (err) {
      // A label naming no valid service makes a binding that cannot exist: not ours either.
      if (!isDecryptError(err) && !isKeySetError(err) && !(err instanceof BindingError)) throw err;
    }
    if (this.dataKeyChecked.size >= DATA_KEY_CHECK_LIMIT) this.dataKeyChecked.clear();
    this.dataKeyChecked.set(version, opens);
    return opens;
  }

  /** Wrapped data keys and sealed values under this policy's keys, counting only what the operator wrote or opened. */
  async usage(policy: KeyPolicy, users: readonly EncryptedService[], sets: KeySets): Promise<KeyUsage & { untrusted: UntrustedStore[] }> {
    const { trusted, untrusted } = await this.stores(policy, users, sets);
    const wrapped = trusted.map((t) => t.wrapped);
    const sealed: string[] = [];
    for (const es of users) {
      // A service the policy does not allow never had its sealed values opened; for the others,
      // status.keyIds (written only by the operator) names the kids its values actually opened under.
      if (accessDenied(es, policy)) continue;
      const opened = new Set(es.status?.keyIds ?? []);
      for (const s of es.spec.secrets?.sealed ?? []) {
        for (const jwe of Object.values(s.encryptedData ?? {})) {
          if (opened.has(sealedKidOf(jwe) ?? '')) sealed.push(jwe);
        }
      }
    }
    return { ...countUsage(sets, wrapped, sealed), untrusted };
  }

  /**
   * Forged or tampered stores are reported, not acted on: a metric per reason, and one Event
   * (a few names, then a count) when the set changes. Names and reasons only, never contents.
   */
  report(policy: KeyPolicy, untrusted: readonly UntrustedStore[]): void {
    const base = { namespace: policy.metadata.namespace ?? '', keypolicy: policy.metadata.name ?? '' };
    for (const reason of UNTRUSTED_REASONS) {
      this.o.metrics.untrustedStores.set({ ...base, reason }, untrusted.filter((u) => u.reason === reason).length);
    }
    const key = `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}`;
    const fingerprint = auditFingerprint(untrusted.map((u) => u.version).sort());
    if ((this.untrustedReported.get(key) ?? auditFingerprint([])) === fingerprint) return;
    this.untrustedReported.set(key, fingerprint);
    if (untrusted.length === 0) return;
    const shown = untrusted.slice(0, UNTRUSTED_EVENT_NAMES).map((u) => `${u.namespace}/${u.name} (${u.reason})`);
    const more = untrusted.length > shown.length ? ` and ${untrusted.length - shown.length} more` : '';
    this.o.events.record({ ...policy, apiVersion: API_VERSION, kind: KEY_POLICY.kind }, 'Warning', Reasons.UntrustedStoresIgnored,
      `ignored ${untrusted.length} Secrets claiming to be envelope stores of this policy that the operator did not write: ${shown.join(', ')}${more}; they keep no key from retirement and are not re-wrapped`);
    this.log.warn('untrusted envelope stores ignored', { ...base, stores: untrusted.slice(0, UNTRUSTED_EVENT_NAMES).map((u) => ({ namespace: u.namespace, secretName: u.name, reason: u.reason })), total: untrusted.length });
  }

}
