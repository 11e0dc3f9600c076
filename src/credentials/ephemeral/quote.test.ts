import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuoteError, quoteIdent, quoteLiteral } from './quote.js';

/** Undo quoteIdent the way PostgreSQL's scanner reads a quoted identifier. */
function unquoteIdent(q: string): string {
  expect(q.startsWith('"') && q.endsWith('"')).toBe(true);
  const inner = q.slice(1, -1);
  // Every " inside must come in pairs, or the identifier would end early.
  expect(inner.replaceAll('""', '')).not.toContain('"');
  return inner.replaceAll('""', '"');
}

/** Undo quoteLiteral the way the scanner reads '...' (standard strings) and E'...'. */
function unquoteLiteral(q: string): string {
  const escaped = q.startsWith("E'");
  const inner = q.slice(escaped ? 2 : 1, -1);
  expect(q.endsWith("'")).toBe(true);
  expect(inner.replaceAll("''", '')).not.toContain("'");
  const unq = inner.replaceAll("''", "'");
  if (!escaped) {
    expect(unq).not.toContain('\\');
    return unq;
  }
  expect(unq.replaceAll('\\\\', '')).not.toContain('\\');
  return unq.replaceAll('\\\\', '\\');
}

describe('quoteIdent', () => {
  it.each([
    ['app_readonly', '"app_readonly"'],
    ['Mixed Case', '"Mixed Case"'],
    ['a"b', '"a""b"'],
    ['"; DROP ROLE admin; --', '"""; DROP ROLE admin; --"'],
    ['select', '"select"'],
    ["it's", `"it's"`],
    ['back\\slash', '"back\\slash"'],
  ])('quotes %j as %s', (name, quoted) => {
    expect(quoteIdent(name)).toBe(quoted);
    expect(unquoteIdent(quoteIdent(name))).toBe(name);
  });

  it('refuses what PostgreSQL would not keep as given', () => {
    expect(() => quoteIdent('')).toThrow(QuoteError);
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
    expect(() => quoteIdent('x'.repeat(64))).toThrow(/63 bytes/);
    // Bytes, not characters: 32 two-byte characters are 64 bytes.
    expect(() => quoteIdent('é'.repeat(32))).toThrow(/63 bytes/);
    expect(quoteIdent('x'.repeat(63))).toBe(`"${'x'.repeat(63)}"`);
  });

  it('round-trips any name it accepts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), (name) => {
        fc.pre(!name.includes('\0') && Buffer.byteLength(name) <= 63);
        expect(unquoteIdent(quoteIdent(name))).toBe(name);
      }),
    );
  });
});

describe('quoteLiteral', () => {
  it.each([
    ['plain', "'plain'"],
    ["x' OR '1'='1", "'x'' OR ''1''=''1'"],
    ['back\\slash', "E'back\\\\slash'"],
    ["\\'; DROP TABLE t; --", "E'\\\\''; DROP TABLE t; --'"],
    ['', "''"],
  ])('quotes %j as %s', (value, quoted) => {
    expect(quoteLiteral(value)).toBe(quoted);
    expect(unquoteLiteral(quoteLiteral(value))).toBe(value);
  });

  it('refuses a NUL byte', () => {
    expect(() => quoteLiteral('a\0')).toThrow(QuoteError);
  });

  it('round-trips any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (value) => {
        fc.pre(!value.includes('\0'));
        expect(unquoteLiteral(quoteLiteral(value))).toBe(value);
      }),
    );
  });
});
