/**
 * Masks what a PostgreSQL backend sends a client, as it streams, for a session with masking.
 *
 * Client side, it follows which statement each result belongs to: simple Query strings (one plan
 * per statement), and in the extended protocol prepared statements and portals (Parse, Bind,
 * Describe, Execute, Close, Sync), so a statement prepared once and executed again without a new
 * Describe is still masked. When a portal is executed and no row description is known for it, a
 * Describe is injected before the Execute and its reply swallowed: rows are never sent unmasked for
 * lack of a plan.
 *
 * Backend side: RowDescription gives each column's origin (table OID, attribute number); with the
 * statement's lineage plan this decides each column's mask. DataRows that need no change are left
 * alone (the relay forwards their original bytes); touched ones are rebuilt, masked values encoded
 * for the column's type and format (text-like types get the masked text, other types NULL). COPY TO
 * STDOUT in text, CSV and binary, errors and notices that could echo values, and notification
 * payloads are covered too. Anything unexpected is masked, never passed through.
 */
import { copyBytes } from '../../core/bytes.js';
import type { ColumnMask, MaskedColumnNote, StatementMaskPlan } from '../../core/types.js';
import type { PostgresMasking } from './masking.js';
import { isFixedHint, quotesOnlyStatement } from '../../masking/pg-messages.js';
import type { ByteMask } from '../../masking/strategies.js';
import { build, DescribeTarget, HEADER_LENGTH, MessageType, readCString, TransactionStatus } from './codec.js';

/** Masks every column when there is no plan at all (never expected; fail closed). */
const NO_PLAN: ColumnMask = Object.freeze({ rule: 'lineage', reason: 'masking_unprovable', strategy: 'redact' }) as ColumnMask;

/** Types whose text and binary encodings are both the UTF-8 text: text, varchar, bpchar, name, unknown. */
const TEXT_LIKE = new Set([25, 1043, 1042, 19, 705]);

/**
 * What a changed cell becomes: SQL NULL, a text or bytes to write, or a mask applied to the
 * cell's own bytes as the row is rebuilt (ASCII values under most strategies: no string made).
 */
type Replacement = null | string | Buffer | ByteMask;

/**
 * What `onBackend` answers for a DataRow it rebuilt: the row is at `rowBuf[rowStart, rowEnd)`
 * (read them before the next message). Compared by identity.
 */
export const REBUILT_ROW: readonly Buffer[] = Object.freeze([]);

/** Rebuilt rows are written into arenas of this size (a bigger row gets one of its own). */
const ARENA_BYTES = 64 * 1024;
const EMPTY_ARENA = Buffer.alloc(0);
/** Types holding free text that detectors may rewrite in place in text format (json, jsonb, xml, text arrays). */
const DOCUMENT_LIKE = new Set([114, 3802, 142, 1009, 1015, 1014]);

interface Field {
  name: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  format: number;
}

interface ResultMask {
  masks: Array<ColumnMask | undefined>;
  /** Per column, the mask in its byte-level form where it has one and the type holds text. */
  bytes: Array<ByteMask | undefined>;
  types: number[];
  formats: number[];
  /** Any column masked: rows must be rebuilt. */
  any: boolean;
}

interface PreparedState {
  plan: StatementMaskPlan | undefined;
  /** The statement text (errors may keep what quotes only this). */
  text?: string;
  fields?: Field[];
}

interface PortalState {
  statement: PreparedState | undefined;
  formats: number[];
  fields?: Field[];
  result?: ResultMask;
}

type Entry =
  | { kind: 'query'; plans: StatementMaskPlan[] | undefined; index: number; text: string; touchMark: number }
  | { kind: 'describe'; target: 'S' | 'P'; name: string; injected: boolean }
  | { kind: 'execute'; portal: string }
  | { kind: 'sync'; touchMark: number };

interface CopyState {
  format: 'text' | 'csv' | 'binary';
  options: NonNullable<StatementMaskPlan['copy']>;
  masks: Array<ColumnMask | undefined>;
  headerPending: boolean;
  first: boolean;
}

const DEFAULT_COPY: NonNullable<StatementMaskPlan['copy']> = {
  format: 'text',
  delimiter: '\t',
  quote: '"',
  escape: '"',
  header: false,
  null: '\\N',
};

