/**
 * RESP (Redis serialization protocol), versions 2 and 3: the client side's command reader and
 * the backend side's reply reader, plus encoders for what the gateway itself says.
 *
 * Both readers are incremental and bounded: a value is never assembled from more bytes than its
 * limit allows, a bulk payload is collected once (no re-concatenation per chunk), and header lines
 * have a fixed maximum length. Malformed input raises RespError with a message in Redis's own words
 * ("Protocol error: ..."), which the relay sends back as `-ERR` before closing, as Redis does.
 */

export class RespError extends Error {}

// ---------------------------------------------------------------------------------------------
// The one table of RESP's wire constants, from the protocol specification
// (https://redis.io/docs/latest/develop/reference/protocol-spec/, "RESP protocol description").

/** The first byte of every value: RESP2's five types, then those RESP3 added. */
export const RespType = {
  // RESP2
  SimpleString: 0x2b, // +
  SimpleError: 0x2d, // -
  Integer: 0x3a, // :
  BulkString: 0x24, // $
  Array: 0x2a, // *
  // RESP3
  Null: 0x5f, // _
  Double: 0x2c, // ,
  Boolean: 0x23, // #
  BulkError: 0x21, // !
  VerbatimString: 0x3d, // =
  BigNumber: 0x28, // (
  Map: 0x25, // %
  Attribute: 0x7c, // |
  Set: 0x7e, // ~
  Push: 0x3e, // >
} as const;

/** Every header line, simple value and bulk payload ends in CR LF. */
export const CR = 0x0d;
export const LF = 0x0a;
export const CRLF_LENGTH = 2;
/** RESP3 booleans: `#t` or `#f`. */
const TRUE = 0x74; // t

/** RespType's markers as text, for the encoders' templates (computed once). */
const Mark = {
  simple: String.fromCharCode(RespType.SimpleString),
  error: String.fromCharCode(RespType.SimpleError),
  integer: String.fromCharCode(RespType.Integer),
  bulk: String.fromCharCode(RespType.BulkString),
  array: String.fromCharCode(RespType.Array),
  null: String.fromCharCode(RespType.Null),
  double: String.fromCharCode(RespType.Double),
  boolean: String.fromCharCode(RespType.Boolean),
  bloberror: String.fromCharCode(RespType.BulkError),
  verbatim: String.fromCharCode(RespType.VerbatimString),
  bignum: String.fromCharCode(RespType.BigNumber),
  map: String.fromCharCode(RespType.Map),
  set: String.fromCharCode(RespType.Set),
  push: String.fromCharCode(RespType.Push),
} as const;
/** CR LF as text, for the same templates. */
const EOL = '\r\n';

const EMPTY = Buffer.alloc(0);
/** Longest header line (`*123\r\n`, `$456\r\n`) or inline command, as Redis (PROTO_INLINE_MAX_SIZE). */
export const MAX_INLINE_BYTES = 64 * 1024;
/** Most arguments in one command (Redis allows up to INT_MAX; far beyond anything real). */
export const MAX_ARGS = 1024 * 1024;

export interface CommandLimits {
  /** Largest single argument (Redis: proto-max-bulk-len, 512 MB by default). */
  maxBulkBytes: number;
  /** Largest command in all (its arguments summed, each counted with ARG_OVERHEAD more bytes). */
  maxCommandBytes: number;
  /** Most arguments in one command. */
  maxArgs: number;
}

/** What one argument costs the gateway besides its bytes (the Buffer view holding it), roughly. */
const ARG_OVERHEAD = 64;

export const DEFAULT_COMMAND_LIMITS: CommandLimits = {
  maxBulkBytes: 64 * 1024 * 1024,
  maxCommandBytes: 128 * 1024 * 1024,
  maxArgs: MAX_ARGS,
};

export interface ParsedCommand {
  args: Buffer[];
  /**
   * A RESP array's bytes exactly as received, in order (one slice when it arrived in one chunk, more
   * when it was split): what the relay forwards, so the backend runs the very bytes that were
   * parsed and decided. null for an inline command, which is forwarded as the RESP encoding of its
   * parsed arguments (so the backend cannot split it differently from the gateway).
   */
  raw: readonly Buffer[] | null;
  /** Sent as an inline command (plain text line). */
  inline: boolean;
}

