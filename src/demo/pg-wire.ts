/**
 * The few PostgreSQL wire-protocol pieces the demo database's front needs (it speaks to clients and
 * to PGlite itself): framing, composing server messages, the startup packet. Kept apart from the
 * gateway's codec (protocols/postgres/) so the demo stays a leaf module that a reader can follow alone.
 */

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** One regular (typed) protocol message. `raw` is the whole frame, type byte included. */
export interface Frame {
  type: string;
  body: Buffer;
  raw: Buffer;
}

export class WireError extends Error {}

/** Cuts a byte stream into typed frames; throws WireError on an impossible length. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrame = 256 * 1024 * 1024) {}

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    let at = 0;
    while (this.buf.length - at >= 5) {
      const len = this.buf.readInt32BE(at + 1);
      if (len < 4 || len > this.maxFrame) throw new WireError(`invalid message length ${len}`);
      if (this.buf.length - at < 1 + len) break;
      const raw = this.buf.subarray(at, at + 1 + len);
      out.push({ type: String.fromCharCode(raw[0] as number), body: raw.subarray(5), raw });
      at += 1 + len;
    }
    this.buf = this.buf.subarray(at);
    return out;
  }
}

export function frame(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** The NUL-terminated string at `offset` and the offset after it. */
export function readCString(body: Buffer, offset: number): [string, number] {
  const end = body.indexOf(0, offset);
  if (end === -1) throw new WireError('unterminated string');
  return [body.toString('utf8', offset, end), end + 1];
}

export function errorResponse(severity: 'ERROR' | 'FATAL', sqlstate: string, message: string): Buffer {
  return frame('E', Buffer.from(`S${severity}\0V${severity}\0C${sqlstate}\0M${message}\0\0`, 'utf8'));
}

/** Fields of an ErrorResponse/NoticeResponse body, in order. */
export function responseFields(body: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at] as number);
    const [value, next] = readCString(body, at + 1);
    out.push([code, value]);
    at = next;
  }
  return out;
}

export function fieldsBody(fields: Array<[string, string]>): Buffer {
  return Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8')), Buffer.from([0])]);
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return frame('Z', Buffer.from(status, 'latin1'));
}

export const AUTHENTICATION_OK = frame('R', int32(0));
export const SYNC = frame('S');

export function backendKeyData(pid: number, secret: number): Buffer {
  return frame('K', Buffer.concat([int32(pid), int32(secret)]));
}

export function simpleQuery(sql: string): Buffer {
  return frame('Q', cstring(sql));
}

export function startupMessage(params: Array<[string, string]>): Buffer {
  const body = Buffer.from(params.map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  return Buffer.concat([int32(8 + body.length), int32(PROTOCOL_3_0), body]);
}

export function parseStartupParams(body: Buffer): Array<[string, string]> {
  const parts = body.toString('utf8').split('\0');
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const k = parts[i] as string;
    if (k === '') break;
    out.push([k, parts[i + 1] as string]);
  }
  return out;
}

export function negotiateProtocolVersion(minor: number, unrecognized: string[]): Buffer {
  return frame('v', Buffer.concat([int32(minor), int32(unrecognized.length), ...unrecognized.map(cstring)]));
}
