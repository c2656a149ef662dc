// The per-namespace ConfigMap of CA roots that workloads trust. It is built from every
// EncryptedService in the namespace at once (each reconcile writes the same whole object), so
// services sharing a namespace never take each other's roots away. During a CA rotation it
// holds the old and the new root.
import { X509Certificate } from 'node:crypto';
import type { V1ConfigMap, V1OwnerReference } from '@kubernetes/client-node';
import {
  LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY_VALUE, TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY,
} from '../api/v1alpha1/index.js';

/**
 * Operator versions before the trust-changes record (below) asked for bundle changes with these
 * annotations on the bundle ConfigMap itself. Anyone with ConfigMap rights in the namespace could
 * write them, and a root so added stayed for ever: they are ignored now.
 */
export const ANNOTATION_ADDED_ROOTS = 'lockstep.dev/added-roots';
export const ANNOTATION_RETIRED_ROOTS = 'lockstep.dev/retired-roots';

/**
 * A CA rotation's changes to one namespace's bundle — PEM roots to publish in addition to the
 * issued ones (a new root before any leaf chains to it) and SHA-256 fingerprints of roots to
 * withdraw (an old root once no certificate chains to it) — recorded in a ConfigMap in the
 * operator's own namespace, where tenants cannot write. The bundle's reconciler reads only that.
 */
export const TRUST_CHANGES_ADDED_KEY = 'added-roots';
export const TRUST_CHANGES_RETIRED_KEY = 'retired-roots';
/** On a trust-changes record: the namespace whose bundle it changes. */
export const LABEL_BUNDLE_NAMESPACE = 'lockstep.dev/bundle-namespace';

/** Name of the trust-changes record of `namespace`'s bundle (in the operator's namespace; '/' -free names keep it unique). */
export function trustChangesName(namespace: string): string {
  return `lockstep-trust-changes-${namespace}`;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates in a PEM bundle, normalised (one block each, trailing newline). */
export function splitPem(bundle: string | undefined): string[] {
  return (bundle?.match(PEM_BLOCK) ?? []).map((block) => `${block.trim()}\n`);
}

/** What the bundle needs to know of one PEM certificate. */
export interface RootFacts {
  readonly ca: boolean;
  readonly fingerprint256: string;
}

// Every service of a namespace carries the same CA in its TLS Secret, and every reconcile merges
// them all: parsing each block anew made the bundle O(n²) X509 parses per namespace (a fifth of
// the operator's CPU at 200 services). Certificates are immutable, so their facts are kept by PEM.
// Bounded: past the limit the memo starts over (a CA rotation adds a few roots, not thousands).
const MAX_REMEMBERED = 4096;
const remembered = new Map<string, RootFacts | null>();

/** The facts of one PEM certificate, parsed once; undefined when it is no certificate. */
export function rootFacts(pem: string): RootFacts | undefined {
  let facts = remembered.get(pem);
  if (facts === undefined) {
    try {
      const cert = new X509Certificate(pem);
      facts = Object.freeze({ ca: cert.ca, fingerprint256: cert.fingerprint256 });
    } catch {
      facts = null;
    }
    if (remembered.size >= MAX_REMEMBERED) remembered.clear();
    remembered.set(pem, facts);
  }
  return facts ?? undefined;
}

/** Unique CA certificates, ordered by fingerprint so the same roots always give the same bytes. */
export function mergeRoots(...bundles: (string | undefined)[]): string[] {
  const byFingerprint = new Map<string, string>();
  // Identical bundles (every service of a namespace under one CA) are split once.
  for (const pem of new Set([...new Set(bundles)].flatMap(splitPem))) {
    const facts = rootFacts(pem);
    // Not a certificate: never let one bad block empty the bundle.
    if (facts?.ca) byFingerprint.set(facts.fingerprint256, pem);
  }
  return [...byFingerprint.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, pem]) => pem);
}

/** `roots` without those whose fingerprint is listed (comma-separated) in `retired`. */
export function withoutRetired(roots: string[], retired: string | undefined): string[] {
  const gone = new Set((retired ?? '').split(',').map((f) => f.trim()).filter(Boolean));
  if (gone.size === 0) return roots;
  return roots.filter((pem) => !gone.has(rootFacts(pem)?.fingerprint256 ?? new X509Certificate(pem).fingerprint256));
}

export function buildTrustBundle(namespace: string, owners: V1OwnerReference[], roots: string[]): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: TRUST_BUNDLE_CONFIGMAP,
      namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_COMPONENT]: 'trust' },
      // Not controller references: the bundle belongs to all of them and goes when the last one does.
      ownerReferences: [...owners]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((o) => ({ ...o, controller: false, blockOwnerDeletion: false })),
    },
    data: { [TRUST_BUNDLE_KEY]: roots.join('') },
  };
}
