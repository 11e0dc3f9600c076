/**
 * The per-session MySQL relay. Commands go one at a time (the protocol is request/response): each
 * client command is checked (sequence id 0, a command the gateway relays), statements are decided
 * by the pipeline (a Promise holds the command and everything behind it until it settles), and the
 * backend's response is followed packet by packet so the relay knows where it ends (result sets,
 * multi-results, prepared statement metadata, LOCAL INFILE exchanges). Refusals are ERR packets in
 * the right place of the sequence. Rows are decoded only when the session observes (recording) or
 * masks.
 */
import type net from 'node:net';
import { GatewayError } from '../../core/errors.js';
import type {
  BoundParameters,
  Decision,
  HoldInfo,
  ResultObserver,
  SessionCounters,
  SessionEndReason,
  SessionPipeline,
  Statement,
} from '../../core/types.js';
import { COMMAND_REFUSED, DECISION_ERROR, MYSQL_ERROR, REFUSED } from './errors.js';
import { HoldQueue } from '../hold-queue.js';
import {
  Cap,
  Command,
  errPayload,
  FieldType,
  framePacket,
  Marker,
  MAX_PACKET,
  MysqlProtocolError,
  okAffectedRows,
  okPayload,
  PacketFramer,
  parseErr,
  readLenenc,
  SEQUENCE_ID_OFFSET,
  Status,
  terminatorStatus,
  type Packet,
} from './packets.js';
import { decodeExecuteParameters, type PreparedStatement } from './prepared.js';
import { analyseMysqlCached } from '../../sql/mysql.js';
import { dialectOf } from '../../sql/mysql-lexer.js';
import {
  binaryDisplay,
  isLenencType,
  parseBinaryRow,
  parseColumnDefinition,
  parseTextRow,
  rewriteRow,
  textDisplay,
  type ColumnDefinition,
} from './results.js';

/** Masking of one result: a function per masked column (by index), or a reason to refuse it. */
export type ResultMaskPlan = { masks: Map<number, (value: string) => string | null> } | { refuse: string };

export interface ResultMasking {
  resultPlan(columns: ColumnDefinition[], statement: string | undefined): ResultMaskPlan;
  /** An error or warning message as the client may see it (values it could quote withheld), for the statement that raised it. */
  errorMessage?(errno: number, message: string, statement: string | undefined): string;
}

export interface KillRequest {
  id: number;
  /** KILL QUERY (true) or KILL [CONNECTION] (false). */
  queryOnly: boolean;
}

export interface MysqlRelayOptions {
  client: net.Socket;
  backend: net.Socket;
  pipeline: SessionPipeline;
  /** Capabilities in effect with the client (the backend connection has the same relayed ones). */
  capabilities: number;
  /** The connection's name (what clients call the database) and the backend's schema. */
  connection: string;
  backendDatabase: string;
  /** Whether a name is another configured connection (COM_INIT_DB to it is refused). */
  isOtherConnection(name: string): boolean;
  localFilesAllowed: boolean;
  /** The backend's version string (its greeting): how it reads statements (executable comments). */
  serverVersion: string;
  masking?: ResultMasking;
  /** KILL [QUERY] n from this client; resolves to an error message, or undefined when done. */
  kill(request: KillRequest): Promise<string | undefined>;
  onEnd(reason: SessionEndReason): void;
  onError(err: unknown): void;
}

type Expect =
  | { kind: 'resultset'; binary: boolean }
  | { kind: 'generic' }
  | { kind: 'statistics' }
  | { kind: 'prepare'; text: string }
  | { kind: 'fieldlist' }
  | { kind: 'fetch'; stmt: number };

type Phase =
  | 'first'
  | 'columns'
  | 'columnsEof'
  | 'rows'
  | 'infile'
  | 'prepareParams'
  | 'prepareParamsEof'
  | 'prepareColumns'
  | 'prepareColumnsEof'
  | 'done';

interface InFlight {
  expect: Expect;
  phase: Phase;
  /** Sequence id the next packet to the client gets. */
  outSeq: number;
  remaining: number;
  columns: ColumnDefinition[];
  rows: number;
  statement: string | undefined;
  mask: Map<number, (value: string) => string | null> | null;
  /** Prepared statement being described (COM_STMT_PREPARE). */
  prepared?: PreparedStatement & { id: number };
}

