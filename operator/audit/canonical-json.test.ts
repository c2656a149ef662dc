import { describe, expect, it } from '@jest/globals';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and omits whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null, 'x'], c: 'é"\n' } })).toBe('{"a":{"c":"é\\"\\n","d":[true,null,"x"]},"b":1}');
  });

  it('is independent of insertion order', () => {
    expect(canonicalJson({ x: 1, y: 2, z: { q: 1, p: 2 } })).toBe(canonicalJson({ z: { p: 2, q: 1 }, y: 2, x: 1 }));
  });

  it('orders keys by UTF-16 code units like RFC 8785', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, '\u00e9': 4, _: 5 })).toBe('{"B":2,"_":5,"a":3,"b":1,"é":4}');
  });

  it.each([
    ['a float', 1.5],
    ['NaN', Number.NaN],
    ['an unsafe integer', 2 ** 60],
    ['undefined', undefined],
    ['an undefined member', { a: undefined }],
    ['a Date', new Date(0)],
    ['a Buffer', Buffer.from('x')],
    ['a function', () => 1],
    ['a bigint', 1n],
  ])('refuses %s', (_case, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });
});
