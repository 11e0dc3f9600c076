/**
 * What a session recording contains: the event types and their data, in the order they happen.
 * Writers (./session-recorder.ts) produce them, replay (./transcript.ts), the CLI and the HTTP API
 * read them. Everything here is what the client saw or what the gateway decided; credentials never
 * appear (the relay hands the pipeline no password, token, SCRAM message or backend secret, and
 * statement texts are redacted of password literals, ./redact.ts).
 *
 * How events are laid out on disk and chained (format 2: `[seq, at, type, data]` lines in blocks
 * sealed with one chain hash per write; format 1, still read: one hash per event) is described in
 * ./file-recorder.ts.
 */
import type { Statement } from '../core/types.js';

export interface DecisionData {
  effect: 'allow' | 'deny' | 'review';
  reasons: string[];
  rule?: string;
  message?: string;
  /** Anything else a decision carried (e.g. who approved a held statement). */
  [extra: string]: unknown;
}

export interface SessionStartData {
  session: string;
  protocol: string;
  user: string;
  /** Groups of the identity, as granted (from the grant the session rests on). */
  groups: string[];
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  authMethod: string | null;
  encrypted: boolean | null;
  /** Id of the access token the client logged in with (an id, never the token). */
  tokenId: string;
  /** The grant the session rests on, with its approvals; null when it could not be looked up. */
  grant: {
    id: string;
    reason: string;
    requestId: string | null;
    approvedBy: string[];
    breakGlass: boolean;
    policy: string | null;
    issuedBy: string | null;
    createdAt: number;
    expiresAt: number;
  } | null;
  recording: { mode: string; limits: Record<string, number> };
}

export interface StatementData {
  /** 1, 2, ... within the session. */
  n: number;
  source: Statement['source'];
  /** Prepared statement name (extended protocol). */
  name?: string;
  text: string;
  /** Set when the text was cut to the statementBytes limit: its full length in bytes. */
  textBytes?: number;
  /** Password literals were replaced (./redact.ts). */
  redacted?: boolean;
  /** The decision, when it was immediate. */
  decision?: DecisionData;
  /** The statement was held (for approval); its decision follows as a `decision` event. */
  held?: boolean;
}

export interface HeldDecisionData {
  n: number;
  decision: DecisionData;
  waitedMs: number;
}

export interface BindData {
  /** The statement number of the Parse that prepared it, when known. */
  n?: number;
  statement: string;
  portal: string;
  params: Array<string | null>;
  /** Indexes of parameters cut to the valueBytes limit, with their full byte sizes. */
  cut?: Array<[index: number, bytes: number]>;
}

export interface ColumnsData {
  columns: Array<{ name: string; type: number }>;
  /** Columns the gateway masked for this session: index, masking rule and reason code. */
  masked?: Array<{ column: number; rule: string; reason: string }>;
}

export interface RowsData {
  rows: Array<Array<string | null>>;
  /** Cells cut to the valueBytes limit: [row index in this batch, column, full byte size]. */
  cut?: Array<[row: number, column: number, bytes: number]>;
}

/** Lines of COPY ... TO STDOUT output as the client was sent them (each usually ends with a newline). */
export interface CopyData {
  data: string[];
  /** Lines cut to the valueBytes limit: [index in this batch, full byte size]. */
  cut?: Array<[line: number, bytes: number]>;
}

export interface CompleteData {
  tag: string;
  /** Rows the client was sent for this result. */
  rows: number;
  /** Set when not every row was recorded: which cap stopped it, and how many were recorded. */
  truncated?: { cap: 'statement' | 'session'; recorded: number };
  /** The ReadyForQuery that followed, folded in. */
  ready?: ReadyData;
}

/**
 * A whole result that fit in one batch: columns, rows and completion in one event (the usual case).
 * Bigger results come as `columns`, `rows`... and `complete` instead.
 */
export interface ResultData extends ColumnsData, RowsData {
  tag: string;
  /** Rows the client was sent. */
  count: number;
  truncated?: CompleteData['truncated'];
  ready?: ReadyData;
}

export interface MessageData {
  severity: string;
  code: string;
  message: string;
  /** Errors only: rows sent before the error ended the result, and the ReadyForQuery folded in. */
  rows?: number;
  truncated?: CompleteData['truncated'];
  ready?: ReadyData;
}

/**
 * The session is ready for the next statement (ReadyForQuery). Usually folded into the event just
 * before it as its `ready` member (a `result`, `complete` or `error`); a `ready` event of its own
 * only when nothing preceded it in the round trip.
 */
export interface ReadyData {
  /** Time since the first statement of this round trip, when there was one. */
  ms?: number;
  /**
   * The session's bytes so far [from the client, to the client], at most once a second: what crash
   * recovery restores when the session could not end properly.
   */
  bytes?: [fromClient: number, toClient: number];
}

export interface KillData {
  by: string;
  reason: string;
}

export interface SessionEndData {
  reason: string;
  bytesFromClient: number;
  bytesToClient: number;
  statements: number;
  rowsRecorded: number;
}

/** A note from the recorder itself (e.g. recording stopped in best-effort mode). */
export interface RecorderNoteData {
  note: string;
}

export interface EventDataByType {
  session_start: SessionStartData;
  statement: StatementData;
  decision: HeldDecisionData;
  bind: BindData;
  columns: ColumnsData;
  rows: RowsData;
  copy: CopyData;
  result: ResultData;
  complete: CompleteData;
  error: MessageData;
  notice: MessageData;
  ready: ReadyData;
  kill: KillData;
  session_end: SessionEndData;
  recorder: RecorderNoteData;
}

export type EventType = keyof EventDataByType;
