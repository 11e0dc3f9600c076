/**
 * MySQL client/server protocol basics: the one table of the protocol's constants, packet framing
 * (3-byte length, 1-byte sequence id, payloads of 16 MB - 1 and more split over several packets),
 * length-encoded values, and the few generic packets the gateway builds itself (OK, ERR, EOF,
 * auth switch). No I/O here.
 *
 * Values are from the MySQL client/server protocol documentation
 * (https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html), whose section each
 * table names; MariaDB uses the same values for everything listed here.
 */

/** A physical packet's header: int<3> payload length, int<1> sequence id (Protocol Basics: MySQL Packets). */
export const HEADER_LENGTH = 4;
/** Offset of the sequence id in a packet's header. */
export const SEQUENCE_ID_OFFSET = 3;
/** The largest payload of one physical packet (2^24 - 1); a payload this long continues in the next packet. */
export const MAX_PACKET = 0xffffff;

/**
 * The first byte of a response payload (Generic Response Packets, Text Resultset, Binary Protocol
 * Resultset Row). EOF and auth switch share 0xfe; an EOF packet is shorter than 9 bytes (an OK
 * with 0xfe, under DEPRECATE_EOF, is not), and a row starting with 0xfe is a length prefix.
 */
export const Marker = {
  OK: 0x00,
  /** A binary resultset row's header. */
  BINARY_ROW: 0x00,
  ERR: 0xff,
  EOF: 0xfe,
  /** AuthSwitchRequest during the connection phase. */
  AUTH_SWITCH: 0xfe,
  /** AuthMoreData during the connection phase (caching_sha2_password's steps follow it). */
  AUTH_MORE_DATA: 0x01,
  /** LOCAL INFILE Request in answer to a COM_QUERY. */
  LOCAL_INFILE: 0xfb,
} as const;

/** An ERR packet's '#' before the 5-character SQL state (ERR_Packet, with CLIENT_PROTOCOL_41). */
export const SQL_STATE_MARKER = 0x23;

/** Protocol version byte of Protocol::HandshakeV10, the only greeting the gateway speaks. */
export const HANDSHAKE_V10 = 10;

/**
 * Protocol::HandshakeResponse41's fixed part: int<4> capabilities, int<4> max packet size,
 * int<1> character set, 23 filler bytes. Protocol::SSLRequest is exactly this part.
 */
export const HANDSHAKE_RESPONSE_FIXED_LENGTH = 32;

/**
 * First bytes of length-encoded integers (Basic Data Types: Length-Encoded Integer). A first byte
 * below NULL is the value itself; NULL stands for SQL NULL in text resultset rows.
 */
export const Lenenc = {
  NULL: 0xfb,
  INT2: 0xfc,
  INT3: 0xfd,
  INT8: 0xfe,
} as const;

/**
 * caching_sha2_password's one-byte messages after AuthMoreData (Authentication Methods:
 * Caching_sha2_password information).
 */