/**
 * Reads client commands: RESP arrays of bulk strings, or inline commands (`PING\r\n`, as telnet
 * sends them). Parsing is strict where Redis is strict (and stricter where Redis is lax: a bulk
 * string or header line must end in CRLF), so what the gateway decides on is what the backend
 * executes.
 *
 * A command's bytes are collected as it is parsed, whatever the chunking: `frame` holds its pieces
 * from earlier chunks, `runStart` where its bytes begin in the current buffer. A bulk string that
 * spans chunks is collected once (into its argument) and that very buffer is part of the frame.
 */
export class CommandReader {
  private carry: Buffer = EMPTY;
  private argsLeft = -1;
  private args: Buffer[] = [];
  private bytes = 0;
  private bulkLen = -1;
  private bulkParts: Buffer[] = [];
  private bulkGot = 0;
  /** Bytes of the command in progress that came before `runStart` (earlier chunks, collected bulks). */
  private frame: Buffer[] = [];
  /** Where the command in progress continues in the current buffer; -1 while a bulk is collected in parts. */
  private runStart = -1;

  constructor(public limits: CommandLimits = DEFAULT_COMMAND_LIMITS) {}

  push(chunk: Buffer, onCommand: (command: ParsedCommand) => void): void {
    let buf = chunk;
    if (this.carry.length) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = EMPTY;
    }
    // A command begun in an earlier buffer goes on at this one's start (the carried bytes included).
    if (this.argsLeft >= 0 && this.bulkParts.length === 0) this.runStart = 0;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.argsLeft < 0) {
        if (buf[pos] === RespType.Array) {
          const eol = lineEnd(buf, pos, 'too big mbulk count string');
          if (eol < 0) return this.keep(buf, pos);
          const count = parseInteger(buf, pos + 1, eol);
          // Redis skips `*0` and `*-1` (and any count below 1); other negative counts are refused
          // here: no client sends them, and nothing about them needs to reach the backend.
          if (count === null || count < -1 || count > this.limits.maxArgs) throw new RespError('Protocol error: invalid multibulk length');
          const start = pos;
          pos = eol + CRLF_LENGTH;
          if (count <= 0) continue;
          this.argsLeft = count;
          this.args = [];
          this.bytes = 0;
          this.frame = [];
          this.runStart = start;
          continue;
        }
        const nl = buf.indexOf(LF, pos);
        if (nl < 0) {
          if (n - pos > MAX_INLINE_BYTES) throw new RespError('Protocol error: too big inline request');
          return this.keep(buf, pos);
        }
        if (nl - pos > MAX_INLINE_BYTES) throw new RespError('Protocol error: too big inline request');
        // Redis looks for the line's end with strchr, which stops at a NUL: it would never run
        // this line (nor anything after it). Refused rather than guessed at.
        const nul = buf.indexOf(0, pos);
        if (nul >= 0 && nul < nl) throw new RespError('Protocol error: NUL byte in inline request (jitgate)');
        // latin1 both ways keeps every byte as it was sent.
        const line = buf.toString('latin1', pos, nl > pos && buf[nl - 1] === CR ? nl - 1 : nl);
        pos = nl + 1;
        const args = splitInline(line);
        if (args.length === 0) continue;
        onCommand({ args: args.map((a) => Buffer.from(a, 'latin1')), raw: null, inline: true });
        continue;
      }
      if (this.bulkLen < 0) {
        if (buf[pos] !== RespType.BulkString) {
          throw new RespError(`Protocol error: expected '$', got '${String.fromCharCode(buf[pos]!)}'`);
        }
        const eol = lineEnd(buf, pos, 'too big bulk count string');
        if (eol < 0) return this.keep(buf, pos);
        const len = parseInteger(buf, pos + 1, eol);
        if (len === null || len < 0 || len > this.limits.maxBulkBytes) throw new RespError('Protocol error: invalid bulk length');
        if (this.bytes + len > this.limits.maxCommandBytes) throw new RespError('Protocol error: command too large for jitgate');
        this.bulkLen = len;
        this.bulkGot = 0;
        this.bulkParts = [];
        pos = eol + CRLF_LENGTH;
        continue;
      }
      const need = this.bulkLen + CRLF_LENGTH - this.bulkGot;
      const avail = n - pos;
      if (this.bulkParts.length === 0 && avail >= need) {
        this.finishArg(buf.subarray(pos, pos + this.bulkLen), buf, pos + this.bulkLen);
        pos += need;
      } else if (avail >= need) {
        this.bulkParts.push(buf.subarray(pos, pos + need));
        const whole = Buffer.concat(this.bulkParts);
        this.finishArg(whole.subarray(0, this.bulkLen), whole, this.bulkLen);
        pos += need;
        // The payload and its CRLF, as received, now in one buffer: the frame goes on after it.
        this.frame.push(whole);
        this.runStart = pos;
      } else {
        if (this.bulkParts.length === 0) this.closeRun(buf, pos);
        this.bulkParts.push(buf.subarray(pos));
        this.bulkGot += avail;
        this.runStart = -1;
        return;
      }
      if (this.argsLeft === 0) {
        this.closeRun(buf, pos);
        const raw = this.frame;
        const args = this.args;
        this.argsLeft = -1;
        this.args = [];
        this.bytes = 0;
        this.frame = [];
        this.runStart = -1;
        onCommand({ args, raw, inline: false });
      }
    }
    // The buffer ended inside a command (after a complete header line or argument): what was
    // read of it so far belongs to its frame.
    if (this.argsLeft >= 0) this.closeRun(buf, pos);
  }

  /** Adds the command's bytes from `runStart` up to `end` of the current buffer to its frame. */
  private closeRun(buf: Buffer, end: number): void {
    if (this.runStart >= 0 && end > this.runStart) this.frame.push(buf.subarray(this.runStart, end));
    this.runStart = -1;
  }

  private finishArg(arg: Buffer, buf: Buffer, crlf: number): void {
    if (buf[crlf] !== CR || buf[crlf + 1] !== LF) throw new RespError('Protocol error: bulk string not terminated by CRLF');
    this.args.push(arg);
    this.bytes += arg.length + ARG_OVERHEAD;
    this.argsLeft--;
    this.bulkLen = -1;
    this.bulkParts = [];
    this.bulkGot = 0;
  }

  /** An incomplete header or inline line at `pos`: carried to the next buffer (bounded by MAX_INLINE_BYTES). */
  private keep(buf: Buffer, pos: number): void {
    if (this.argsLeft >= 0) this.closeRun(buf, pos);
    this.carry = Buffer.from(buf.subarray(pos));
  }
}

