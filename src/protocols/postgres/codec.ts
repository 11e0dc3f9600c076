/**
 * PostgreSQL wire-protocol framing and message codecs. Pure: bytes in, messages out; no I/O.
 *
 * The data path frames the stream and looks only at message types it needs; it never decodes a
 * message it forwards unchanged, so the bytes a client sees are the bytes the backend sent.
 */

/** Largest message we accept from either side (PostgreSQL's own limit for a field is 1 GB). */
export const MAX_MESSAGE_LENGTH = 0x40000000;
/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
export const MAX_STARTUP_LENGTH = 10000;

/** The Int32 codes of the untyped startup-phase packets (Message Formats: SSLRequest, GSSENCRequest, CancelRequest). */
export const SSL_REQUEST_CODE = 80877103; // 1234 << 16 | 5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234 << 16 | 5680
export const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678
/** StartupMessage's protocol version 3.0 (major << 16 | minor). */
export const PROTOCOL_3_0 = 196608;

// ---------------------------------------------------------------------------------------------
// The one table of PostgreSQL wire constants the gateway reads or writes. Values are from the
// protocol specification, "Message Formats" (https://www.postgresql.org/docs/current/protocol-message-formats.html)
// unless a comment says otherwise.

/**
 * A typed message's header: the type byte (Byte1) and the Int32 length that counts itself but not
 * the type byte. The body starts this many bytes after the message's first byte.
 */
export const HEADER_LENGTH = 5;

/** Message type bytes (Byte1 of each message). Some letters mean one thing from the client, another from the server. */
export const MessageType = {
  // frontend (client -> server)
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Execute: 0x45, // E
  Describe: 0x44, // D
  Close: 0x43, // C
  Sync: 0x53, // S
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Terminate: 0x58, // X
  /** PasswordMessage, SASLInitialResponse and SASLResponse share this byte. */
  PasswordMessage: 0x70, // p
  CopyFail: 0x66, // f
  // both directions (COPY sub-protocol)
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  // backend (server -> client)
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  NegotiateProtocolVersion: 0x76, // v
  RowDescription: 0x54, // T
  DataRow: 0x44, // D
  NoData: 0x6e, // n
  ParameterDescription: 0x74, // t
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  PortalSuspended: 0x73, // s
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
} as const;

/** What a Describe or Close names, the Byte1 after its header. */
export const DescribeTarget = {
  Statement: 0x53, // S: a prepared statement
  Portal: 0x50, // P: a portal
} as const;

/** ReadyForQuery's transaction status byte. */
export const TransactionStatus = {
  Idle: 0x49, // I: not in a transaction block
  InTransaction: 0x54, // T: in a transaction block
  Failed: 0x45, // E: in a failed transaction block
} as const;

/**
 * Field type codes of ErrorResponse and NoticeResponse
 * (https://www.postgresql.org/docs/current/protocol-error-fields.html); a zero byte ends the list.
 */
export const ErrorField = {
  Severity: 0x53, // S (localized)
  SeverityNonLocalized: 0x56, // V
  Code: 0x43, // C: the SQLSTATE
  Message: 0x4d, // M
  Detail: 0x44, // D
  Hint: 0x48, // H
} as const;

/**
 * The single byte a server answers SSLRequest and GSSENCRequest with
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL).
 */
export const EncryptionAnswer = {
  Accept: 0x53, // S: go ahead with the TLS (or GSSAPI) handshake
  Refuse: 0x4e, // N: continue unencrypted, or close
} as const;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * A fault PostgreSQL only logs (COMMERROR) and answers by closing the connection: bytes that are not
 * a startup packet, a failed TLS handshake. Answering with an ErrorResponse instead would hand a client
 * that has not yet read its SSLRequest's answer a message it reads as a failed negotiation.
 */
export class UnansweredProtocolError extends ProtocolError {}

/** Called for each complete typed message: buf[start, end) holds it, header included. */
export type FrameHandler = (type: number, buf: Buffer, start: number, end: number) => void;

/**
 * Splits a byte stream into typed messages (1-byte type, 4-byte length including itself).
 * A partial message at the end of a chunk is kept, as a list of pieces joined once it is complete,
 * so a large message arriving in many chunks costs one copy, not one per chunk.
 */
export class Framer {
  private pieces: Buffer[] = [];
  private piecesLength = 0;
  /** Length of the partial message in `pieces` once its header is known, else -1. */
  private wanted = -1;

  constructor(private readonly maxLength = MAX_MESSAGE_LENGTH) {}

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number {
    return this.piecesLength;
  }

