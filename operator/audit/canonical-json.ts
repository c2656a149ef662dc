// The byte encoding that audit hashes are computed over. It must be identical for every writer
// and verifier (operator, CLI, a future reimplementation), so it is deliberately narrow: objects
// with keys sorted by UTF-16 code unit order (as RFC 8785), arrays, strings, booleans, null and
// safe integers. Floats are refused rather than normalised — their text form is where
// canonicalisation schemes usually disagree — and so are undefined, functions and class
// instances, which JSON.stringify would silently drop or reshape.

export type CanonicalValue =
  | string
  | number
  | boolean
  | null
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError('canonical JSON accepts only safe integers');
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        throw new TypeError('canonical JSON accepts only plain objects');
      }
      const record = value as Record<string, unknown>;
      const members = Object.keys(record)
        .sort()
        .map((key) => {
          if (record[key] === undefined) throw new TypeError(`canonical JSON member "${key}" is undefined`);
          return `${JSON.stringify(key)}:${canonicalJson(record[key])}`;
        });
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`);
  }
}