export class ResultMasker {
  private readonly statements = new Map<string, PreparedState>();
  private readonly portals = new Map<string, PortalState>();
  private readonly entries: Entry[] = [];
  private current: ResultMask | undefined;
  private copy: CopyState | undefined;
  private readonly noticed = new Set<string>();
  /**
   * Errors and notices can arrive for a statement that read masked data after its own plan is gone:
   * at COMMIT (deferred constraints), from a Bind, or between statements. Every statement sent that
   * reads masked data gets a number; the session stays tainted until a ReadyForQuery outside a
   * transaction follows the last of them.
   */
  private touchSeq = 0;
  private touchCleared = 0;
  /** Masked columns of the RowDescription just processed (for the record). */
  columnNotes: MaskedColumnNote[] | undefined;

  /** The row arena: `onBackend` answered REBUILT_ROW for the row at rowBuf[rowStart, rowEnd). */
  rowBuf: Buffer = EMPTY_ARENA;
  rowStart = 0;
  rowEnd = 0;
  private arenaEnd = 0;
  /** Scratch for row(), reused from row to row: [start, end) of each changed cell, and what it becomes. */
  private cells: number[] | undefined;
  private replaced: Replacement[] | undefined;

  constructor(private readonly masking: PostgresMasking) {}

  // -------------------------------------------------------------------------------------------
  // client -> backend

  /** A statement frame (Query, Parse, FunctionCall) going to the backend; `allowed` false = it was refused. */
  onStatement(type: number, buf: Buffer, start: number, end: number, allowed: boolean): void {
    if (type === MessageType.Query) {
      const text = readCString(buf, start + HEADER_LENGTH, end).value;
      const plans = allowed ? this.masking.plan(text) : [];
      if (!plans || plans.some((p) => p.touchesMasked)) this.touchSeq++;
      this.entries.push({ kind: 'query', plans, index: 0, text, touchMark: this.touchSeq });
    } else if (type === MessageType.Parse) {
      const name = readCString(buf, start + HEADER_LENGTH, end);
      const text = readCString(buf, name.next, end).value;
      const plans = allowed ? this.masking.plan(text) : [];
      const plan = plans && plans.length === 1 ? plans[0] : plans?.length === 0 ? EMPTY_PLAN : undefined;
      if (!plan || plan.touchesMasked) this.touchSeq++;
      // A named statement that exists is not replaced by the backend (duplicate name), and one we
      // recorded may not exist (its Parse failed): either way, what runs is one of the two.
      const known = name.value !== '' ? this.statements.get(name.value) : undefined;
      this.statements.set(
        name.value,
        known
          ? { plan: mergePlans(known.plan, plan), text: `${known.text ?? ''}\n${text}`, ...(known.fields ? { fields: known.fields } : {}) }
          : { plan, text },
      );
    } else {
      // FunctionCall (or its substitute Query when refused): answered up to a ReadyForQuery.
      this.entries.push({ kind: 'query', plans: [], index: 0, text: '', touchMark: this.touchSeq });
    }
  }

