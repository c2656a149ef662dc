// A strict reader for the DER subset a PKCS#10 request uses. The request is attacker-supplied
// (anyone who may create a CertificateRequest writes it), so every length is checked against
// the bytes that are really there and anything unexpected is an error, never a guess.

export class DerError extends Error {}

export interface Der {
  /** The identifier octet: class, constructed bit and tag number (low-tag form only). */
  tag: number;
  /** Contents octets. */
  value: Buffer;
  /** The whole element, header included (what a signature covers). */
  raw: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06,
  UTF8_STRING: 0x0c, PRINTABLE_STRING: 0x13, IA5_STRING: 0x16, SEQUENCE: 0x30, SET: 0x31,
} as const;

/** Context-specific tag [n]; constructed for EXPLICIT or structured IMPLICIT types. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** Reads one element at `offset`; returns it and the offset after it. */
export function readElement(buf: Buffer, offset = 0): { el: Der; next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated element header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in certificate requests');
  let len = buf[offset + 1] as number;
  let header = 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    // DER: the long form only when needed, at most 4 length octets (a request is never 4 GiB).
    if (count === 0 || count > 4) throw new DerError('unsupported length encoding');
    if (offset + 2 + count > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    if (len < 0x80) throw new DerError('non-minimal length');
    header += count;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('element longer than its container');
  return { el: { tag, value: buf.subarray(offset + header, end), raw: buf.subarray(offset, end) }, next: end };
}

/** Reads exactly one element spanning all of `buf`. */
export function readOnly(buf: Buffer): Der {
  const { el, next } = readElement(buf);
  if (next !== buf.length) throw new DerError('trailing bytes after the element');
  return el;
}

/** The elements inside a constructed element. */
export function children(el: Der): Der[] {
  if (!(el.tag & 0x20)) throw new DerError(`element with tag 0x${el.tag.toString(16)} is not constructed`);
  const out: Der[] = [];
  let offset = 0;
  while (offset < el.value.length) {
    const { el: child, next } = readElement(el.value, offset);
    out.push(child);
    offset = next;
  }
  return out;
}

export function expectTag(el: Der | undefined, tag: number, what: string): Der {
  if (!el) throw new DerError(`${what}: missing`);
  if (el.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${el.tag.toString(16)}`);
  return el;
}

export function decodeOid(el: Der): string {
  expectTag(el, TAG.OID, 'object identifier');
  const bytes = el.value;
  if (bytes.length === 0) throw new DerError('empty object identifier');
  const arcs: number[] = [];
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (acc === 0 && b === 0x80) throw new DerError('non-minimal object identifier arc');
    acc = acc * 128 + (b & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError('object identifier arc too large');
    if (!(b & 0x80)) {
      arcs.push(acc);
      acc = 0;
    } else if (i === bytes.length - 1) {
      throw new DerError('truncated object identifier');
    }
  }
  const first = arcs.shift() as number;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** A BIT STRING's bits, most significant first; `unused` is the count of padding bits at the end. */
export function decodeBitString(el: Der): { bytes: Buffer; unused: number } {
  expectTag(el, TAG.BIT_STRING, 'bit string');
  if (el.value.length === 0) throw new DerError('empty bit string');
  const unused = el.value[0] as number;
  if (unused > 7 || (unused > 0 && el.value.length === 1)) throw new DerError('bad bit string padding');
  return { bytes: el.value.subarray(1), unused };
}

export function decodeBoolean(el: Der): boolean {
  expectTag(el, TAG.BOOLEAN, 'boolean');
  if (el.value.length !== 1) throw new DerError('bad boolean');
  return el.value[0] !== 0;
}

/** Text of the string types names and SANs use. */
export function decodeString(el: Der): string {
  return el.value.toString(el.tag === TAG.UTF8_STRING ? 'utf8' : 'latin1');
}