const KILL_RE = /^\s*KILL\s+(?:(QUERY|CONNECTION)\s+)?(\d+)\s*;?\s*$/i;
const LOCAL_INFILE_RE = /\bLOAD\s+(?:DATA|XML)\s+(?:LOW_PRIORITY\s+|CONCURRENT\s+)?LOCAL\b/i;
/**
 * Words without which no statement can reach the gateway's credential or other sessions'
 * statements (./../../sql/mysql.ts names the statements): only texts with one are analysed for it,
 * so plain passthrough stays cheap.
 */
const SENSITIVE_WORDS_RE =
  /processlist|grants|\buser\b|global_priv|\bengine\b|binlog|relaylog|general_log|slow_log|events_statements|\bthreads\b|\bsession\b|\bmysql\b|\bsys\b|performance_schema|x\$/i;
/** What an unanalysable text must not name (the analysis could not tell what it reads). */
const SENSITIVE_FALLBACK_RE =
  /processlist|global_priv|mysql\W+user|show\W+grants|create\W+user|general_log|slow_log|events_statements|binlog\W+events|engine\W+\w+\W+status/i;

export class MysqlRelay {
  readonly counters: SessionCounters = { bytesFromClient: 0, bytesToClient: 0, statements: 0 };
  private readonly clientFramer = new PacketFramer();
  private readonly backendFramer = new PacketFramer();
  /**
   * Commands waiting their turn: MySQL answers one at a time, so a command waits while another is
   * in flight or held, bounded like every protocol's queue (protocols/hold-queue.ts).
   */
  private readonly queue = new HoldQueue<Packet>(() => this.updateClientFlow());
  private inFlight: InFlight | null = null;
  /** A decision being awaited (held statement) or a kill being run: nothing else starts meanwhile. */
  private busy = false;
  private ended = false;
  private draining = false;
  private infileFromClient = false;
  /** A packet of the backend chunk being handled was rewritten (masking): the chunk cannot go out as is. */
  private rewritten = false;
  /** The backend socket's buffer is full: the client is held back until it drains. */
  private backendFull = false;
  private readonly observer: ResultObserver | undefined;
  private readonly deprecateEof: boolean;
  private readonly prepared = new Map<number, PreparedStatement>();
  private status: number = Status.AUTOCOMMIT;
  /** The statement being held for a decision, when the pipeline can withdraw it. */
  private held: HoldInfo | undefined;

  private readonly server: { mariadb: boolean; version: number };

  constructor(private readonly o: MysqlRelayOptions) {
    this.observer = o.pipeline.observer;
    this.deprecateEof = (o.capabilities & Cap.DEPRECATE_EOF) !== 0;
    this.server = dialectOf(o.serverVersion);
  }

  /** How the backend reads the next statement: its version, and sql_mode as its last status told. */
  private dialect(): NonNullable<Statement['dialect']> {
    // ANSI_QUOTES: off unless the backend's global sql_mode has it (README); turning it on is refused where rules apply.
    return { ...this.server, noBackslashEscapes: (this.status & Status.NO_BACKSLASH_ESCAPES) !== 0, ansiQuotes: false };
  }

  /** Why a statement text may not run for any session (the gateway's credential, other sessions' statements), if so. */
  private sensitive(text: string): string | undefined {
    if (!SENSITIVE_WORDS_RE.test(text)) return undefined;
    const analysis = analyseMysqlCached(text, this.dialect());
    if (!analysis.ok) return SENSITIVE_FALLBACK_RE.test(text) ? 'statements that name system tables and cannot be analysed' : undefined;
    return analysis.statements.find((s) => s.sensitive)?.sensitive;
  }

  private refuseSensitive(seq: number, why: string, text: string): void {
    this.counters.statements++;
    this.refuseWith(
      seq,
      REFUSED.errno,
      REFUSED.sqlState,
      `jitgate: this statement would show ${why}, which sessions through the gateway may not see (gateway_protected)`,
      text,
    );
  }

  /** Nothing in flight: no command running and none waiting. */
  get idle(): boolean {
    return !this.inFlight && !this.busy && this.queue.length === 0;
  }

  start(clientEarly: Buffer, backendEarly: Buffer): void {
    const { client, backend } = this.o;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    backend.on('data', (chunk: Buffer) => this.fromBackend(chunk));
    client.on('drain', () => backend.resume());
    backend.on('drain', () => {
      this.backendFull = false;
      this.updateClientFlow();
    });
    client.on('close', () => this.finish('client_quit'));
    backend.on('close', () => this.backendGone());
    client.on('error', (err) => this.o.onError(err));
    backend.on('error', (err) => this.o.onError(err));
    if (backendEarly.length) this.fromBackend(backendEarly);
    if (clientEarly.length) this.fromClient(clientEarly);
    client.resume();
    backend.resume();
  }

