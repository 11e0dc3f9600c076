/**
 * Prepared statements as the relay tracks them (text, parameter count and types, result columns)
 * and the decoding of COM_STMT_EXECUTE's bound values for recording.
 */
import { binaryDisplay, isLenencType, type ColumnDefinition } from './results.js';
import { ColumnFlag, FieldType, readLenencBytes } from './packets.js';

export interface PreparedStatement {
  text: string;
  params: number;
  /** Parameter types from the last execute that sent them (type byte, unsigned flag). */
  paramTypes: Array<{ type: number; unsigned: boolean }>;
  /** Result columns (from the prepare response, or a cursor's execute). */
  columns: ColumnDefinition[];
  /** Parameters sent with COM_STMT_SEND_LONG_DATA since the last reset. */
  longData: Set<number>;
}

const VALUE_LIMIT = 4096;

/** Values bound by one COM_STMT_EXECUTE, as text; best effort (undecodable values show as `?`). */
export function decodeExecuteParameters(
  stmt: PreparedStatement,
  payload: Buffer,
): { values: Array<string | null>; cut: number[]; sizes: number[] } {
  const values: Array<string | null> = [];
  const cut: number[] = [];
  const sizes: number[] = [];
  const n = stmt.params;
  if (n === 0) return { values, cut, sizes };
  try {
    let pos = 10;
    const bitmap = payload.subarray(pos, pos + ((n + 7) >> 3));
    pos += (n + 7) >> 3;
    const bound = payload[pos++] === 1;
    if (bound) {
      stmt.paramTypes = [];
      for (let i = 0; i < n; i++) {
        stmt.paramTypes.push({ type: payload[pos]!, unsigned: (payload[pos + 1]! & 0x80) !== 0 });
        pos += 2;
      }
    }
    for (let i = 0; i < n; i++) {
      if (bitmap[i >> 3]! & (1 << (i & 7))) {
        values.push(null);
        sizes.push(-1);
        continue;
      }
      if (stmt.longData.has(i)) {
        values.push('(long data)');
        sizes.push(0);
        continue;
      }
      const t = stmt.paramTypes[i] ?? { type: FieldType.VAR_STRING, unsigned: false };
      const column = {
        schema: '',
        table: '',
        orgTable: '',
        name: '',
        orgName: '',
        charset: 33,
        type: t.type,
        flags: t.unsigned ? ColumnFlag.UNSIGNED : 0,
      };
      let raw: Buffer;
      if (isLenencType(t.type)) {
        const v = readLenencBytes(payload, pos);
        raw = v.value ?? Buffer.alloc(0);
        pos = v.next;
      } else {
        const width = fixedWidth(t.type, payload, pos);
        raw = payload.subarray(pos, pos + width);
        pos += width;
      }
      sizes.push(raw.length);
      if (raw.length > VALUE_LIMIT) {
        cut.push(i);
        raw = raw.subarray(0, VALUE_LIMIT);
      }
      values.push(binaryDisplay(column, raw));
    }
  } catch {
    while (values.length < n) {
      values.push('?');
      sizes.push(0);
    }
  }
  return { values, cut, sizes };
}

function fixedWidth(type: number, payload: Buffer, pos: number): number {
  switch (type) {
    case FieldType.TINY:
      return 1;
    case FieldType.SHORT:
    case FieldType.YEAR:
      return 2;
    case FieldType.LONG:
    case FieldType.INT24:
    case FieldType.FLOAT:
      return 4;
    case FieldType.LONGLONG:
    case FieldType.DOUBLE:
      return 8;
    case FieldType.NULL:
      return 0;
    default:
      return 1 + payload[pos]!; // DATE, DATETIME, TIMESTAMP, TIME: length-prefixed
  }
}
