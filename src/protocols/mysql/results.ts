/**
 * Result set decoding for observers (recording) and masking: column definitions (with the source
 * table and column each result column comes from), text rows and binary (prepared statement) rows,
 * and the values shown as the mysql client prints them. Only called when a session observes or
 * masks; plain passthrough never decodes a row.
 */
import { BINARY_CHARSET, ColumnFlag, FieldType, Lenenc, Marker, MysqlProtocolError, readLenenc, readLenencBytes } from './packets.js';

export interface ColumnDefinition {
  schema: string;
  /** Table alias as written in the statement. */
  table: string;
  /** The table the value comes from ('' for expressions). */
  orgTable: string;
  name: string;
  /** The source column ('' for expressions). */
  orgName: string;
  charset: number;
  type: number;
  flags: number;
}

export function parseColumnDefinition(p: Buffer): ColumnDefinition {
  let pos = readLenencBytes(p, 0).next; // catalog
  const schema = readLenencBytes(p, pos);
  const table = readLenencBytes(p, schema.next);
  const orgTable = readLenencBytes(p, table.next);
  const name = readLenencBytes(p, orgTable.next);
  const orgName = readLenencBytes(p, name.next);
  pos = readLenenc(p, orgName.next).next;
  if (pos + 10 > p.length) throw new MysqlProtocolError('malformed column definition');
  return {
    schema: str(schema.value),
    table: str(table.value),
    orgTable: str(orgTable.value),
    name: str(name.value),
    orgName: str(orgName.value),
    charset: p.readUInt16LE(pos),
    type: p[pos + 6]!,
    flags: p.readUInt16LE(pos + 7),
  };
}

function str(b: Buffer | null): string {
  return b ? b.toString('utf8') : '';
}

/** Whether values of this column travel as length-encoded bytes in binary rows (strings, blobs, decimals...). */
export function isLenencType(type: number): boolean {
  return !FIXED_WIDTH.has(type) && !TEMPORAL.has(type) && type !== FieldType.NULL;
}

const FIXED_WIDTH = new Map<number, number>([
  [FieldType.TINY, 1],
  [FieldType.SHORT, 2],
  [FieldType.YEAR, 2],
  [FieldType.LONG, 4],
  [FieldType.INT24, 4],
  [FieldType.FLOAT, 4],
  [FieldType.LONGLONG, 8],
  [FieldType.DOUBLE, 8],
]);
const TEMPORAL = new Set<number>([FieldType.DATE, FieldType.DATETIME, FieldType.TIMESTAMP, FieldType.TIME]);

/** One value of a row: where it lies in the payload (for rewriting) and its bytes; null = SQL NULL. */
export interface RowValue {
  start: number;
  end: number;
  bytes: Buffer | null;
}

export function parseTextRow(p: Buffer, columns: number): RowValue[] {
  const out: RowValue[] = [];
  let pos = 0;
  for (let i = 0; i < columns; i++) {
    const v = readLenencBytes(p, pos);
    out.push({ start: pos, end: v.next, bytes: v.value });
    pos = v.next;
  }
  return out;
}

export function parseBinaryRow(p: Buffer, columns: ColumnDefinition[]): RowValue[] {
  const bitmapLength = (columns.length + 7 + 2) >> 3;
  let pos = 1 + bitmapLength;
  if (p[0] !== Marker.BINARY_ROW || pos > p.length) throw new MysqlProtocolError('malformed binary row');
  const out: RowValue[] = [];
  for (let i = 0; i < columns.length; i++) {
    const bit = i + 2;
    if (p[1 + (bit >> 3)]! & (1 << (bit & 7))) {
      out.push({ start: pos, end: pos, bytes: null });
      continue;
    }
    const type = columns[i]!.type;
    const width = FIXED_WIDTH.get(type);
    let end: number;
    const start = pos;
    if (width !== undefined) end = pos + width;
    else if (TEMPORAL.has(type)) {
      end = pos + 1 + p[pos]!;
    } else if (type === FieldType.NULL) end = pos;
    else {
      const v = readLenencBytes(p, pos);
      out.push({ start, end: v.next, bytes: v.value });
      pos = v.next;
      continue;
    }
    if (end > p.length) throw new MysqlProtocolError('malformed binary row');
    out.push({ start, end, bytes: p.subarray(start, end) });
    pos = end;
  }
  return out;
}

/** A binary-row value as the mysql client would print it. */
export function binaryDisplay(column: ColumnDefinition, raw: Buffer): string {
  const unsigned = (column.flags & ColumnFlag.UNSIGNED) !== 0;
  switch (column.type) {
    case FieldType.TINY:
      return String(unsigned ? raw.readUInt8(0) : raw.readInt8(0));
    case FieldType.SHORT:
    case FieldType.YEAR:
      return String(unsigned || column.type === FieldType.YEAR ? raw.readUInt16LE(0) : raw.readInt16LE(0));
    case FieldType.LONG:
    case FieldType.INT24:
      return String(unsigned ? raw.readUInt32LE(0) : raw.readInt32LE(0));
    case FieldType.LONGLONG:
      return String(unsigned ? raw.readBigUInt64LE(0) : raw.readBigInt64LE(0));
    case FieldType.FLOAT:
      return String(Number(raw.readFloatLE(0).toPrecision(7)));
    case FieldType.DOUBLE:
      return String(raw.readDoubleLE(0));
    case FieldType.DATE:
    case FieldType.DATETIME:
    case FieldType.TIMESTAMP:
      return dateTime(column.type, raw);
    case FieldType.TIME:
      return time(raw);
    default:
      return textDisplay(column, raw);
  }
}