  /** Removes and returns the bytes of a partial message held back (for handing a stream over). */
  takeBuffered(): Buffer[] {
    const pieces = this.pieces;
    this.pieces = [];
    this.piecesLength = 0;
    this.wanted = -1;
    return pieces;
  }

  push(chunk: Buffer, onFrame: FrameHandler): void {
    let buf = chunk;
    if (this.piecesLength > 0) {
      this.pieces.push(chunk);
      this.piecesLength += chunk.length;
      if (this.wanted < 0 && this.piecesLength >= HEADER_LENGTH) {
        const head = Buffer.concat(this.pieces, HEADER_LENGTH);
        this.wanted = 1 + this.checkedLength(head.readInt32BE(1));
      }
      if (this.wanted < 0 || this.piecesLength < this.wanted) return;
      buf = Buffer.concat(this.pieces, this.piecesLength);
      this.pieces = [];
      this.piecesLength = 0;
      this.wanted = -1;
    }
    let pos = 0;
    const len = buf.length;
    while (len - pos >= HEADER_LENGTH) {
      const end = pos + 1 + this.checkedLength(buf.readInt32BE(pos + 1));
      if (end > len) break;
      onFrame(buf[pos]!, buf, pos, end);
      pos = end;
    }
    if (pos < len) {
      const rest = buf.subarray(pos);
      this.pieces.push(rest);
      this.piecesLength = rest.length;
      if (rest.length >= HEADER_LENGTH) this.wanted = 1 + this.checkedLength(rest.readInt32BE(1));
    }
  }

  private checkedLength(length: number): number {
    if (length < 4 || length > this.maxLength) throw new ProtocolError(`invalid message length ${length}`);
    return length;
  }
}

// ---------------------------------------------------------------------------------------------
// Startup-phase messages (untyped: 4-byte length, 4-byte code)

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> };

/** Length of the untyped startup packet at the head of buf, or -1 if fewer than 4 bytes. */
export function startupPacketLength(buf: Buffer): number {
  if (buf.length < 4) return -1;
  const length = buf.readInt32BE(0);
  if (length < 8 || length > MAX_STARTUP_LENGTH) throw new UnansweredProtocolError('invalid length of startup packet');
  return length;
}

export function parseStartupPacket(packet: Buffer): StartupPacket {
  const code = packet.readInt32BE(4);
  if (code === SSL_REQUEST_CODE && packet.length === 8) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST_CODE && packet.length === 8) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST_CODE) {
    if (packet.length !== 16) throw new UnansweredProtocolError('invalid length of cancel request');
    return { kind: 'cancel', pid: packet.readInt32BE(8), secret: packet.readInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  const params = new Map<string, string>();
  if (major === 3) {
    let pos = 8;
    while (pos < packet.length) {
      const name = readCString(packet, pos);
      pos = name.next;
      if (name.value === '') break;
      if (pos >= packet.length) throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
      const value = readCString(packet, pos);
      pos = value.next;
      params.set(name.value, value.value);
    }
    if (pos !== packet.length) throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
  }
  return { kind: 'startup', major, minor, params };
}

export function readCString(buf: Buffer, pos: number, end = buf.length): { value: string; next: number } {
  const zero = buf.indexOf(0, pos);
  if (zero < 0 || zero >= end) throw new ProtocolError('unterminated string in message');
  return { value: buf.toString('utf8', pos, zero), next: zero + 1 };
}

// ---------------------------------------------------------------------------------------------
// Builders

class Writer {
  private parts: Buffer[] = [];
  private length = 0;

  byte(b: number): this {
    return this.push(Buffer.from([b]));
  }
  int16(n: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(n);
    return this.push(b);
  }
  int32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(n);
    return this.push(b);
  }
  cstring(s: string): this {
    return this.push(Buffer.from(s + '\0', 'utf8'));
  }
  bytes(b: Buffer): this {
    return this.push(b);
  }
  private push(b: Buffer): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  /** A typed message: type byte, length, body. */
  message(type: number): Buffer {
    const head = Buffer.allocUnsafe(HEADER_LENGTH);
    head[0] = type;
    head.writeInt32BE(this.length + 4, 1);
    return Buffer.concat([head, ...this.parts]);
  }
  /** An untyped startup-phase message: length, body. */
  untyped(): Buffer {
    const head = Buffer.allocUnsafe(4);
    head.writeInt32BE(this.length + 4, 0);
    return Buffer.concat([head, ...this.parts]);
  }
}