export const CachingSha2 = {
  /** Client asks for the server's RSA public key. */
  REQUEST_PUBLIC_KEY: 0x02,
  /** Server: the fast path (cached hash) succeeded; OK follows. */
  FAST_AUTH_SUCCESS: 0x03,
  /** Server: send the password in full (over TLS, or RSA-encrypted). */
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;

/** Capability flags, CLIENT_* (Capabilities Flags; the subset the gateway speaks). */
export const Cap = {
  LONG_PASSWORD: 1,
  FOUND_ROWS: 2,
  LONG_FLAG: 4,
  CONNECT_WITH_DB: 8,
  NO_SCHEMA: 16,
  COMPRESS: 32,
  ODBC: 64,
  LOCAL_FILES: 128,
  IGNORE_SPACE: 256,
  PROTOCOL_41: 512,
  INTERACTIVE: 1024,
  SSL: 2048,
  IGNORE_SIGPIPE: 4096,
  TRANSACTIONS: 8192,
  RESERVED: 16384,
  SECURE_CONNECTION: 32768,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
} as const;

/**
 * What the gateway offers clients. Not offered: compression (the relay reads every packet),
 * query attributes and MariaDB's extended capabilities (the backend is not known yet when the
 * greeting is sent, and the relay would have to understand their packet changes).
 */
export const GATEWAY_CAPABILITIES =
  Cap.LONG_PASSWORD |
  Cap.FOUND_ROWS |
  Cap.LONG_FLAG |
  Cap.CONNECT_WITH_DB |
  Cap.ODBC |
  Cap.LOCAL_FILES |
  Cap.IGNORE_SPACE |
  Cap.PROTOCOL_41 |
  Cap.INTERACTIVE |
  Cap.IGNORE_SIGPIPE |
  Cap.TRANSACTIONS |
  Cap.RESERVED |
  Cap.SECURE_CONNECTION |
  Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS |
  Cap.PS_MULTI_RESULTS |
  Cap.PLUGIN_AUTH |
  Cap.CONNECT_ATTRS |
  Cap.PLUGIN_AUTH_LENENC_DATA |
  Cap.SESSION_TRACK |
  Cap.DEPRECATE_EOF;

/** Command bytes, COM_* (Command Phase; enum_server_command). */
export const Command = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  RESET_CONNECTION: 0x1f,
} as const;

/** Server status flags, SERVER_* (of OK and EOF packets; enum SERVER_STATUS_flags_enum). */
export const Status = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
  LAST_ROW_SENT: 0x0080,
  /** The session's sql_mode has NO_BACKSLASH_ESCAPES. */
  NO_BACKSLASH_ESCAPES: 0x0200,
} as const;

/** Column types, MYSQL_TYPE_* (Column Definition; enum_field_types). */
export const FieldType = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  VARCHAR: 15,
  BIT: 16,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** Column definition flags (Column Definition: flags; the ones the gateway reads). */
export const ColumnFlag = {
  UNSIGNED: 32,
} as const;

/** utf8mb4_general_ci: known to MySQL and MariaDB alike. */
export const DEFAULT_CHARSET = 45;
/** The 'binary' character set: the column holds bytes, not text. */
export const BINARY_CHARSET = 63;

export class MysqlProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MysqlProtocolError';
  }
}

/** One logical packet: a payload and the physical packets (headers included) it arrived in. */
export interface Packet {
  /** Sequence id of the first physical packet. */
  seq: number;
  /** Sequence id of the last physical packet. */
  lastSeq: number;
  payload: Buffer;
  /** The original bytes, one entry per physical packet; forwarding writes these. */
  raws: Buffer[];
}

/**
 * Splits a byte stream into logical packets. Payloads of exactly 16 MB - 1 continue in the next
 * packet; their sequence ids must follow on. A partial packet is kept until the rest arrives.
 */
export class PacketFramer {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private parts: Buffer[] = [];
  private partRaws: Buffer[] = [];
  private partSeq = -1;
  private lastSeq = -1;
  /**
   * The last push() framed exactly the chunk it was given: nothing was pending before it and
   * nothing is left after it, so the chunk is the concatenation of the packets it yielded.
   */
  aligned = false;

  /** `maxLogical`: the largest payload accepted (a bigger one is a protocol error, not a buffer). */
  constructor(private readonly maxLogical = 1 << 30) {}

