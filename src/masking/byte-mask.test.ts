import { describe, expect, it } from 'vitest';
import type { MaskStrategy } from '../core/types.js';
import { applyStrategy, byteMaskFor } from './strategies.js';

const STRATEGIES: MaskStrategy[] = [
  { kind: 'redact' },
  { kind: 'partial', keepLast: 0 },
  { kind: 'partial', keepLast: 1 },
  { kind: 'partial', keepLast: 4 },
  { kind: 'email' },
  { kind: 'phone' },
  { kind: 'card' },
];

/** Deterministic pseudo-random ASCII values, rich in the characters the strategies look at. */
function* values(count: number): Generator<string> {
  const alphabet = 'ab@@.-+ 0123456789XZ*\t';
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  yield* ['', '@', 'a@', '@b', 'a@b', 'jane.doe@example.com', '4111 1111 1111 1111', '+1 415-555-0134', 'x'];
  for (let i = 0; i < count; i++) {
    const n = next() % 24;
    let v = '';
    for (let j = 0; j < n; j++) v += alphabet[next() % alphabet.length];
    yield v;
  }
}

/** A value as it sits in a DataRow: other bytes around it, so nothing may be read outside it. */
function inRow(value: string): { src: Buffer; from: number; to: number } {
  const before = Buffer.from('@@99@x');
  const bytes = Buffer.from(value, 'latin1');
  return { src: Buffer.concat([before, bytes, Buffer.from('@7@')]), from: before.length, to: before.length + bytes.length };
}

describe('byte-level masking', () => {
  it('writes exactly what the text strategy gives, for every ASCII value', () => {
    const key = { hashKey: Buffer.alloc(32, 1) };
    let checked = 0;
    for (const strategy of STRATEGIES) {
      const bytes = byteMaskFor(strategy)!;
      for (const value of values(3000)) {
        const { src, from, to } = inRow(value);
        const expected = Buffer.from(applyStrategy(strategy, value, key)!, 'utf8');
        expect(bytes.length(src, from, to), `${strategy.kind} length of ${JSON.stringify(value)}`).toBe(expected.length);
        const out = Buffer.alloc(expected.length + 4, 0xee);
        expect(bytes.write(src, from, to, out, 2)).toBe(expected.length);
        expect(out.subarray(2, 2 + expected.length).toString('latin1'), `${strategy.kind} of ${JSON.stringify(value)}`).toBe(
          expected.toString('latin1'),
        );
        // Nothing written outside the value's place.
        expect([out[0], out[1], out[out.length - 2], out[out.length - 1]]).toEqual([0xee, 0xee, 0xee, 0xee]);
        checked++;
      }
    }
    expect(checked).toBe(STRATEGIES.length * 3009);
  });

  it('declines values that are not ASCII (they are masked as text), except redact which ignores the value', () => {
    const utf8 = Buffer.from('zoë@exämple.com');
    const src = Buffer.concat([Buffer.from('@1'), utf8, Buffer.from('2@')]);
    for (const strategy of STRATEGIES) {
      const length = byteMaskFor(strategy)!.length(src, 2, 2 + utf8.length);
      expect(length, strategy.kind).toBe(strategy.kind === 'redact' ? 10 : -1);
    }
  });

  it('has no byte-level form for hash and null', () => {
    expect(byteMaskFor({ kind: 'hash' })).toBeUndefined();
    expect(byteMaskFor({ kind: 'null' })).toBeUndefined();
  });
});
