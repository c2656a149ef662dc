// A small DER writer for the one structure node:crypto cannot build: an X.509 v2 CRL (crl.ts).
// Only what a CRL needs (SEQUENCE, INTEGER, OID, times, strings, explicit tags): every
// function is pure and returns the whole element, header included.

/** One encoded element: identifier octet, length, contents. */
export function element(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(contents.length), contents]);
}

/** Definite length: the short form below 128, else the minimal long form. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid DER length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

export const sequence = (...items: Buffer[]): Buffer => element(0x30, Buffer.concat(items));
export const nullValue = (): Buffer => element(0x05, Buffer.alloc(0));
export const octetString = (bytes: Buffer): Buffer => element(0x04, bytes);
/** BIT STRING with no unused bits (a signature). */
export const bitString = (bytes: Buffer): Buffer => element(0x03, Buffer.concat([Buffer.from([0]), bytes]));
export const enumerated = (value: number): Buffer => element(0x0a, integerContents(BigInt(value)));
/** [n] EXPLICIT: a constructed context-specific element around `inner`. */
export const explicit = (n: number, inner: Buffer): Buffer => element(0xa0 | n, inner);
/** [n] IMPLICIT primitive (e.g. keyIdentifier [0] OCTET STRING). */
export const implicitPrimitive = (n: number, contents: Buffer): Buffer => element(0x80 | n, contents);

/** Contents of a two's-complement INTEGER, minimal (one leading 0x00 only when the high bit is set). */
function integerContents(value: bigint): Buffer {
  if (value < 0n) throw new RangeError('negative integers are not used here');
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const bytes = Buffer.from(hex, 'hex');
  return (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

export const integer = (value: number | bigint): Buffer => element(0x02, integerContents(BigInt(value)));

/** A certificate serial given as hex (X509Certificate.serialNumber: any case, leading zeros allowed). */
export function serialInteger(hex: string): Buffer {
  const clean = hex.replace(/[^0-9a-fA-F]/g, '');
  if (clean.length === 0 || clean !== hex.replace(/:/g, '')) throw new RangeError(`not a hex serial: ${JSON.stringify(hex)}`);
  return integer(BigInt(`0x${clean}`));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new RangeError(`not an OID: ${dotted}`);
    return BigInt(p);
  });
  if (parts.length < 2) throw new RangeError(`not an OID: ${dotted}`);
  const arcs = [parts[0]! * 40n + parts[1]!, ...parts.slice(2)];
  const out: number[] = [];
  for (const arc of arcs) {
    const group: number[] = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) group.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...group);
  }
  return element(0x06, Buffer.from(out));
}

/**
 * RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in seconds with Z.
 * Milliseconds are dropped (DER forbids trailing zeros; seconds are enough for a CRL).
 */
export function time(at: Date): Buffer {
  const iso = at.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = at.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`time out of range: ${iso}`);
  return year < 2050 ? element(0x17, Buffer.from(digits.slice(2), 'ascii')) : element(0x18, Buffer.from(digits, 'ascii'));
}