function lineEnd(buf: Buffer, pos: number, what: string): number {
  const cr = buf.indexOf(CR, pos);
  if (cr < 0 || cr + 1 >= buf.length) {
    if (buf.length - pos > MAX_INLINE_BYTES) throw new RespError(`Protocol error: ${what}`);
    return -1;
  }
  if (buf[cr + 1] !== LF) throw new RespError('Protocol error: expected CRLF after a header');
  return cr;
}

/** A decimal integer exactly as Redis accepts one (string2ll): no sign but -, no leading zeros. */
function parseInteger(buf: Buffer, start: number, end: number): number | null {
  if (end <= start || end - start > 20) return null;
  let i = start;
  let neg = false;
  if (buf[i] === 0x2d /* - */) {
    neg = true;
    i++;
    if (i === end) return null;
  }
  if (buf[i] === 0x30 /* 0 */ && (end - i > 1 || neg)) return null;
  let v = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  return neg ? -v : v;
}

/** C's isspace in the C locale (Redis skips these between arguments). */
function isCSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/** Ends an unquoted argument (sdssplitargs: only these, not \v or \f). */
function endsWord(c: string): boolean {
  return c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\0';
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

/**
 * Splits an inline command exactly as Redis does (sdssplitargs): C-locale spaces separate
 * arguments, a quote opens quoting anywhere in an argument (`a"b c"` is one argument, `ab c`),
 * "..." knows \xHH and \n \r \t \b \a escapes, '...' only \', and a closing quote must be followed
 * by a space or the end. `line` holds bytes as latin1 characters.
 */
export function splitInline(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isCSpace(line[i])) i++;
    if (i >= n) return out;
    let cur = '';
    let quote: '"' | "'" | null = null;
    for (;;) {
      const c = line[i];
      if (quote === '"') {
        if (c === undefined) throw new RespError('Protocol error: unbalanced quotes in request');
        if (c === '\\' && line[i + 1] === 'x' && isHex(line[i + 2]) && isHex(line[i + 3])) {
          cur += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else if (c === '\\' && i + 1 < n) {
          const e = line[i + 1]!;
          cur += ({ n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' } as Record<string, string>)[e] ?? e;
          i += 2;
        } else if (c === '"') {
          if (i + 1 < n && !isCSpace(line[i + 1])) throw new RespError('Protocol error: unbalanced quotes in request');
          i++;
          break;
        } else {
          cur += c;
          i++;
        }
      } else if (quote === "'") {
        if (c === undefined) throw new RespError('Protocol error: unbalanced quotes in request');
        if (c === '\\' && line[i + 1] === "'") {
          cur += "'";
          i += 2;
        } else if (c === "'") {
          if (i + 1 < n && !isCSpace(line[i + 1])) throw new RespError('Protocol error: unbalanced quotes in request');
          i++;
          break;
        } else {
          cur += c;
          i++;
        }
      } else {
        if (c === undefined) break;
        i++;
        if (endsWord(c)) break;
        if (c === '"' || c === "'") quote = c;
        else cur += c;
      }
    }
    out.push(cur);
  }
}

// ---------------------------------------------------------------------------------------------
// Replies

/** A decoded reply. Bulk payloads past the reader's keep limit are cut (`cut` = full length). */
export type RespValue =
  | { type: 'simple'; text: string }
  | { type: 'error'; text: string }
  | { type: 'integer'; text: string }
  | { type: 'bulk'; data: Buffer | null; cut?: number }
  | { type: 'verbatim'; format: string; data: Buffer; cut?: number }
  | { type: 'bloberror'; data: Buffer }
  | { type: 'null' }
  | { type: 'double'; text: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'bignum'; text: string }
  | { type: 'array' | 'set' | 'push' | 'map'; items: RespValue[] | null; count: number; cut?: boolean };

export type AggregateType = 'array' | 'set' | 'push' | 'map';

interface Frame {
  value: Extract<RespValue, { type: AggregateType }> | null;
  left: number;
  /** Attribute frames (`|`) are read and dropped from the tree; their bytes still pass. */
  attribute: boolean;
}

export interface ReplyLimits {
  /** Bytes kept of each bulk payload in the decoded tree. */
  keepBytes: number;
  /** Elements kept of each aggregate in the decoded tree. */
  keepItems: number;
}

export interface ReplyHandler {
  /** The first bytes of a reply were read; its decoded head (type) is known. */
  begin(): void;
  /** Raw bytes of the reply in progress, in order (slices of the incoming chunks). */
  bytes(data: Buffer): void;
  /** The reply is complete. */
  end(value: RespValue): void;
}

/**
 * Reads backend replies one top-level value at a time, streaming: raw bytes are handed on as they
 * arrive (a 500 MB value never sits in memory whole), while a tree of the reply is decoded up to
 * the keep limits for the relay's pairing, masking and recording.
 */
export class ReplyReader {
  private carry: Buffer = EMPTY;
  private stack: Frame[] = [];
  private root: RespValue | null = null;
  private inReply = false;
  /** Bulk payload in progress. */
  private bulk: { left: number; kind: 'bulk' | 'verbatim' | 'bloberror'; kept: Buffer[]; keptLen: number; len: number } | null = null;

  constructor(public limits: ReplyLimits) {}

  push(chunk: Buffer, h: ReplyHandler): void {
    let buf = chunk;
    if (this.carry.length) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = EMPTY;
    }
    let pos = 0;
    let emitFrom = 0;
    const n = buf.length;
    while (pos < n) {
      if (!this.inReply) {
        this.inReply = true;
        this.root = null;
        emitFrom = pos;
        h.begin();
      }
      if (this.bulk) {
        const b = this.bulk;
        const take = Math.min(b.left, n - pos);
        const payloadLeft = b.left - CRLF_LENGTH; // payload bytes still to come (the rest is CRLF)
        const payloadTake = Math.max(0, Math.min(take, payloadLeft));
        if (payloadTake > 0 && b.keptLen < this.limits.keepBytes) {
          const k = Math.min(payloadTake, this.limits.keepBytes - b.keptLen);
          b.kept.push(buf.subarray(pos, pos + k));
          b.keptLen += k;
        }
        b.left -= take;
        pos += take;
        if (b.left > 0) break;
        if (buf[pos - 2] !== CR || buf[pos - 1] !== LF) {
          // CRLF may straddle chunks; check only what this chunk holds.
          if (take >= CRLF_LENGTH) throw new RespError('bulk reply not terminated by CRLF');
        }
        this.bulk = null;
        const data = b.kept.length === 1 ? b.kept[0]! : Buffer.concat(b.kept);
        const cut = b.len > b.keptLen ? b.len : undefined;
        let value: RespValue;
        if (b.kind === 'verbatim') {
          value = {
            type: 'verbatim',
            format: data.toString('latin1', 0, 3),
            data: data.subarray(Math.min(4, data.length)),
            ...(cut ? { cut } : {}),
          };
        } else if (b.kind === 'bloberror') value = { type: 'bloberror', data };
        else value = { type: 'bulk', data, ...(cut ? { cut } : {}) };
        if (this.add(value)) {
          h.bytes(buf.subarray(emitFrom, pos));
          emitFrom = pos;
          this.complete(h);
        }
        continue;
      }
      const cr = buf.indexOf(CR, pos);
      if (cr < 0 || cr + 1 >= n) {
        if (n - pos > MAX_INLINE_BYTES) throw new RespError('reply line too long');
        if (emitFrom < pos) h.bytes(buf.subarray(emitFrom, pos));
        this.carry = Buffer.from(buf.subarray(pos));
        return;
      }
      if (buf[cr + 1] !== LF) throw new RespError('reply line not terminated by CRLF');
      const type = buf[pos]!;
      const text = () => buf.toString('utf8', pos + 1, cr);
      const len = () => {
        const v = parseInteger(buf, pos + 1, cr);
        if (v === null) throw new RespError(`invalid length in reply: ${buf.toString('latin1', pos, Math.min(cr, pos + 24))}`);
        return v;
      };
      const next = cr + CRLF_LENGTH;
      let value: RespValue | null = null;
      let opened = false;
      switch (type) {
        case RespType.SimpleString:
          value = { type: 'simple', text: text() };
          break;
        case RespType.SimpleError:
          value = { type: 'error', text: text() };
          break;
        case RespType.Integer:
          value = { type: 'integer', text: text() };
          break;
        case RespType.Null:
          value = { type: 'null' };
          break;
        case RespType.Double:
          value = { type: 'double', text: text() };
          break;
        case RespType.Boolean:
          value = { type: 'boolean', value: buf[pos + 1] === TRUE };
          break;
        case RespType.BigNumber:
          value = { type: 'bignum', text: text() };
          break;
        case RespType.BulkString:
        case RespType.VerbatimString:
        case RespType.BulkError: {
          const l = len();
          if (l < 0) {
            value = type === RespType.BulkString ? { type: 'bulk', data: null } : { type: 'null' };
            break;
          }
          this.bulk = {
            left: l + CRLF_LENGTH,
            kind: type === RespType.BulkString ? 'bulk' : type === RespType.VerbatimString ? 'verbatim' : 'bloberror',
            kept: [],
            keptLen: 0,
            len: l,
          };
          opened = true;
          break;
        }
        case RespType.Array:
        case RespType.Set:
        case RespType.Push:
        case RespType.Map:
        case RespType.Attribute: {
          const l = len();
          const agg: AggregateType =
            type === RespType.Array ? 'array' : type === RespType.Set ? 'set' : type === RespType.Push ? 'push' : 'map';
          if (l < 0) {
            value = { type: agg, items: null, count: -1 };
            break;
          }
          const elements = type === RespType.Map || type === RespType.Attribute ? l * 2 : l;
          if (type === RespType.Attribute) {
            this.stack.push({ value: null, left: elements, attribute: true });
            opened = true;
            if (elements === 0) this.stack.pop();
            break;
          }
          const v = { type: agg, items: [] as RespValue[], count: l } as Extract<RespValue, { type: AggregateType }>;
          if (elements === 0) {
            value = v;
            break;
          }
          if (!this.attach(v)) break;
          this.stack.push({ value: v, left: elements, attribute: false });
          opened = true;
          break;
        }
        default:
          throw new RespError(`unexpected reply type byte 0x${type.toString(16)}`);
      }
      pos = next;
      if (opened) continue;
      if (value && this.add(value)) {
        h.bytes(buf.subarray(emitFrom, pos));
        emitFrom = pos;
        this.complete(h);
      }
    }
    if (emitFrom < pos) h.bytes(buf.subarray(emitFrom, pos));
  }

  /** Puts a new aggregate in its parent (or as the root) without counting it as a finished element. */
  private attach(v: RespValue): boolean {
    const top = this.stack[this.stack.length - 1];
    if (!top) {
      this.root = v;
      return true;
    }
    if (top.value?.items && top.value.items.length < this.limits.keepItems) top.value.items.push(v);
    else if (top.value) top.value.cut = true;
    return true;
  }

  /** A finished scalar (or empty aggregate): attach it and close the frames it completes. True = reply done. */
  private add(value: RespValue): boolean {
    if (this.stack.length === 0) {
      this.root = value;
      return true;
    }
    const top = this.stack[this.stack.length - 1]!;
    if (!top.attribute && top.value?.items) {
      if (top.value.items.length < this.limits.keepItems) top.value.items.push(value);
      else top.value.cut = true;
    }
    return this.closeFrames();
  }

  private closeFrames(): boolean {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) return this.root !== null;
      top.left--;
      if (top.left > 0) return false;
      this.stack.pop();
      // An attribute precedes the value it describes: it completes nothing by itself.
      if (top.attribute) return false;
      if (this.stack.length === 0) return true;
    }
  }

  private complete(h: ReplyHandler): void {
    const value = this.root!;
    this.inReply = false;
    this.root = null;
    h.end(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoders

const CRLF = Buffer.from(EOL);

export function encodeCommand(args: readonly (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`${Mark.array}${args.length}${EOL}`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`${Mark.bulk}${b.length}${EOL}`), b, CRLF);
  }
  return Buffer.concat(parts);
}