  push(chunk: Buffer, onPacket: (p: Packet) => void): void {
    let buf = chunk;
    this.aligned = this.pendingLength === 0 && this.partSeq < 0;
    if (this.pendingLength > 0) {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
      // Wait for at least a header, and then for the whole physical packet, before joining.
      if (this.pendingLength < HEADER_LENGTH) return;
      const head =
        this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, Math.min(this.pendingLength, HEADER_LENGTH + 4));
      const need = HEADER_LENGTH + head.readUIntLE(0, 3);
      if (this.pendingLength < need) return;
      buf = Buffer.concat(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
    }
    let pos = 0;
    while (buf.length - pos >= HEADER_LENGTH) {
      const length = buf.readUIntLE(pos, 3);
      if (length > this.maxLogical) throw new MysqlProtocolError('Got a packet bigger than allowed');
      const end = pos + HEADER_LENGTH + length;
      if (end > buf.length) break;
      const seq = buf[pos + SEQUENCE_ID_OFFSET]!;
      const raw = buf.subarray(pos, end);
      const payload = buf.subarray(pos + HEADER_LENGTH, end);
      pos = end;
      if (this.partSeq >= 0) {
        if (seq !== ((this.lastSeq + 1) & 0xff)) throw new MysqlProtocolError('Got packets out of order');
        this.parts.push(payload);
        this.partRaws.push(raw);
        this.lastSeq = seq;
        if (this.parts.length * MAX_PACKET > this.maxLogical) throw new MysqlProtocolError('Got a packet bigger than allowed');
        if (length === MAX_PACKET) continue;
        const p: Packet = { seq: this.partSeq, lastSeq: seq, payload: Buffer.concat(this.parts), raws: this.partRaws };
        this.parts = [];
        this.partRaws = [];
        this.partSeq = -1;
        onPacket(p);
        continue;
      }
      if (length === MAX_PACKET) {
        this.partSeq = seq;
        this.lastSeq = seq;
        this.parts = [payload];
        this.partRaws = [raw];
        continue;
      }
      onPacket({ seq, lastSeq: seq, payload, raws: [raw] });
    }
    if (this.partSeq >= 0) this.aligned = false;
    if (pos < buf.length) {
      this.aligned = false;
      const rest = buf.subarray(pos);
      this.pending = [rest];
      this.pendingLength = rest.length;
    }
  }

  /** Bytes received but not yet framed (handed over when the owner changes). */
  takeBuffered(): Buffer {
    const out = Buffer.concat([...this.partRaws, ...this.pending]);
    this.pending = [];
    this.pendingLength = 0;
    this.parts = [];
    this.partRaws = [];
    this.partSeq = -1;
    return out;
  }
}

/** Frames a payload as one or more physical packets starting at `seq`; returns the next seq too. */
export function framePacket(payload: Buffer, seq: number): { bytes: Buffer; nextSeq: number } {
  const out: Buffer[] = [];
  let pos = 0;
  let s = seq & 0xff;
  for (;;) {
    const n = Math.min(MAX_PACKET, payload.length - pos);
    const header = Buffer.allocUnsafe(HEADER_LENGTH);
    header.writeUIntLE(n, 0, 3);
    header[SEQUENCE_ID_OFFSET] = s;
    out.push(header, payload.subarray(pos, pos + n));
    pos += n;
    s = (s + 1) & 0xff;
    if (n < MAX_PACKET) break;
  }
  return { bytes: out.length === 2 ? Buffer.concat(out) : Buffer.concat(out), nextSeq: s };
}

export function packet(payload: Buffer, seq: number): Buffer {
  return framePacket(payload, seq).bytes;
}

// ---------------------------------------------------------------------------------------------
// Length-encoded integers and strings.

export function readLenenc(buf: Buffer, pos: number): { value: number | null; next: number } {
  const first = buf[pos];
  if (first === undefined) throw new MysqlProtocolError('malformed packet: truncated length');
  if (first < Lenenc.NULL) return { value: first, next: pos + 1 };
  if (first === Lenenc.NULL) return { value: null, next: pos + 1 };
  if (first === Lenenc.INT2) return { value: need(buf, pos, 3) && buf.readUInt16LE(pos + 1), next: pos + 3 };
  if (first === Lenenc.INT3) return { value: need(buf, pos, 4) && buf.readUIntLE(pos + 1, 3), next: pos + 4 };
  if (first === Lenenc.INT8) {
    need(buf, pos, 9);
    const big = buf.readBigUInt64LE(pos + 1);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new MysqlProtocolError('malformed packet: length out of range');
    return { value: Number(big), next: pos + 9 };
  }
  throw new MysqlProtocolError('malformed packet: bad length prefix');
}

function need(buf: Buffer, pos: number, n: number): true {
  if (pos + n > buf.length) throw new MysqlProtocolError('malformed packet: truncated length');
  return true;
}