  /** Ends the session with an error the client sees if it is waiting for a response. */
  terminate(reason: SessionEndReason, error: GatewayError): void {
    if (this.ended) return;
    const { errno, sqlState } = MYSQL_ERROR[error.code];
    if (this.inFlight || this.busy) {
      const seq = this.inFlight?.outSeq ?? 1;
      this.o.client.write(framePacket(errPayload(errno, sqlState, error.message), seq).bytes);
    }
    this.observer?.onResult({ kind: 'error', severity: `ERROR ${errno}`, code: sqlState, message: error.message });
    this.finish(reason);
  }

  /**
   * Graceful shutdown: end the session once the command in flight is done and no transaction is
   * open (one in a transaction is let finish it, up to the drain timeout).
   */
  drain(): void {
    this.draining = true;
    if (this.idle && (this.status & Status.IN_TRANS) === 0)
      this.terminate('gateway_shutdown', new GatewayError('shutting_down', 'Server shutdown in progress (jitgate is shutting down)'));
  }

  // ---------------------------------------------------------------------------------------------
  // Client to backend.

  private fromClient(chunk: Buffer): void {
    if (this.ended) return;
    this.counters.bytesFromClient += chunk.length;
    try {
      this.clientFramer.push(chunk, (p) => {
        if (this.infileFromClient) return this.infileData(p);
        this.queue.push(p, p.payload.length);
      });
    } catch (err) {
      return this.protocolError(err);
    }
    this.pump();
  }

  private infileData(p: Packet): void {
    // The file's packets continue the command's sequence; the backend's answer follows them.
    if (this.inFlight) this.inFlight.outSeq = (p.lastSeq + 1) & 0xff;
    this.toBackend(p.raws.length === 1 ? p.raws[0]! : Buffer.concat(p.raws));
    if (p.payload.length === 0) this.infileFromClient = false;
  }

  private pump(): void {
    this.queue.drain(this.runCommand, this.canStartCommand);
    if (this.draining && this.queue.length === 0 && this.canStartCommand()) this.drain();
    this.updateClientFlow();
  }

  private readonly canStartCommand = (): boolean => !this.ended && !this.inFlight && !this.busy && !this.infileFromClient;

  private readonly runCommand = (p: Packet): void => {
    try {
      this.command(p);
    } catch (err) {
      this.protocolError(err);
    }
  };

  /** The client is read unless a command is held, the backend is behind, or the queue is at its bounds. */
  private updateClientFlow(): void {
    if (this.ended) return;
    if (this.busy || this.backendFull || this.queue.isFull) this.o.client.pause();
    else if (this.o.client.isPaused()) this.o.client.resume();
  }

