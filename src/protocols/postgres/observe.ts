/**
 * Decodes what the client is sent into protocol-neutral ResultEvents for a session's observer
 * (recording). Only called when a session has an observer; row values only while it wants them.
 */
import type { BoundParameters, MaskedColumnNote, ResultObserver } from '../../core/types.js';
import { HEADER_LENGTH, MessageType, parseFields, readCString } from './codec.js';

const { RowDescription, DataRow, CommandComplete, CopyData } = MessageType;

/** `masked`: columns of a RowDescription the gateway masks (recorded with the result's columns). */
export function observeBackendMessage(
  observer: ResultObserver,
  type: number,
  buf: Buffer,
  start: number,
  end: number,
  masked?: MaskedColumnNote[],
): void {
  switch (type) {
    case RowDescription: {
      const count = buf.readInt16BE(start + HEADER_LENGTH);
      const columns = [];
      let pos = start + 7;
      for (let i = 0; i < count; i++) {
        const name = readCString(buf, pos, end);
        // name, table oid (4), attnum (2), type oid (4), size (2), modifier (4), format (2)
        columns.push({ name: name.value, type: buf.readUInt32BE(name.next + 6) });
        pos = name.next + 18;
      }
      observer.onResult(masked?.length ? { kind: 'columns', columns, masked } : { kind: 'columns', columns });
      return;
    }
    case DataRow: {
      if (!observer.wantsRows()) return;
      const count = buf.readInt16BE(start + HEADER_LENGTH);
      const values: Array<string | null> = [];
      let pos = start + 7;
      for (let i = 0; i < count; i++) {
        const length = buf.readInt32BE(pos);
        pos += 4;
        if (length < 0) {
          values.push(null);
          continue;
        }
        values.push(displayValue(buf.subarray(pos, pos + length)));
        pos += length;
      }
      observer.onResult({ kind: 'row', values });
      return;
    }
    case CopyData: {
      // Backend CopyData only flows in COPY ... TO STDOUT: rows the client is sent, one per message.
      if (!observer.wantsRows()) return;
      observer.onResult({ kind: 'copy', data: displayValue(buf.subarray(start + HEADER_LENGTH, end)) });
      return;
    }
    case CommandComplete:
      observer.onResult({ kind: 'complete', tag: readCString(buf, start + HEADER_LENGTH, end).value });
      return;
    case MessageType.ErrorResponse:
    case MessageType.NoticeResponse: {
      const f = parseFields(buf, start, end);
      observer.onResult({
        kind: type === MessageType.ErrorResponse ? 'error' : 'notice',
        severity: f.get('V') ?? f.get('S') ?? '',
        code: f.get('C') ?? '',
        message: f.get('M') ?? '',
      });
      return;
    }
    case MessageType.ReadyForQuery:
      observer.onResult({ kind: 'ready' });
      return;
  }
}

/**
 * Most of one bound value decoded for the observer; the observer cuts further to its own limit. A
 * fixed ceiling keeps a huge parameter (a 100 MB bytea) from costing its size twice on the data path.
 */
export const MAX_BIND_VALUE_BYTES = 64 * 1024;

/**
 * Decodes a client's Bind (portal, statement, parameter formats and values) for the observer. A
 * malformed Bind is skipped: the backend rejects it with its own error, which the observer sees.
 */
export function observeBind(observer: ResultObserver, buf: Buffer, start: number, end: number): void {
  let bind: BoundParameters;
  try {
    bind = decodeBind(buf, start, end);
  } catch {
    return;
  }
  observer.onBind?.(bind);
}

function decodeBind(buf: Buffer, start: number, end: number): BoundParameters {
  const portal = readCString(buf, start + HEADER_LENGTH, end);
  const statement = readCString(buf, portal.next, end);
  let pos = statement.next;
  const formatCount = buf.readInt16BE(pos);
  pos += 2;
  const formats: number[] = [];
  for (let i = 0; i < formatCount; i++, pos += 2) formats.push(buf.readInt16BE(pos));
  const count = buf.readInt16BE(pos);
  pos += 2;
  const values: Array<string | null> = [];
  const sizes: number[] = [];
  const cut: number[] = [];
  for (let i = 0; i < count; i++) {
    const length = buf.readInt32BE(pos);
    pos += 4;
    sizes.push(length);
    if (length < 0) {
      values.push(null);
      continue;
    }
    if (pos + length > end) throw new RangeError('bind value past the end of the message');
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
    const shown = Math.min(length, MAX_BIND_VALUE_BYTES);
    if (shown < length) cut.push(i);
    const bytes = buf.subarray(pos, pos + shown);
    values.push(format === 1 ? 'b64:' + bytes.toString('base64') : displayValue(bytes));
    pos += length;
  }
  return { portal: portal.value, statement: statement.value, values, cut, sizes };
}

/** Text as text; bytes that are not valid UTF-8 (binary format) as base64 with a `b64:` prefix. */
function displayValue(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return Buffer.byteLength(text) === bytes.length && !text.includes('\uFFFD') ? text : 'b64:' + bytes.toString('base64');
}