/** A length-encoded string; null for the NULL marker (0xfb) in text rows. */
export function readLenencBytes(buf: Buffer, pos: number): { value: Buffer | null; next: number } {
  const len = readLenenc(buf, pos);
  if (len.value === null) return { value: null, next: len.next };
  const end = len.next + len.value;
  if (end > buf.length) throw new MysqlProtocolError('malformed packet: value runs past the packet');
  return { value: buf.subarray(len.next, end), next: end };
}

export function lenencInt(n: number): Buffer {
  if (n < Lenenc.NULL) return Buffer.from([n]);
  if (n < 0x10000) {
    const b = Buffer.allocUnsafe(3);
    b[0] = Lenenc.INT2;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n < 0x1000000) {
    const b = Buffer.allocUnsafe(4);
    b[0] = Lenenc.INT3;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.allocUnsafe(9);
  b[0] = Lenenc.INT8;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(value: Buffer | string): Buffer {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([lenencInt(b.length), b]);
}

export function readNulString(buf: Buffer, pos: number): { value: Buffer; next: number } {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new MysqlProtocolError('malformed packet: unterminated string');
  return { value: buf.subarray(pos, end), next: end + 1 };
}

// ---------------------------------------------------------------------------------------------
// Generic packets.

export function okPayload(
  options: { affectedRows?: number; insertId?: number; status?: number; warnings?: number; info?: string; header?: number } = {},
): Buffer {
  const status = Buffer.alloc(4);
  status.writeUInt16LE(options.status ?? Status.AUTOCOMMIT, 0);
  status.writeUInt16LE(options.warnings ?? 0, 2);
  return Buffer.concat([
    Buffer.from([options.header ?? Marker.OK]),
    lenencInt(options.affectedRows ?? 0),
    lenencInt(options.insertId ?? 0),
    status,
    Buffer.from(options.info ?? '', 'utf8'),
  ]);
}

export function errPayload(errno: number, sqlState: string, message: string): Buffer {
  const head = Buffer.alloc(9);
  head[0] = Marker.ERR;
  head.writeUInt16LE(errno, 1);
  head[3] = SQL_STATE_MARKER;
  head.write(sqlState.padEnd(5, '0').slice(0, 5), 4, 'latin1');
  return Buffer.concat([head, Buffer.from(message, 'utf8')]);
}

export function eofPayload(status: number, warnings = 0): Buffer {
  const b = Buffer.alloc(5);
  b[0] = Marker.EOF;
  b.writeUInt16LE(warnings, 1);
  b.writeUInt16LE(status, 3);
  return b;
}

export interface ErrPacket {
  errno: number;
  sqlState: string;
  message: string;
}

export function parseErr(payload: Buffer): ErrPacket {
  const errno = payload.length >= 3 ? payload.readUInt16LE(1) : 0;
  if (payload.length >= 9 && payload[3] === SQL_STATE_MARKER) {
    return { errno, sqlState: payload.toString('latin1', 4, 9), message: payload.toString('utf8', 9) };
  }
  return { errno, sqlState: 'HY000', message: payload.toString('utf8', 3) };
}

/** Status flags of an OK packet (0x00 or, with DEPRECATE_EOF, 0xfe) or of an EOF packet. */
export function terminatorStatus(payload: Buffer): number {
  if (payload[0] === Marker.EOF && payload.length < 9) return payload.length >= 5 ? payload.readUInt16LE(3) : 0;
  let pos = readLenenc(payload, 1).next;
  pos = readLenenc(payload, pos).next;
  return pos + 2 <= payload.length ? payload.readUInt16LE(pos) : 0;
}

/** Affected rows of an OK packet. */
export function okAffectedRows(payload: Buffer): number {
  return readLenenc(payload, 1).value ?? 0;
}

export function okInfo(payload: Buffer): string {
  let pos = readLenenc(payload, 1).next;
  pos = readLenenc(payload, pos).next;
  pos += 4;
  return pos < payload.length ? payload.toString('utf8', pos) : '';
}