  /**
   * Any other client frame; returns a message to send to the backend before it (an injected
   * Describe when a portal is executed with no known row description).
   */
  onClientFrame(type: number, buf: Buffer, start: number, end: number): Buffer | undefined {
    switch (type) {
      case MessageType.Bind: {
        const portal = readCString(buf, start + HEADER_LENGTH, end);
        const statement = readCString(buf, portal.next, end);
        const bound = this.statements.get(statement.value);
        const known = portal.value !== '' ? this.portals.get(portal.value) : undefined;
        // As for statements: a named portal is not replaced while it exists.
        const merged = known
          ? { plan: mergePlans(known.statement?.plan, bound?.plan), text: `${known.statement?.text ?? ''}\n${bound?.text ?? ''}` }
          : bound;
        // Executing a statement that reads masked data taints what follows until the session is idle.
        if (!merged?.plan || merged.plan.touchesMasked) this.touchSeq++;
        this.portals.set(portal.value, { statement: merged, formats: resultFormats(buf, statement.next) });
        return undefined;
      }
      case MessageType.Describe: {
        const target = buf[start + HEADER_LENGTH] === DescribeTarget.Statement ? 'S' : 'P';
        this.entries.push({ kind: 'describe', target, name: readCString(buf, start + HEADER_LENGTH + 1, end).value, injected: false });
        return undefined;
      }
      case MessageType.Execute: {
        const name = readCString(buf, start + HEADER_LENGTH, end).value;
        const portal = this.portals.get(name);
        let inject: Buffer | undefined;
        if (!portal?.fields && !portal?.statement?.fields) {
          this.entries.push({ kind: 'describe', target: 'P', name, injected: true });
          inject = build.describePortal(name);
        }
        this.entries.push({ kind: 'execute', portal: name });
        return inject;
      }
      case MessageType.Close: {
        const name = readCString(buf, start + HEADER_LENGTH + 1, end).value;
        if (buf[start + HEADER_LENGTH] === DescribeTarget.Statement) this.statements.delete(name);
        else this.portals.delete(name);
        return undefined;
      }
      case MessageType.Sync:
        this.entries.push({ kind: 'sync', touchMark: this.touchSeq });
        return undefined;
      default:
        return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // backend -> client

  /**
   * One backend message: undefined = forward it unchanged, REBUILT_ROW = send the row at
   * rowBuf[rowStart, rowEnd) instead, otherwise the messages to send instead (an empty list
   * swallows it).
   */
  onBackend(type: number, buf: Buffer, start: number, end: number): readonly Buffer[] | undefined {
    this.columnNotes = undefined;
    switch (type) {
      case MessageType.DataRow:
        return this.row(buf, start, end);
      case MessageType.RowDescription:
        return this.rowDescription(buf, start, end);
      case MessageType.NoData: {
        const head = this.entries[0];
        if (head?.kind === 'describe') {
          this.entries.shift();
          if (head.injected) return [];
        }
        return undefined;
      }
      case MessageType.CommandComplete:
      case MessageType.EmptyQueryResponse:
      case MessageType.PortalSuspended:
        this.resultDone();
        return undefined;
      case MessageType.CopyOutResponse:
        return this.copyStart(buf, start);
      case MessageType.CopyData:
        return this.copy ? this.copyRow(buf, start, end) : undefined;
      case MessageType.CopyDone:
        this.copy = undefined;
        return undefined;
      case MessageType.ErrorResponse:
      case MessageType.NoticeResponse: {
        const plan = this.currentPlan();
        const touches = (plan?.touchesMasked ?? false) || this.touchSeq > this.touchCleared;
        const text = this.currentText();
        if (type === MessageType.ErrorResponse) this.failed();
        return this.fieldsMessage(type, buf, start, end, touches, text);
      }
      case MessageType.NotificationResponse:
        return this.notification(buf, start, end);
      case MessageType.ReadyForQuery:
        this.ready(buf[start + HEADER_LENGTH] === TransactionStatus.Idle);
        return undefined;
      default:
        return undefined;
    }
  }

  private head(): Entry | undefined {
    return this.entries[0];
  }

  /** The plan of the statement whose results are arriving. */
  private currentPlan(): StatementMaskPlan | undefined {
    const head = this.head();
    if (head?.kind === 'query') return head.plans?.[head.index];
    if (head?.kind === 'execute') return this.portals.get(head.portal)?.statement?.plan;
    return undefined;
  }

  /** The text of the statement whose results are arriving (what an error may quote back). */
  private currentText(): string | undefined {
    const head = this.head();
    if (head?.kind === 'query') return head.text;
    if (head?.kind === 'execute') return this.portals.get(head.portal)?.statement?.text;
    return undefined;
  }

  private rowDescription(buf: Buffer, start: number, end: number): Buffer[] | undefined {
    const fields = parseRowDescription(buf, start, end);
    const head = this.head();
    if (head?.kind === 'describe') {
      this.entries.shift();
      if (head.target === 'S') {
        const st = this.statements.get(head.name);
        if (st) st.fields = fields;
        return undefined;
      }
      const portal = this.portals.get(head.name);
      if (portal) {
        portal.fields = fields;
        portal.result = undefined;
        if (!head.injected) this.current = this.resultFor(portal.statement?.plan, fields, portal.formats);
      }
      if (head.injected) return [];
      return this.announce(buf, start, end, portal?.statement?.plan, fields, portal?.formats);
    }
    if (head?.kind === 'query')
      return this.announce(buf, start, end, head.plans?.[head.index] ?? (head.plans ? EMPTY_PLAN : undefined), fields, undefined);
    // A row description nobody asked for: whatever follows is masked entirely.
    const masks = fields.map(() => NO_PLAN);
    this.current = {
      masks,
      bytes: this.byteMasks(masks, fields),
      types: fields.map((f) => f.typeOid),
      formats: fields.map((f) => f.format),
      any: fields.length > 0,
    };
    return undefined;
  }

  /** Sets the current result's masks; a NOTICE names masked columns the first time a set is seen. */
  private announce(
    buf: Buffer,
    start: number,
    end: number,
    plan: StatementMaskPlan | undefined,
    fields: Field[],
    formats: number[] | undefined,
  ): Buffer[] | undefined {
    const result = this.resultFor(plan, fields, formats);
    this.current = result;
    if (!result.any) return undefined;
    const notes: MaskedColumnNote[] = [];
    const named: string[] = [];
    result.masks.forEach((m, i) => {
      if (!m) return;
      notes.push({ column: i, rule: m.rule, reason: m.reason });
      named.push(`${fields[i]!.name} (rule ${m.rule}, ${m.reason})`);
    });
    this.columnNotes = notes;
    const key = named.join('|');
    const original = buf.subarray(start, end);
    if (this.noticed.has(key) || this.noticed.size > 256) return [original];
    this.noticed.add(key);
    const notice = build.notice({ severity: 'NOTICE', code: '01000', message: `jitgate: masked columns: ${named.join(', ')}` });
    return [notice, original];
  }

  private resultFor(plan: StatementMaskPlan | undefined, fields: Field[], formats: number[] | undefined): ResultMask {
    const known = plan && Array.isArray(plan.columns) && plan.columns.length === fields.length ? plan.columns : undefined;
    const fallback = plan ? (plan.fallback ?? undefined) : NO_PLAN;
    const masks = fields.map((f, i) => {
      const fromOrigin = f.tableOid !== 0 ? this.masking.originMask(f.tableOid, f.attnum) : undefined;
      if (fromOrigin) return fromOrigin;
      if (known) return known[i];
      // A column the backend attributes to a known user table is a plain copy of a clean column.
      return f.tableOid >= 16384 ? undefined : fallback;
    });
    return {
      masks,
      bytes: this.byteMasks(masks, fields),
      types: fields.map((f) => f.typeOid),
      formats: fields.map((f, i) => (formats ? formatAt(formats, i) : f.format)),
      any: masks.some((m) => m !== undefined),
    };
  }

  private byteMasks(masks: Array<ColumnMask | undefined>, fields: Field[]): Array<ByteMask | undefined> {
    return masks.map((m, i) => (m && m.strategy !== 'null' && TEXT_LIKE.has(fields[i]!.typeOid) ? this.masking.maskBytes(m) : undefined));
  }

  private row(buf: Buffer, start: number, end: number): readonly Buffer[] | undefined {
    let result = this.current;
    if (!result) {
      const head = this.head();
      if (head?.kind === 'execute') {
        const portal = this.portals.get(head.portal);
        if (portal) {
          const fields = portal.fields ?? portal.statement?.fields;
          if (fields) portal.result ??= this.resultFor(portal.statement?.plan, fields, portal.fields ? undefined : portal.formats);
          result = this.current = portal.result;
        }
      }
    }
    const scrub = this.masking.scrub;
    if (result && !result.any && !scrub) return undefined;
    // First pass: what changes (most columns do not), and where each changed cell lies. Second:
    // one buffer, each run of unchanged bytes between changed cells copied in one piece.
    const count = buf.readInt16BE(start + HEADER_LENGTH);
    const replaced = (this.replaced ??= []);
    let size = end - start;
    let pos = start + HEADER_LENGTH + 2;
    const cells = (this.cells ??= []);
    let changed = 0;
    for (let i = 0; i < count; i++) {
      const cell = pos;
      const length = buf.readInt32BE(pos);
      const from = pos + 4;
      pos = from + (length > 0 ? length : 0);
      if (length < 0) continue;
      const mask = result ? result.masks[i] : NO_PLAN;
      let out: Replacement | undefined;
      let outLength = 0;
      if (mask) {
        const bytes = result?.bytes[i];
        outLength = bytes ? bytes.length(buf, from, pos) : -1;
        out = outLength >= 0 ? bytes : this.maskCell(mask, result?.types[i] ?? 0, buf, from, pos);
      } else if (scrub) out = scrubCell(scrub, result?.types[i] ?? 0, result?.formats[i] ?? 0, buf.subarray(from, pos));
      if (out === undefined) continue;
      replaced[changed >> 1] = out;
      cells[changed++] = cell;
      cells[changed++] = pos;
      if (out === null) outLength = 0;
      else if (typeof out === 'string') outLength = byteLengthOf(out);
      else if (out instanceof Uint8Array) outLength = out.length;
      // else a ByteMask: outLength is the length it answered.
      size += outLength - length;
    }
    if (changed === 0) return undefined;
    const base = this.reserve(size);
    const row = this.rowBuf;
    row[base] = buf[start]!;
    row.writeInt32BE(size - 1, base + 1);
    let at = base + HEADER_LENGTH;
    let copied = start + HEADER_LENGTH;
    for (let k = 0; k < changed >> 1; k++) {
      const cell = cells[k * 2]!;
      // Everything unchanged since the last changed cell (the column count first), in one copy.
      if (cell > copied) at += copyBytes(buf, copied, cell, row, at);
      const valueEnd = cells[k * 2 + 1]!;
      const out = replaced[k]!;
      if (out === null) {
        at = row.writeInt32BE(-1, at);
      } else if (typeof out === 'string') {
        const n = row.write(out, at + 4, 'utf8');
        row.writeInt32BE(n, at);
        at += 4 + n;
      } else if (out instanceof Uint8Array) {
        row.writeInt32BE(out.length, at);
        at += 4 + out.copy(row, at + 4);
      } else {
        // Masked from the value's own bytes (after its 4-byte length) straight into the row.
        const n = out.write(buf, cell + 4, valueEnd, row, at + 4);
        row.writeInt32BE(n, at);
        at += 4 + n;
      }
      copied = valueEnd;
    }
    if (copied < end) copyBytes(buf, copied, end, row, at);
    this.rowStart = base;
    this.rowEnd = base + size;
    return REBUILT_ROW;
  }

  /**
   * Room for a rebuilt row of `size` bytes in the row arena; returns where it starts. Rows are
   * written one after the other, so the relay's output merges a run of them into one slice (no
   * buffer per row, no second copy). An arena is never written over: slices of it may still wait in
   * a socket's queue; a full one is left to them and a new one begins.
   */
  private reserve(size: number): number {
    if (this.rowBuf.length - this.arenaEnd < size) {
      this.rowBuf = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, size));
      this.arenaEnd = 0;
    }
    const at = this.arenaEnd;
    this.arenaEnd += size;
    return at;
  }