/** A text-row (or string-typed binary) value for display: UTF-8, or base64 for binary data. */
export function textDisplay(column: ColumnDefinition, raw: Buffer): string {
  const binaryType = column.charset === BINARY_CHARSET && column.type !== FieldType.NEWDECIMAL && column.type !== FieldType.DECIMAL;
  if (binaryType && !isPrintable(raw)) return 'b64:' + raw.toString('base64');
  return raw.toString('utf8');
}

function isPrintable(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  return true;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function dateTime(type: number, raw: Buffer): string {
  const n = raw[0]!;
  const y = n >= 4 ? raw.readUInt16LE(1) : 0;
  const mo = n >= 4 ? raw[3]! : 0;
  const d = n >= 4 ? raw[4]! : 0;
  const date = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
  if (type === FieldType.DATE) return date;
  const h = n >= 7 ? raw[5]! : 0;
  const mi = n >= 7 ? raw[6]! : 0;
  const s = n >= 7 ? raw[7]! : 0;
  const micro = n >= 11 ? raw.readUInt32LE(8) : 0;
  return `${date} ${pad(h)}:${pad(mi)}:${pad(s)}${micro ? '.' + pad(micro, 6) : ''}`;
}

function time(raw: Buffer): string {
  const n = raw[0]!;
  if (n === 0) return '00:00:00';
  const negative = raw[1] === 1;
  const days = raw.readUInt32LE(2);
  const h = raw[6]! + days * 24;
  const micro = n >= 12 ? raw.readUInt32LE(9) : 0;
  return `${negative ? '-' : ''}${pad(h)}:${pad(raw[7]!)}:${pad(raw[8]!)}${micro ? '.' + pad(micro, 6) : ''}`;
}

/**
 * Rewrites some values of a row. Text rows: each replacement is a string or NULL. Binary rows: a
 * string replaces a length-encoded value; any other column masked becomes NULL (its type cannot
 * carry text), as does a null replacement.
 */
export function rewriteRow(
  p: Buffer,
  values: RowValue[],
  replacements: Map<number, string | null>,
  binary: ColumnDefinition[] | null,
): Buffer {
  // First the size (each replacement encoded once), then one buffer written in place: unchanged
  // runs of the row copied in one piece each, no intermediate buffers per value.
  const head = binary ? 1 + ((binary.length + 7 + 2) >> 3) : 0;
  const encoded: Array<{ index: number; text: string | null; bytes: number }> = [];
  let size = p.length;
  for (let i = 0; i < values.length; i++) {
    if (!replacements.has(i)) continue;
    const v = values[i]!;
    let text = replacements.get(i) ?? null;
    // Binary rows: a column whose type cannot carry text becomes NULL (a bit in the bitmap, no bytes).
    if (binary && text !== null && !isLenencType(binary[i]!.type)) text = null;
    const bytes = text === null ? 0 : Buffer.byteLength(text, 'utf8');
    encoded.push({ index: i, text, bytes });
    size += (text === null ? (binary ? 0 : 1) : lenencIntLength(bytes) + bytes) - (v.end - v.start);
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  let cursor = 0;
  if (binary) {
    out[0] = Marker.BINARY_ROW;
    p.copy(out, 1, 1, head);
    at = cursor = head;
  }
  for (const e of encoded) {
    const v = values[e.index]!;
    if (v.start > cursor) at += p.copy(out, at, cursor, v.start);
    cursor = v.end;
    if (e.text === null) {
      if (binary) {
        const bit = e.index + 2;
        out[1 + (bit >> 3)] = out[1 + (bit >> 3)]! | (1 << (bit & 7));
      } else out[at++] = Lenenc.NULL;
      continue;
    }
    at = writeLenencInt(out, at, e.bytes);
    at += out.write(e.text, at, 'utf8');
  }
  if (cursor < p.length) p.copy(out, at, cursor);
  return out;
}

function lenencIntLength(n: number): number {
  return n < Lenenc.NULL ? 1 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 9;
}

function writeLenencInt(out: Buffer, at: number, n: number): number {
  if (n < Lenenc.NULL) {
    out[at] = n;
    return at + 1;
  }
  if (n < 0x10000) {
    out[at] = Lenenc.INT2;
    return out.writeUInt16LE(n, at + 1);
  }
  if (n < 0x1000000) {
    out[at] = Lenenc.INT3;
    return out.writeUIntLE(n, at + 1, 3);
  }
  out[at] = Lenenc.INT8;
  out.writeUInt32LE(n >>> 0, at + 1);
  out.writeUInt32LE(Math.floor(n / 0x100000000), at + 5);
  return at + 9;
}