export interface ErrorFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fieldsMessage(type: typeof MessageType.ErrorResponse | typeof MessageType.NoticeResponse, f: ErrorFields): Buffer {
  const w = new Writer();
  w.byte(ErrorField.Severity).cstring(f.severity);
  w.byte(ErrorField.SeverityNonLocalized).cstring(f.severity);
  w.byte(ErrorField.Code).cstring(f.code);
  w.byte(ErrorField.Message).cstring(f.message);
  if (f.detail) w.byte(ErrorField.Detail).cstring(f.detail);
  if (f.hint) w.byte(ErrorField.Hint).cstring(f.hint);
  w.byte(0);
  return w.message(type);
}

export const build = {
  error: (f: ErrorFields) => fieldsMessage(MessageType.ErrorResponse, f),
  notice: (f: ErrorFields) => fieldsMessage(MessageType.NoticeResponse, f),
  authOk: () => new Writer().int32(0).message(MessageType.Authentication),
  authCleartext: () => new Writer().int32(3).message(MessageType.Authentication),
  authSasl: (mechanisms: string[]) => {
    const w = new Writer().int32(10);
    for (const m of mechanisms) w.cstring(m);
    return w.byte(0).message(MessageType.Authentication);
  },
  authSaslContinue: (data: string) => new Writer().int32(11).bytes(Buffer.from(data, 'utf8')).message(MessageType.Authentication),
  authSaslFinal: (data: string) => new Writer().int32(12).bytes(Buffer.from(data, 'utf8')).message(MessageType.Authentication),
  parameterStatus: (name: string, value: string) => new Writer().cstring(name).cstring(value).message(MessageType.ParameterStatus),
  backendKeyData: (pid: number, secret: number) => new Writer().int32(pid).int32(secret).message(MessageType.BackendKeyData),
  readyForQuery: (status: number) => new Writer().byte(status).message(MessageType.ReadyForQuery),
  negotiateProtocolVersion: (minor: number, unrecognized: string[]) => {
    const w = new Writer().int32(PROTOCOL_3_0 | minor).int32(unrecognized.length);
    for (const o of unrecognized) w.cstring(o);
    return w.message(MessageType.NegotiateProtocolVersion);
  },
  // Frontend messages the gateway sends to backends
  startup: (params: Record<string, string>) => {
    const w = new Writer().int32(PROTOCOL_3_0);
    for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
    return w.byte(0).untyped();
  },
  sslRequest: () => new Writer().int32(SSL_REQUEST_CODE).untyped(),
  cancelRequest: (pid: number, secret: number) => new Writer().int32(CANCEL_REQUEST_CODE).int32(pid).int32(secret).untyped(),
  password: (password: string) => new Writer().cstring(password).message(MessageType.PasswordMessage),
  saslInitialResponse: (mechanism: string, data: string) => {
    const body = Buffer.from(data, 'utf8');
    return new Writer().cstring(mechanism).int32(body.length).bytes(body).message(MessageType.PasswordMessage);
  },
  saslResponse: (data: string) => new Writer().bytes(Buffer.from(data, 'utf8')).message(MessageType.PasswordMessage),
  terminate: () => new Writer().message(MessageType.Terminate),
  query: (sql: string) => new Writer().cstring(sql).message(MessageType.Query),
  parse: (name: string, sql: string) => new Writer().cstring(name).cstring(sql).int16(0).message(MessageType.Parse),
  describePortal: (name: string) => new Writer().byte(DescribeTarget.Portal).cstring(name).message(MessageType.Describe),
  copyFail: (reason: string) => new Writer().cstring(reason).message(MessageType.CopyFail),
};

// ---------------------------------------------------------------------------------------------
// Parsers for the few message bodies the gateway reads

/** Fields of an ErrorResponse/NoticeResponse keyed by their one-letter code. */
export function parseFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = start + HEADER_LENGTH;
  while (pos < end && buf[pos] !== 0) {
    const code = String.fromCharCode(buf[pos]!);
    const value = readCString(buf, pos + 1, end);
    fields.set(code, value.value);
    pos = value.next;
  }
  return fields;
}

/** SASLInitialResponse body: mechanism name and initial client response. */
export function parseSaslInitialResponse(body: Buffer): { mechanism: string; data: string } {
  const mech = readCString(body, 0);
  if (mech.next + 4 > body.length) throw new ProtocolError('malformed SASLInitialResponse');
  const length = body.readInt32BE(mech.next);
  const dataStart = mech.next + 4;
  if (length < 0 || dataStart + length !== body.length) throw new ProtocolError('malformed SASLInitialResponse');
  return { mechanism: mech.value, data: body.toString('utf8', dataStart, dataStart + length) };
}