  /** The masked value for the column's type: text-like types hold the masked text, others NULL. */
  private maskCell(mask: ColumnMask, type: number, buf: Buffer, from: number, to: number): string | null {
    if (mask.strategy === 'null' || !TEXT_LIKE.has(type)) return null;
    return this.masking.maskValue(mask, buf.toString('utf8', from, to));
  }

  private resultDone(): void {
    this.current = undefined;
    this.copy = undefined;
    const head = this.head();
    if (head?.kind === 'query') head.index++;
    else if (head?.kind === 'execute') this.entries.shift();
  }

  private failed(): void {
    this.current = undefined;
    this.copy = undefined;
    const head = this.head();
    if (head?.kind === 'query') {
      head.index = Number.MAX_SAFE_INTEGER;
      return;
    }
    // The backend skips the rest of an extended-protocol batch until Sync.
    while (this.entries.length && this.entries[0]!.kind !== 'sync' && this.entries[0]!.kind !== 'query') this.entries.shift();
  }

  private ready(idle: boolean): void {
    this.current = undefined;
    this.copy = undefined;
    while (this.entries.length) {
      const e = this.entries.shift()!;
      if (e.kind === 'sync' || e.kind === 'query') {
        // Outside a transaction, nothing sent up to this exchange can still raise anything.
        if (idle) this.touchCleared = Math.max(this.touchCleared, e.touchMark);
        break;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // COPY TO STDOUT

  private copyStart(buf: Buffer, start: number): Buffer[] | undefined {
    // CopyOutResponse: Int8 overall format (1 = binary), then Int16 column count.
    const binary = buf[start + HEADER_LENGTH] === 1;
    const columns = buf.readInt16BE(start + HEADER_LENGTH + 1);
    const plan = this.currentPlan();
    const options = plan?.copy ?? (binary ? { ...DEFAULT_COPY, format: 'binary' as const } : DEFAULT_COPY);
    const known = plan && Array.isArray(plan.columns) && plan.columns.length === columns ? plan.columns : undefined;
    const masks = Array.from({ length: columns }, (_, i) => (known ? known[i] : plan ? plan.fallback : NO_PLAN));
    if (!masks.some((m) => m) && !this.masking.scrub) return undefined;
    this.copy = {
      format: binary ? 'binary' : options.format === 'csv' ? 'csv' : 'text',
      options,
      masks,
      headerPending: options.header && !binary,
      first: true,
    };
    return undefined;
  }

  private copyRow(buf: Buffer, start: number, end: number): Buffer[] | undefined {
    const c = this.copy!;
    const data = buf.subarray(start + HEADER_LENGTH, end);
    if (c.headerPending) {
      c.headerPending = false;
      return undefined;
    }
    let out: Buffer | undefined;
    if (c.format === 'binary') out = this.copyBinary(c, data);
    else {
      const line = data.toString('utf8');
      const rewritten = c.format === 'csv' ? this.copyCsv(c, line) : this.copyText(c, line);
      if (rewritten !== undefined) out = Buffer.from(rewritten, 'utf8');
    }
    c.first = false;
    return out ? [copyData(out)] : undefined;
  }

  private copyValue(mask: ColumnMask | undefined, value: string): string | null {
    if (mask) return mask.strategy === 'null' ? null : this.masking.maskValue(mask, value);
    return this.masking.scrub?.(value) ?? value;
  }

  private copyText(c: CopyState, line: string): string | undefined {
    const newline = line.endsWith('\n') ? '\n' : '';
    const raw = newline ? line.slice(0, -1) : line;
    const fields = splitText(raw, c.options.delimiter);
    let changed = false;
    const out = fields.map((f, i) => {
      if (f === c.options.null) return f;
      const value = unescapeText(f);
      const masked = this.copyValue(i < c.masks.length ? c.masks[i] : NO_PLAN, value);
      if (masked === value) return f;
      changed = true;
      return masked === null ? c.options.null : escapeText(masked, c.options.delimiter);
    });
    return changed ? out.join(c.options.delimiter) + newline : undefined;
  }

  private copyCsv(c: CopyState, line: string): string | undefined {
    const newline = /\r?\n$/.exec(line)?.[0] ?? '';
    const raw = line.slice(0, line.length - newline.length);
    const fields = splitCsv(raw, c.options);
    let changed = false;
    const out = fields.map((f, i) => {
      if (!f.quoted && f.value === c.options.null) return f.raw;
      const masked = this.copyValue(i < c.masks.length ? c.masks[i] : NO_PLAN, f.value);
      if (masked === f.value) return f.raw;
      changed = true;
      return masked === null ? c.options.null : quoteCsv(masked, c.options);
    });
    return changed ? out.join(c.options.delimiter) + newline : undefined;
  }

  /** Binary COPY: each message is one tuple (the first also carries the file header). */
  private copyBinary(c: CopyState, data: Buffer): Buffer | undefined {
    let pos = 0;
    const parts: Buffer[] = [];
    if (c.first && data.length >= 19 && data.toString('latin1', 0, 6) === 'PGCOPY') {
      pos = 19 + data.readInt32BE(15);
      parts.push(data.subarray(0, pos));
    }
    let changed = false;
    while (pos + 2 <= data.length) {
      const count = data.readInt16BE(pos);
      parts.push(data.subarray(pos, pos + 2));
      pos += 2;
      if (count < 0) break;
      for (let i = 0; i < count; i++) {
        const length = data.readInt32BE(pos);
        const value = length < 0 ? null : data.subarray(pos + 4, pos + 4 + length);
        const next = pos + 4 + Math.max(length, 0);
        const mask = i < c.masks.length ? c.masks[i] : NO_PLAN;
        // Binary COPY does not name the column types: a masked value can only become NULL.
        const scrubbed = value && !mask && this.masking.scrub?.(value.toString('utf8')) !== undefined;
        if (value && (mask || scrubbed)) {
          parts.push(int32(-1));
          changed = true;
        } else parts.push(data.subarray(pos, next));
        pos = next;
      }
    }
    if (pos < data.length) parts.push(data.subarray(pos));
    return changed ? Buffer.concat(parts) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // errors, notices, notifications

  /**
   * An ErrorResponse or NoticeResponse. For a statement that reads masked data anywhere, every text
   * field is replaced by a fixed text unless it provably quotes only the statement's own text
   * (masking/pg-messages.ts); the SQLSTATE, severity, position and object-name fields stay.
   */
  private fieldsMessage(
    type: number,
    buf: Buffer,
    start: number,
    end: number,
    touches: boolean,
    statement: string | undefined,
  ): Buffer[] | undefined {
    const scrub = this.masking.scrub;
    if (!touches && !scrub) return undefined;
    const fields: Array<[string, string]> = [];
    let pos = start + HEADER_LENGTH;
    while (pos < end && buf[pos] !== 0) {
      const code = String.fromCharCode(buf[pos]!);
      const value = readCString(buf, pos + 1, end);
      fields.push([code, value.value]);
      pos = value.next;
    }
    const sqlstate = fields.find(([k]) => k === 'C')?.[1] ?? '';
    // Text raised by code (RAISE, triggers) is itself data, whatever it looks like.
    const raised = sqlstate === 'P0001' || sqlstate.startsWith('01') || sqlstate === '00000';
    let changed = false;
    const out: Array<[string, string]> = [];
    for (const [k, v] of fields) {
      let value = v;
      if (touches) {
        if (k === 'M') {
          if (raised || !quotesOnlyStatement(v, statement)) value = 'jitgate: message hidden, the statement reads masked data';
        } else if (k === 'D') value = 'jitgate: detail hidden, the statement reads masked data';
        else if (k === 'H') {
          if (!isFixedHint(v)) value = 'jitgate: hint hidden, the statement reads masked data';
        } else if (k === 'W' || k === 'q' || k === 'p') {
          // Context and internal queries can quote values; the position refers to the internal query.
          changed = true;
          continue;
        }
      }
      if (scrub && (k === 'M' || k === 'D' || k === 'H' || k === 'W' || k === 'q')) value = scrub(value) ?? value;
      if (value !== v) changed = true;
      out.push([k, value]);
    }
    if (!changed) return undefined;
    return [fieldsBuffer(type, out)];
  }

  private notification(buf: Buffer, start: number, end: number): Buffer[] | undefined {
    const scrub = this.masking.scrub;
    if (!scrub) return undefined;
    const pid = buf.readInt32BE(start + HEADER_LENGTH);
    const channel = readCString(buf, start + HEADER_LENGTH + 4, end);
    const payload = readCString(buf, channel.next, end);
    const clean = scrub(payload.value);
    if (clean === undefined) return undefined;
    const body = Buffer.concat([int32(pid), Buffer.from(channel.value + '\0' + clean + '\0', 'utf8')]);
    return [message(MessageType.NotificationResponse, body)];
  }
}

/** A plan covering whichever of two statements runs: per column the stronger mask. */
function mergePlans(a: StatementMaskPlan | undefined, b: StatementMaskPlan | undefined): StatementMaskPlan | undefined {
  if (!a || !b) return undefined;
  const columns =
    a.columns === null
      ? b.columns
      : b.columns === null
        ? a.columns
        : Array.isArray(a.columns) && Array.isArray(b.columns) && a.columns.length === b.columns.length
          ? a.columns.map((m, i) => stronger(m, (b.columns as Array<ColumnMask | undefined>)[i]))
          : 'unknown';
  return {
    columns,
    fallback: stronger(a.fallback, b.fallback) ?? stronger(firstMask(a), firstMask(b)),
    touchesMasked: a.touchesMasked || b.touchesMasked,
    ...(a.copy || b.copy ? { copy: (b.copy ?? a.copy)! } : {}),
  };
}

function firstMask(p: StatementMaskPlan): ColumnMask | undefined {
  return Array.isArray(p.columns) ? p.columns.find((m) => m) : undefined;
}

function stronger(x: ColumnMask | undefined, y: ColumnMask | undefined): ColumnMask | undefined {
  if (!x) return y;
  if (!y || (x.strategy === y.strategy && x.keepLast === y.keepLast)) return x;
  return { rule: x.rule, reason: 'masked_expression', strategy: x.strategy === 'null' && y.strategy === 'null' ? 'null' : 'redact' };
}

const EMPTY_PLAN: StatementMaskPlan = Object.freeze({ columns: null, fallback: undefined, touchesMasked: false }) as StatementMaskPlan;

// ---------------------------------------------------------------------------------------------
// message helpers

export function parseRowDescription(buf: Buffer, start: number, end: number): Field[] {
  const count = buf.readInt16BE(start + HEADER_LENGTH);
  const fields: Field[] = [];
  let pos = start + HEADER_LENGTH + 2;
  for (let i = 0; i < count; i++) {
    const name = readCString(buf, pos, end);
    const p = name.next;
    fields.push({
      name: name.value,
      tableOid: buf.readUInt32BE(p),
      attnum: buf.readInt16BE(p + 4),
      typeOid: buf.readUInt32BE(p + 6),
      format: buf.readInt16BE(p + 16),
    });
    pos = p + 18;
  }
  return fields;
}

function resultFormats(buf: Buffer, pos: number): number[] {
  const nFormats = buf.readInt16BE(pos);
  pos += 2 + nFormats * 2;
  const nParams = buf.readInt16BE(pos);
  pos += 2;
  for (let i = 0; i < nParams; i++) {
    const length = buf.readInt32BE(pos);
    pos += 4 + Math.max(length, 0);
  }
  const nResults = buf.readInt16BE(pos);
  pos += 2;
  const formats: number[] = [];
  for (let i = 0; i < nResults; i++) formats.push(buf.readInt16BE(pos + i * 2));
  return formats;
}

function formatAt(formats: number[], i: number): number {
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0]!;
  return formats[i] ?? 0;
}

/** A value with detector findings replaced (undefined: nothing found, or nothing to look at). */
function scrubCell(
  scrub: (t: string) => string | undefined,
  type: number,
  format: number,
  value: Buffer,
): Buffer | string | null | undefined {
  if (format === 1) {
    if (TEXT_LIKE.has(type) || type === 114) return scrub(value.toString('utf8'));
    if (type === 3802 && value[0] === 1) {
      const s = scrub(value.toString('utf8', 1));
      return s === undefined ? undefined : Buffer.concat([Buffer.from([1]), Buffer.from(s, 'utf8')]);
    }
    return undefined;
  }
  // Numbers, dates and times are not free text (a timestamp would look like a phone number);
  // user-defined types (citext, enums, domains over them) may be.
  if (!TEXT_LIKE.has(type) && !DOCUMENT_LIKE.has(type) && type < 16384 && type !== 869 && type !== 650) return undefined;
  const s = scrub(value.toString('utf8'));
  if (s === undefined) return undefined;
  // A finding in a type that cannot hold the replacement text (inet, say) becomes NULL.
  return TEXT_LIKE.has(type) || DOCUMENT_LIKE.has(type) ? s : null;
}

/** UTF-8 length; ASCII strings (the usual masked value) without a call into C++. */
function byteLengthOf(text: string): number {
  if (text.length < 64) {
    let i = 0;
    while (i < text.length && text.charCodeAt(i) < 0x80) i++;
    if (i === text.length) return i;
  }
  return Buffer.byteLength(text, 'utf8');
}

function message(type: number, body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(HEADER_LENGTH);
  head[0] = type;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function copyData(body: Buffer): Buffer {
  return message(MessageType.CopyData, body);
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}

function fieldsBuffer(type: number, fields: Array<[string, string]>): Buffer {
  const parts = fields.map(([k, v]) => Buffer.from(k + v + '\0', 'utf8'));
  parts.push(Buffer.from([0]));
  return message(type, Buffer.concat(parts));
}

// COPY text format: fields separated by the delimiter, special characters backslash-escaped.
export function splitText(line: string, delimiter: string): string[] {
  const out: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      field += ch + line[i + 1];
      i++;
    } else if (ch === delimiter) {
      out.push(field);
      field = '';
    } else field += ch;
  }
  out.push(field);
  return out;
}

const TEXT_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

export function unescapeText(field: string): string {
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === 'x' && e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return TEXT_ESCAPES[e] ?? e;
  });
}