/** An error reply; `text` starts with its code (`ERR`, `NOPERM`, `NOAUTH`). Newlines are flattened. */
export function errorReply(text: string): Buffer {
  return Buffer.from(`${Mark.error}${text.replace(/[\r\n]+/g, ' ')}${EOL}`, 'utf8');
}

export function simpleReply(text: string): Buffer {
  return Buffer.from(`${Mark.simple}${text}${EOL}`, 'utf8');
}

/** Encodes a decoded (uncut) value back to RESP; used when masking changed it. */
export function encodeValue(v: RespValue): Buffer {
  const parts: Buffer[] = [];
  write(v, parts);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function write(v: RespValue, out: Buffer[]): void {
  switch (v.type) {
    case 'simple':
    case 'error':
      out.push(Buffer.from(`${Mark[v.type]}${v.text}${EOL}`, 'utf8'));
      return;
    case 'integer':
    case 'double':
    case 'bignum':
      out.push(Buffer.from(`${Mark[v.type]}${v.text}${EOL}`));
      return;
    case 'null':
      out.push(Buffer.from(`${Mark.null}${EOL}`));
      return;
    case 'boolean':
      out.push(Buffer.from(`${Mark.boolean}${v.value ? 't' : 'f'}${EOL}`));
      return;
    case 'bulk':
      if (v.data === null) out.push(Buffer.from(`${Mark.bulk}-1${EOL}`));
      else out.push(Buffer.from(`${Mark.bulk}${v.data.length}${EOL}`), v.data, CRLF);
      return;
    case 'verbatim': {
      const body = Buffer.concat([Buffer.from(`${v.format}:`), v.data]);
      out.push(Buffer.from(`${Mark.verbatim}${body.length}${EOL}`), body, CRLF);
      return;
    }
    case 'bloberror':
      out.push(Buffer.from(`${Mark.bloberror}${v.data.length}${EOL}`), v.data, CRLF);
      return;
    default: {
      const mark = Mark[v.type];
      if (v.items === null) {
        out.push(Buffer.from(`${mark}-1${EOL}`));
        return;
      }
      out.push(Buffer.from(`${mark}${v.count}${EOL}`));
      for (const item of v.items) write(item, out);
    }
  }
}

/** A bulk or simple string's text (UTF-8), for classification; undefined for other types. */
export function stringOf(v: RespValue | undefined): string | undefined {
  if (!v) return undefined;
  if (v.type === 'bulk') return v.data?.toString('utf8');
  if (v.type === 'simple') return v.text;
  return undefined;
}
