// Kubernetes label selector semantics (matchLabels and matchExpressions ANDed; {} matches
// everything), for choosing EncryptedServices and the pods an EncryptedService selects.
import type { LabelSelector } from '../api/v1alpha1/index.js';

export function matchesSelector(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, req.key);
    const value = have[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!present || !values.includes(value ?? '')) return false;
        break;
      case 'NotIn':
        if (present && values.includes(value ?? '')) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}