  private command(p: Packet): void {
    if (p.seq !== 0) throw new MysqlProtocolError('Got packets out of order');
    const payload = p.payload;
    if (payload.length === 0) throw new MysqlProtocolError('Malformed communication packet (empty command)');
    const replySeq = (p.lastSeq + 1) & 0xff;
    switch (payload[0]) {
      case Command.QUIT:
        this.o.backend.write(p.raws[0]!);
        return this.finish('client_quit');
      case Command.QUERY: {
        const text = payload.toString('utf8', 1);
        const kill = KILL_RE.exec(text);
        if (kill) return this.runKill({ id: Number(kill[2]), queryOnly: (kill[1] ?? '').toUpperCase() === 'QUERY' }, replySeq, text);
        const dialect = this.dialect();
        if (!this.o.localFilesAllowed && LOCAL_INFILE_RE.test(text)) {
          // Only so the statement is recorded and audited: it is refused below whatever the decision.
          void this.o.pipeline.decide({ source: 'simple', text, dialect });
          return this.refuseWith(
            replySeq,
            1148,
            '42000',
            'jitgate: LOAD DATA LOCAL is not allowed on this connection (local_infile_denied)',
            text,
          );
        }
        const why = this.sensitive(text);
        if (why) return this.refuseSensitive(replySeq, why, text);
        return this.decided(p, { source: 'simple', text, dialect }, { kind: 'resultset', binary: false });
      }
      case Command.PROCESS_KILL: {
        if (payload.length < 5) throw new MysqlProtocolError('Malformed communication packet');
        return this.runKill({ id: payload.readUInt32LE(1), queryOnly: false }, replySeq, `KILL ${payload.readUInt32LE(1)}`);
      }
      case Command.INIT_DB: {
        const name = payload.toString('utf8', 1);
        if (name === this.o.connection) {
          const rewritten = Buffer.concat([Buffer.from([Command.INIT_DB]), Buffer.from(this.o.backendDatabase, 'utf8')]);
          return this.forward(framePacket(rewritten, 0).bytes, { kind: 'generic' }, 1, `USE ${name}`);
        }
        if (this.o.isOtherConnection(name)) {
          return this.refuseWith(
            replySeq,
            1044,
            '42000',
            `jitgate: this session is on connection "${this.o.connection}"; to use connection "${name}", connect again with database "${name}"`,
            `USE ${name}`,
          );
        }
        const use = `USE \`${name.replace(/`/g, '``')}\``;
        const why = this.sensitive(use);
        if (why) return this.refuseSensitive(replySeq, why, use);
        return this.decided(p, { source: 'simple', text: use, dialect: this.dialect() }, { kind: 'generic' });
      }
      case Command.FIELD_LIST: {
        const table = payload.subarray(1, payload.indexOf(0, 1) < 0 ? payload.length : payload.indexOf(0, 1)).toString('utf8');
        // Described to policy as the read it amounts to (the table's column names).
        return this.decided(
          p,
          { source: 'simple', text: `SELECT * FROM \`${table.replace(/`/g, '``')}\` LIMIT 0` },
          { kind: 'fieldlist' },
          false,
        );
      }
      case Command.STMT_PREPARE: {
        const text = payload.toString('utf8', 1);
        const dialect = this.dialect();
        if (!this.o.localFilesAllowed && LOCAL_INFILE_RE.test(text)) {
          // Only so the statement is recorded and audited: it is refused below whatever the decision.
          void this.o.pipeline.decide({ source: 'parse', text, name: '', dialect });
          return this.refuseWith(
            replySeq,
            1148,
            '42000',
            'jitgate: LOAD DATA LOCAL is not allowed on this connection (local_infile_denied)',
            text,
          );
        }
        const why = this.sensitive(text);
        if (why) return this.refuseSensitive(replySeq, why, text);
        return this.decided(p, { source: 'parse', text, name: '', dialect }, { kind: 'prepare', text });
      }
      case Command.STMT_EXECUTE: {
        if (payload.length < 10) throw new MysqlProtocolError('Malformed communication packet');
        const id = payload.readUInt32LE(1);
        const stmt = this.prepared.get(id);
        if (stmt && this.observer?.onBind) this.observer.onBind(bindOf(id, stmt, payload));
        return this.forward(p.raws, { kind: 'resultset', binary: true }, replySeq, stmt?.text);
      }
      case Command.STMT_FETCH: {
        if (payload.length < 9) throw new MysqlProtocolError('Malformed communication packet');
        const id = payload.readUInt32LE(1);
        return this.forward(p.raws, { kind: 'fetch', stmt: id }, replySeq, this.prepared.get(id)?.text);
      }
      case Command.STMT_CLOSE:
        if (payload.length >= 5) this.prepared.delete(payload.readUInt32LE(1));
        this.o.backend.write(concat(p.raws));
        return;
      case Command.STMT_SEND_LONG_DATA:
        if (payload.length >= 7) {
          const stmt = this.prepared.get(payload.readUInt32LE(1));
          if (stmt) stmt.longData.add(payload.readUInt16LE(5));
        }
        this.o.backend.write(concat(p.raws));
        return;
      case Command.STMT_RESET:
      case Command.PING:
      case Command.SET_OPTION:
      case Command.RESET_CONNECTION:
        if (payload[0] === Command.STMT_RESET && payload.length >= 5) this.prepared.get(payload.readUInt32LE(1))?.longData.clear();
        return this.forward(p.raws, { kind: 'generic' }, replySeq, undefined);
      case Command.STATISTICS:
        return this.forward(p.raws, { kind: 'statistics' }, replySeq, undefined);
      default:
        return this.refuseWith(
          replySeq,
          COMMAND_REFUSED.errno,
          COMMAND_REFUSED.sqlState,
          `jitgate: command 0x${payload[0]!.toString(16).padStart(2, '0')} (${commandName(payload[0]!)}) is not supported through the gateway`,
          undefined,
        );
    }
  }

  /** Asks the pipeline; forwards the command when allowed, answers with ERR when not. */
  private decided(p: Packet, statement: Statement, expect: Expect, count = true): void {
    if (count) this.counters.statements++;
    const replySeq = (p.lastSeq + 1) & 0xff;
    const settle = (d: Decision) => {
      if (d.effect === 'allow') this.forward(p.raws, expect, replySeq, statement.text);
      else this.refuse(replySeq, d, statement.text);
    };
    const decision = this.o.pipeline.decide(statement);
    if (!(decision instanceof Promise)) return settle(decision);
    // Held (e.g. waiting for a reviewer): MySQL has no notices, so the client simply waits.
    this.busy = true;
    decision.onHold((hold) => (this.held = hold));
    this.updateClientFlow();
    decision
      .then(
        (d) => settle(d),
        () =>
          settle({
            effect: 'deny',
            reasons: ['decision_failed'],
            message: 'jitgate: the statement could not be decided, so it was not run',
          }),
      )
      .finally(() => {
        this.busy = false;
        this.held = undefined;
        if (!this.ended) this.pump();
      });
  }

  /** KILL QUERY while a statement is held: the client gives up waiting (the decision settles as a deny). */
  withdrawHeld(): boolean {
    if (!this.held) return false;
    this.held.withdraw();
    return true;
  }

  private forward(raws: Buffer[] | Buffer, expect: Expect, outSeq: number, statement: string | undefined): void {
    if (this.ended) return;
    this.inFlight = { expect, phase: 'first', outSeq, remaining: 0, columns: [], rows: 0, statement, mask: null };
    if (expect.kind === 'fieldlist') this.inFlight.phase = 'columns';
    if (expect.kind === 'fetch') {
      this.inFlight.phase = 'rows';
      this.inFlight.columns = this.prepared.get(expect.stmt)?.columns ?? [];
      this.planMask(this.inFlight);
    }
    this.toBackend(Array.isArray(raws) ? concat(raws) : raws);
  }

  /** A backend that cannot keep up holds back the client (large uploads, LOAD DATA). */
  private toBackend(b: Buffer): void {
    if (!this.o.backend.write(b)) {
      this.backendFull = true;
      this.updateClientFlow();
    }
  }

  private refuse(seq: number, d: Decision, statement: string | undefined): void {
    const message = d.message ?? `jitgate: statement refused (${d.reasons.join(', ') || 'denied'})`;
    // Not a policy refusal (a held statement the client gave up on with KILL QUERY): the server's own error for it.
    const coded = d.code && DECISION_ERROR[d.code];
    if (coded) return this.refuseWith(seq, coded.errno, coded.sqlState, coded.message(message), statement);
    this.refuseWith(seq, REFUSED.errno, REFUSED.sqlState, message, statement);
  }

  private refuseWith(seq: number, errno: number, sqlState: string, message: string, _statement: string | undefined): void {
    this.write(framePacket(errPayload(errno, sqlState, message), seq).bytes);
    this.observer?.onResult({ kind: 'error', severity: `ERROR ${errno}`, code: sqlState, message });
    this.observer?.onResult({ kind: 'ready' });
  }

  private runKill(request: KillRequest, seq: number, text: string): void {
    this.counters.statements++;
    const decision = this.o.pipeline.decide({ source: 'simple', text, dialect: this.dialect() });
    if (!(decision instanceof Promise) && decision.effect !== 'allow') return this.refuse(seq, decision, text);
    this.busy = true;
    this.o
      .kill(request)
      .then(
        (problem) => {
          if (this.ended) return;
          if (problem) return this.refuseWith(seq, 1094, 'HY000', problem, text);
          this.write(framePacket(okPayload({ status: this.status }), seq).bytes);
          this.observer?.onResult({ kind: 'complete', tag: 'OK 0' });
          this.observer?.onResult({ kind: 'ready' });
        },
        // The gateway's own backend connection failed: the client learns that, not its internals.
        () => {
          if (!this.ended) this.refuseWith(seq, 1094, 'HY000', 'jitgate: KILL failed: the gateway could not reach the backend', text);
        },
      )
      .finally(() => {
        this.busy = false;
        if (!this.ended) this.pump();
      });
  }

  // ---------------------------------------------------------------------------------------------
  // Backend to client.

  private fromBackend(chunk: Buffer): void {
    if (this.ended) return;
    const out: Buffer[] = [];
    this.rewritten = false;
    try {
      this.backendFramer.push(chunk, (p) => this.response(p, out));
    } catch (err) {
      this.o.onError(err);
      // The packets accepted before the bad one go out first, so the ERR's sequence id (which
      // counts them) follows what the client has actually received.
      if (out.length > 0) this.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      return this.terminate(
        'backend_lost',
        new GatewayError('backend_lost', 'jitgate: the backend sent a malformed packet; the session ends'),
      );
    }
    // The usual case: every packet of the chunk passed as it came (sequence ids set in place), so
    // the chunk itself goes out, with no copy.
    if (!this.rewritten && this.backendFramer.aligned && out.length > 0) this.write(chunk);
    else if (out.length > 0) this.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    if (!this.inFlight) this.pump();
  }

  private response(p: Packet, out: Buffer[]): void {
    const f = this.inFlight;
    if (!f) {
      // Unsolicited (e.g. the backend's error before it closes): pass it on.
      out.push(concat(p.raws));
      return;
    }
    const first = p.payload[0];
    let payload: Buffer | null = null; // a rewritten payload, when masking changed the packet
    switch (f.phase) {
      case 'first':
        if (f.expect.kind === 'statistics') {
          this.observer?.onResult({ kind: 'complete', tag: `STATISTICS ${p.payload.toString('utf8')}` });
          f.phase = 'done';
        } else if (first === Marker.ERR) payload = this.errorPacket(p, f);
        else if (first === Marker.OK && f.expect.kind === 'prepare') this.prepareOk(p, f);
        else if (first === Marker.OK || (first === Marker.EOF && f.expect.kind === 'generic')) this.okPacket(p, f);
        else if (first === Marker.LOCAL_INFILE && f.expect.kind === 'resultset') {
          // LOCAL INFILE request: only reachable when policy allows it (the backend leg has the capability then).
          f.phase = 'infile';
          this.infileFromClient = true;
          this.observer?.onResult({
            kind: 'notice',
            severity: 'NOTE',
            code: '00000',
            message: `LOCAL INFILE ${p.payload.toString('utf8', 1)}`,
          });
        } else {
          f.remaining = readLenenc(p.payload, 0).value ?? 0;
          f.columns = [];
          f.phase = 'columns';
        }
        break;
      case 'infile':
        // After the client's data: OK or ERR for the LOAD statement.
        if (first === Marker.ERR) payload = this.errorPacket(p, f);
        else this.okPacket(p, f);
        break;
      case 'columns':
        if (f.expect.kind === 'fieldlist' && (first === Marker.ERR || (first === Marker.EOF && p.payload.length < MAX_PACKET))) {
          if (first === Marker.ERR) payload = this.errorPacket(p, f);
          else {
            this.observer?.onResult({ kind: 'columns', columns: f.columns.map((c) => ({ name: c.name, type: c.type })) });
            f.phase = 'done';
          }
          break;
        }
        f.columns.push(parseColumnDefinition(p.payload));
        if (f.expect.kind !== 'fieldlist' && --f.remaining === 0) {
          this.observer?.onResult({ kind: 'columns', columns: f.columns.map((c) => ({ name: c.name, type: c.type })) });
          this.planMask(f);
          f.phase = this.deprecateEof ? 'rows' : 'columnsEof';
        }
        break;
      case 'columnsEof':
        if (terminatorStatus(p.payload) & Status.CURSOR_EXISTS) {
          // A cursor was opened (COM_STMT_EXECUTE with a cursor flag): rows come with COM_STMT_FETCH.
          const stmt = this.statementOfCursor();
          if (stmt) stmt.columns = f.columns;
          this.observer?.onResult({ kind: 'complete', tag: 'CURSOR' });
          f.phase = 'done';
        } else f.phase = 'rows';
        break;
      case 'rows':
        if (first === Marker.ERR) payload = this.errorPacket(p, f);
        else if (first === Marker.EOF && p.payload.length < MAX_PACKET) {
          const status = terminatorStatus(p.payload);
          this.status = status;
          const binary = f.expect.kind === 'fetch' || (f.expect.kind === 'resultset' && f.expect.binary);
          this.observer?.onResult({ kind: 'complete', tag: `ROWS ${f.rows}${binary ? ' binary' : ''}` });
          if (f.expect.kind === 'fetch') f.phase = 'done';
          else f.phase = status & Status.MORE_RESULTS_EXISTS ? 'first' : 'done';
        } else {
          f.rows++;
          payload = this.row(p, f);
        }
        break;
      case 'prepareParams':
        if (--f.remaining === 0) this.afterPrepareParams(f);
        break;
      case 'prepareParamsEof':
        this.afterPrepareParams(f, true);
        break;
      case 'prepareColumns':
        f.prepared!.columns.push(parseColumnDefinition(p.payload));
        if (--f.remaining === 0) f.phase = this.deprecateEof ? 'done' : 'prepareColumnsEof';
        break;
      case 'prepareColumnsEof':
        f.phase = 'done';
        break;
      case 'done':
        throw new MysqlProtocolError('backend sent more than the response');
    }
    if (payload) {
      this.rewritten = true;
      const framed = framePacket(payload, f.outSeq);
      out.push(framed.bytes);
      f.outSeq = framed.nextSeq;
    } else {
      for (const raw of p.raws) {
        raw[SEQUENCE_ID_OFFSET] = f.outSeq;
        f.outSeq = (f.outSeq + 1) & 0xff;
        out.push(raw);
      }
    }
    if (f.phase === 'done') {
      if (f.prepared) this.prepared.set(f.prepared.id, f.prepared);
      this.inFlight = null;
      this.observer?.onResult({ kind: 'ready' });
    }
  }

  private okPacket(p: Packet, f: InFlight): void {
    const status = terminatorStatus(p.payload);
    this.status = status;
    this.observer?.onResult({ kind: 'complete', tag: `OK ${okAffectedRows(p.payload)}` });
    f.phase = status & Status.MORE_RESULTS_EXISTS && f.expect.kind === 'resultset' ? 'first' : 'done';
  }

  /** Returns a rewritten packet when masking changed the message. */
  private errorPacket(p: Packet, f: InFlight): Buffer | null {
    const e = parseErr(p.payload);
    f.phase = 'done';
    const shown = this.o.masking?.errorMessage?.(e.errno, e.message, f.statement) ?? e.message;
    this.observer?.onResult({ kind: 'error', severity: `ERROR ${e.errno}`, code: e.sqlState, message: shown });
    return shown === e.message ? null : errPayload(e.errno, e.sqlState, shown);
  }

  private prepareOk(p: Packet, f: InFlight): void {
    const b = p.payload;
    if (b.length < 12) throw new MysqlProtocolError('malformed prepare response');
    const id = b.readUInt32LE(1);
    const columns = b.readUInt16LE(5);
    const params = b.readUInt16LE(7);
    f.prepared = { id, text: f.expect.kind === 'prepare' ? f.expect.text : '', params, paramTypes: [], columns: [], longData: new Set() };
    f.remaining = columns; // columns still to come after the parameters
    this.observer?.onResult({ kind: 'complete', tag: `PREPARE ${id}` });
    if (params > 0) {
      f.phase = 'prepareParams';
      (f as InFlight & { columnsAfter?: number }).columnsAfter = columns;
      f.remaining = params;
    } else this.startPrepareColumns(f, columns);
  }

  private afterPrepareParams(f: InFlight, eofSeen = false): void {
    const columns = (f as InFlight & { columnsAfter?: number }).columnsAfter ?? 0;
    if (!this.deprecateEof && !eofSeen) {
      f.phase = 'prepareParamsEof';
      return;
    }
    this.startPrepareColumns(f, columns);
  }

  private startPrepareColumns(f: InFlight, columns: number): void {
    f.remaining = columns;
    f.phase = columns > 0 ? 'prepareColumns' : 'done';
  }

  private statementOfCursor(): PreparedStatement | undefined {
    // The statement whose execution opened the cursor is the last one executed; its text identifies it.
    const text = this.inFlight?.statement;
    for (const s of this.prepared.values()) if (s.text === text) return s;
    return undefined;
  }

  private planMask(f: InFlight): void {
    f.mask = null;
    if (!this.o.masking) return;
    let plan: ResultMaskPlan;
    try {
      plan = this.o.masking.resultPlan(f.columns, f.statement);
    } catch {
      // Fail closed without echoing the planner's internals.
      plan = { refuse: 'masking could not be planned' };
    }
    if ('refuse' in plan) {
      // Fail closed: every value of this result is withheld.
      f.mask = new Map(f.columns.map((_, i) => [i, () => null]));
      this.observer?.onResult({ kind: 'notice', severity: 'WARNING', code: '01000', message: `jitgate: ${plan.refuse}; values withheld` });
      return;
    }
    f.mask = plan.masks.size > 0 ? plan.masks : null;
  }

  /** Decodes a row for the observer and masks it; returns the rewritten payload when masked. */
  private row(p: Packet, f: InFlight): Buffer | null {
    const wants = this.observer?.wantsRows() ?? false;
    if (!wants && !f.mask) return null;
    const binary = f.expect.kind === 'fetch' || (f.expect.kind === 'resultset' && f.expect.binary);
    const values = binary ? parseBinaryRow(p.payload, f.columns) : parseTextRow(p.payload, f.columns.length);
    let out: Buffer | null = null;
    const shown: Array<string | null> = values.map((v, i) =>
      v.bytes === null ? null : binary ? binaryDisplay(f.columns[i]!, v.bytes) : textDisplay(f.columns[i]!, v.bytes),
    );
    if (f.mask) {
      const replacements = new Map<number, string | null>();
      for (const [i, fn] of f.mask) {
        const v = shown[i];
        if (v === null || v === undefined) continue;
        const masked = typeSafe(f.columns[i]!, fn(v));
        if (masked === v) continue;
        replacements.set(i, masked);
        shown[i] = binary && masked !== null && !isLenencType(f.columns[i]!.type) ? null : masked;
      }
      if (replacements.size > 0) out = rewriteRow(p.payload, values, replacements, binary ? f.columns : null);
    }
    if (wants) this.observer!.onResult({ kind: 'row', values: shown });
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Endings.

  private write(b: Buffer): void {
    this.counters.bytesToClient += b.length;
    if (!this.o.client.write(b)) this.o.backend.pause();
  }

  private protocolError(err: unknown): void {
    const message = err instanceof MysqlProtocolError ? err.message : 'Malformed communication packet';
    if (!(err instanceof MysqlProtocolError)) this.o.onError(err);
    this.write(framePacket(errPayload(1156, '08S01', `jitgate: ${message}`), this.inFlight?.outSeq ?? 1).bytes);
    this.observer?.onResult({ kind: 'error', severity: 'ERROR 1156', code: '08S01', message });
    this.finish('protocol_error');
  }

  private backendGone(): void {
    if (this.ended) return;
    if (this.inFlight) {
      this.write(
        framePacket(errPayload(2013, 'HY000', 'jitgate: lost connection to the backend during the query'), this.inFlight.outSeq).bytes,
      );
    }
    this.finish('backend_lost');
  }

  private finish(reason: SessionEndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.queue.clear();
    this.o.client.end();
    this.o.backend.end();
    setTimeout(() => {
      this.o.client.destroy();
      this.o.backend.destroy();
    }, 1000).unref();
    this.o.onEnd(reason);
  }
}

