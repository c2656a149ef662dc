// Whether the live object already holds everything the operator would apply. Applying an
// unchanged object is a no-op in etcd but still a mutating request; comparing first keeps a
// restarted operator (or a quiet cluster) from writing anything.

/** True when every field of `desired` is present in `live` with an equal value.
 * Objects compare as subsets (the server adds defaults and other managers' fields); lists must
 * match in length and element by element (an extra element is a difference the applier must fix). */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === null || desired === undefined) return true;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i]));
  }
  if (typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, l[k]));
  }
  return desired === live;
}
