/**
 * Row rewriting for masked MySQL results, in both row formats: what comes out must parse back to
 * the original row with only the replaced values changed.
 */
import { describe, expect, it } from 'vitest';
import { lenencBytes } from './packets.js';
import { FieldType } from './packets.js';
import { parseBinaryRow, parseTextRow, rewriteRow, type ColumnDefinition } from './results.js';

const column = (name: string, type: number): ColumnDefinition => ({
  schema: 'db',
  table: 't',
  orgTable: 't',
  name,
  orgName: name,
  charset: 45,
  type,
  flags: 0,
});
const texts = (row: Buffer, n: number) => parseTextRow(row, n).map((v) => (v.bytes === null ? null : v.bytes.toString('utf8')));

describe('rewriteRow', () => {
  it('replaces text-row values with strings and NULLs, keeping the others byte for byte', () => {
    const long = 'x'.repeat(300);
    const row = Buffer.concat([
      lenencBytes('1'),
      lenencBytes('ann@example.com'),
      Buffer.from([0xfb]),
      lenencBytes('123-45-6789'),
      lenencBytes('note'),
    ]);
    const values = parseTextRow(row, 5);
    const out = rewriteRow(
      row,
      values,
      new Map<number, string | null>([
        [1, 'a**@example.com'],
        [3, long],
        [4, null],
      ]),
      null,
    );
    expect(texts(out, 5)).toEqual(['1', 'a**@example.com', null, long, null]);
    expect(out.subarray(0, 2)).toEqual(row.subarray(0, 2));
  });

  it('replaces binary-row values: text in length-encoded columns, NULL (bitmap) in the others', () => {
    const columns = [column('id', FieldType.LONG), column('email', 253), column('ssn', 253), column('n', FieldType.LONG)];
    const int = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      return b;
    };
    // Header, NULL bitmap (two reserved bits, then one per column; none NULL), values.
    const row = Buffer.concat([Buffer.from([0x00, 0x00]), int(7), lenencBytes('ann@example.com'), lenencBytes('123-45-6789'), int(9)]);
    const out = rewriteRow(
      row,
      parseBinaryRow(row, columns),
      new Map<number, string | null>([
        [0, 'masked'],
        [2, '*******6789'],
        [3, null],
      ]),
      columns,
    );
    const parsed = parseBinaryRow(out, columns);
    expect(parsed.map((v) => v.bytes)).toEqual([null, Buffer.from('ann@example.com'), Buffer.from('*******6789'), null]);
    // The input row is left as it was (the bitmap was copied, not changed in place).
    expect(row[1]).toBe(0);
  });
});