export function escapeText(value: string, delimiter: string): string {
  let out = '';
  for (const ch of value) {
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (ch === delimiter) out += '\\' + ch;
    else out += ch;
  }
  return out;
}

interface CsvField {
  raw: string;
  value: string;
  quoted: boolean;
}

export function splitCsv(line: string, o: { delimiter: string; quote: string; escape: string }): CsvField[] {
  const out: CsvField[] = [];
  let i = 0;
  for (;;) {
    const begin = i;
    let value = '';
    let quoted = false;
    let inQuote = false;
    while (i < line.length) {
      const ch = line[i]!;
      if (inQuote) {
        if (ch === o.escape && o.escape !== o.quote && line[i + 1] === o.quote) {
          value += o.quote;
          i += 2;
          continue;
        }
        if (ch === o.quote) {
          if (o.escape === o.quote && line[i + 1] === o.quote) {
            value += o.quote;
            i += 2;
            continue;
          }
          inQuote = false;
          i++;
          continue;
        }
        if (ch === o.escape && o.escape !== o.quote && line[i + 1] === o.escape) {
          value += o.escape;
          i += 2;
          continue;
        }
        value += ch;
        i++;
        continue;
      }
      if (ch === o.delimiter) break;
      if (ch === o.quote) {
        inQuote = true;
        quoted = true;
        i++;
        continue;
      }
      value += ch;
      i++;
    }
    out.push({ raw: line.slice(begin, i), value, quoted });
    if (i >= line.length) break;
    i++; // delimiter
  }
  return out;
}

export function quoteCsv(value: string, o: { delimiter: string; quote: string; escape: string; null: string }): string {
  const needs =
    value === o.null ||
    value.includes(o.delimiter) ||
    value.includes(o.quote) ||
    value.includes('\n') ||
    value.includes('\r') ||
    value === '\\.';
  if (!needs) return value;
  let body = '';
  for (const ch of value) body += ch === o.quote || ch === o.escape ? o.escape + ch : ch;
  return o.quote + body + o.quote;
}