const NUMERIC_TYPES = new Set<number>([
  FieldType.DECIMAL,
  FieldType.TINY,
  FieldType.SHORT,
  FieldType.LONG,
  FieldType.FLOAT,
  FieldType.DOUBLE,
  FieldType.LONGLONG,
  FieldType.INT24,
  FieldType.YEAR,
  FieldType.BIT,
  FieldType.NEWDECIMAL,
]);
const TEMPORAL_TYPES = new Set<number>([FieldType.TIMESTAMP, FieldType.DATE, FieldType.TIME, FieldType.DATETIME]);

/**
 * A masked value the client can decode as the column type it was told: a number column gets a
 * number or NULL, never '[redacted]' (drivers decode numeric columns as numbers).
 */
function typeSafe(c: ColumnDefinition, masked: string | null): string | null {
  if (masked === null) return null;
  if (NUMERIC_TYPES.has(c.type)) return /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(masked) && c.type !== FieldType.BIT ? masked : null;
  if (TEMPORAL_TYPES.has(c.type)) return null;
  return masked;
}

function concat(raws: Buffer[]): Buffer {
  return raws.length === 1 ? raws[0]! : Buffer.concat(raws);
}

function bindOf(id: number, stmt: PreparedStatement, payload: Buffer): BoundParameters {
  const decoded = decodeExecuteParameters(stmt, payload);
  return { portal: '', statement: String(id), values: decoded.values, cut: decoded.cut, sizes: decoded.sizes };
}

const COMMAND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Command).map(([k, v]) => [v, `COM_${k}`]));

function commandName(c: number): string {
  return COMMAND_NAMES[c] ?? 'unknown';
}
