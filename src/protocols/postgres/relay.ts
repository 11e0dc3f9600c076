/**
 * The per-session relay between an authenticated client and its backend connection.
 *
 * Both directions are framed, but only the messages a decision needs are decoded (Query, Parse,
 * FunctionCall from the client; ReadyForQuery and ErrorResponse from the backend). Everything else
 * is forwarded as the original bytes, in runs: a chunk whose messages are all forwarded unchanged
 * costs one write of a slice of the very buffer it arrived in. Each side is paused while the other
 * cannot keep up, so a slow client holds back the backend instead of filling gateway memory.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { GatewayError } from '../../core/errors.js';
import type {
  Decision,
  HoldInfo,
  PendingDecision,
  ResultObserver,
  SessionCounters,
  SessionEndReason,
  SessionPipeline,
  Statement,
} from '../../core/types.js';
import {
  build,
  DescribeTarget,
  ErrorField,
  Framer,
  HEADER_LENGTH,
  MessageType,
  ProtocolError,
  readCString,
  TransactionStatus,
} from './codec.js';
import { observeBackendMessage, observeBind } from './observe.js';
import { unsafeClientEncoding } from '../../sql/pg-client-encoding.js';
import type { PostgresMasking } from './masking.js';
import { REBUILT_ROW, ResultMasker } from './result-masker.js';
import { Output } from './output.js';
import { HoldQueue } from '../hold-queue.js';
import { DECISION_SQLSTATE, SQLSTATE } from './errors.js';

interface PendingFrame {
  type: number;
  buf: Buffer;
  start: number;
  end: number;
}

export interface RelayOptions {
  client: Socket;
  backend: Socket;
  pipeline: SessionPipeline;
  /** The session's masking (built through the pipeline); absent when no rule or detector applies. */
  masking?: PostgresMasking;
  /** Transaction status of the backend's first ReadyForQuery ('I', 'T' or 'E'). */
  readyStatus: number;
  /** Sends a CancelRequest for this session's backend key. */
  cancelBackend: () => Promise<void>;
  onEnd: (reason: SessionEndReason) => void;
  onError?: (err: unknown) => void;
}

export class PostgresRelay {
  readonly counters: SessionCounters = { bytesFromClient: 0, bytesToClient: 0, statements: 0 };
  private readonly client: Socket;
  private readonly backend: Socket;
  private readonly pipeline: SessionPipeline;
  private readonly observer: ResultObserver | undefined;
  /** Masking of results; absent when no rule or detector applies (the plain passthrough path). */
  private readonly masker: ResultMasker | undefined;
  private readonly clientFramer = new Framer();
  private readonly backendFramer = new Framer();
  private readonly toBackend = new Output();
  private readonly toClient = new Output();
  /** Frames waiting behind a held statement, in arrival order (the client is read on, up to its bounds). */
  private readonly queued = new HoldQueue<PendingFrame>((full) => {
    this.clientPaused.hold = full;
    this.updateClientFlow();
  });
  private holding = false;
  /** Why the statement waiting now is held for a person, and how to withdraw it (once it is). */
  private heldInfo: HoldInfo | undefined;
  /** The client cancelled a statement that still waits for the gateway's own decision. */
  private cancelRequested = false;
  /** Refusal markers are numbered, never reused within a session. */
  private refusalSeq = 0;
  /**
   * A Parse was refused: the backend, failing its substitute, discards every message up to the
   * next Sync. The gateway drops them itself instead of deciding them, so that statements later in
   * the same batch are not put to approvers only to be thrown away.
   */
  private discardUntilSync = false;
  /**
   * Named prepared statements that needed a person's approval: the approval covers one execution,
   * so each later Bind of the same statement is decided (and held) again. `credit` is the execution
   * the approval of its Parse already covers.
   */
  private readonly reviewed = new Map<string, { statement: Statement; credit: boolean }>();
  private clientPaused = { backpressure: false, hold: false };
  private txStatus: number;
  /** A Query, Sync or FunctionCall was forwarded and its ReadyForQuery has not come back yet. */
  private awaitingReady = false;
  /** Refused statements awaiting their substitute's error from the backend, by marker. */
  private readonly refusals = new Map<string, Decision>();
  private readonly refusalPrefix = `jitgate_refused_${randomBytes(6).toString('hex')}_`;
  private draining = false;
  private ended = false;
  private clientSaidGoodbye = false;
  private backendSentFatal = false;
  /** A ReadyForQuery arrived in the chunk being processed. */
  private sawReady = false;

  constructor(private readonly options: RelayOptions) {
    this.client = options.client;
    this.backend = options.backend;
    this.pipeline = options.pipeline;
    this.observer = options.pipeline.observer;
    this.masker = options.masking ? new ResultMasker(options.masking) : undefined;
    this.txStatus = options.readyStatus;
  }

  /** Starts relaying; `clientEarly`/`backendEarly` are bytes already read during the handshake. */
  start(clientEarly: Buffer, backendEarly: Buffer): void {
    const { client, backend } = this;
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    backend.on('data', (chunk: Buffer) => this.onBackendData(chunk));
    client.on('drain', () => {
      if (!this.ended) backend.resume();
    });
    backend.on('drain', () => {
      this.clientPaused.backpressure = false;
      this.updateClientFlow();
    });
    client.on('error', () => this.finish(this.clientSaidGoodbye ? 'client_quit' : 'client_error'));
    client.on('close', () => this.finish(this.clientSaidGoodbye ? 'client_quit' : 'client_error'));
    client.on('end', () => this.finish(this.clientSaidGoodbye ? 'client_quit' : 'client_error'));
    backend.on('error', () => this.backendGone());
    backend.on('close', () => this.backendGone());
    backend.on('end', () => this.backendGone());
    if (backendEarly.length) this.onBackendData(backendEarly);
    if (clientEarly.length) this.onClientData(clientEarly);
    client.resume();
    backend.resume();
  }

  /** True when no statement is in flight: safe to end the session without cutting a result. */
  get idle(): boolean {
    return !this.awaitingReady && !this.holding;
  }

  /** Ends the session now with a FATAL the client can read (kill, revoke, forced shutdown). */
  terminate(reason: SessionEndReason, error: GatewayError): void {
    if (this.ended) return;
    this.sendClient(build.error({ severity: 'FATAL', code: SQLSTATE[error.code], message: error.message, detail: error.detail }));
    this.finish(reason);
  }

  /** Ends the session at the next statement boundary (graceful shutdown). */
  drain(): void {
    this.draining = true;
    if (this.stoppable) this.terminate('gateway_shutdown', shutdownError());
  }

  /**
   * Whether a draining session may end now: nothing runs and no transaction is open (one in a
   * transaction block is let finish it, up to the drain timeout, so no committed work is cut
   * short), or only a held statement waits (it need not be waited for to stop).
   */
  private get stoppable(): boolean {
    return (this.idle && this.txStatus === TransactionStatus.Idle) || this.onlyHolding;
  }

  /** Nothing runs on the backend; only a held statement waits (it need not be waited for to stop). */
  private get onlyHolding(): boolean {
    return this.holding && !this.awaitingReady;
  }

  // -------------------------------------------------------------------------------------------
  // client -> backend

  private onClientData(chunk: Buffer): void {
    if (this.ended) return;
    this.counters.bytesFromClient += chunk.length;
    try {
      this.clientFramer.push(chunk, this.onClientFrame);
    } catch (err) {
      this.protocolFailure(err);
      return;
    }
    this.flushToBackend();
    this.flushToClient();
  }

  /** Framer callback, bound once: frames behind a held statement queue in arrival order. */
  private readonly onClientFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.holding) this.queueBehindHold(type, buf, start, end);
    else if (!this.ended) this.handleClientFrame(type, buf, start, end);
  };

  private queueBehindHold(type: number, buf: Buffer, start: number, end: number): void {
    // A Terminate waiting behind a hold still means the client said goodbye when it then closes.
    if (type === MessageType.Terminate) this.clientSaidGoodbye = true;
    this.queued.push({ type, buf, start, end }, end - start);
  }

  private handleClientFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.discardUntilSync) {
      if (type !== MessageType.Sync && type !== MessageType.Terminate) return;
      this.discardUntilSync = false;
    }
    const statement = statementOf(type, buf, start, end) ?? this.reexecution(type, buf, start, end);
    if (!statement) {
      if (type === MessageType.Terminate) this.clientSaidGoodbye = true;
      if (type === MessageType.Sync) this.awaitingReady = true;
      // Bound parameter values, only for an observer that asks for them (recording).
      else if (type === MessageType.Bind && this.observer?.onBind) observeBind(this.observer, buf, start, end);
      // Masking follows prepared statements and portals; it may need a Describe sent first.
      const before = this.masker?.onClientFrame(type, buf, start, end);
      if (before) this.toBackend.inject(before);
      this.toBackend.forward(buf, start, end);
      return;
    }
    this.counters.statements++;
    const decision = this.pipeline.decide(statement);
    if (type === MessageType.Parse && statement.name) {
      // A re-prepared name starts afresh; one that needed a person is reviewed at every execution.
      this.reviewed.delete(statement.name);
      const name = statement.name;
      if (decision instanceof Promise) decision.onHold(() => this.reviewed.set(name, { statement, credit: true }));
    }
    if (decision instanceof Promise) this.hold(decision, { type, buf, start, end });
    else this.apply(decision, type, buf, start, end);
  }

  /**
   * A Bind that executes a reviewed named statement again (after the execution its approval
   * covered) is a new statement to decide; Close forgets the statement. Everything else: undefined.
   */
  private reexecution(type: number, buf: Buffer, start: number, end: number): Statement | undefined {
    if (this.reviewed.size === 0) return undefined;
    if (type === MessageType.Close) {
      // Close: Byte1 'S' (statement) or 'P' (portal), then the name.
      const at = start + HEADER_LENGTH;
      if (buf[at] === DescribeTarget.Statement) this.reviewed.delete(readCString(buf, at + 1, end).value);
      return undefined;
    }
    if (type !== MessageType.Bind) return undefined;
    const name = readCString(buf, readCString(buf, start + HEADER_LENGTH, end).next, end).value;
    const entry = this.reviewed.get(name);
    if (!entry) return undefined;
    if (entry.credit) {
      entry.credit = false;
      return undefined;
    }
    return { ...entry.statement, source: 'bind' };
  }

  private apply(decision: Decision, type: number, buf: Buffer, start: number, end: number): void {
    if (type === MessageType.Bind) return this.applyToExecution(decision, buf, start, end);
    if (type !== MessageType.Parse) this.awaitingReady = true;
    this.masker?.onStatement(type, buf, start, end, decision.effect === 'allow');
    if (decision.effect === 'allow') {
      this.toBackend.forward(buf, start, end);
      return;
    }
    // A refused statement is replaced by one the backend rejects at parse time. The backend then
    // behaves exactly as for any failed statement (aborts the transaction block, skips the rest of
    // an extended-protocol batch until Sync) and its error arrives in order with everything else;
    // we swap that error for ours on the way back.
    const marker = `${this.refusalPrefix}${this.refusalSeq++}`;
    this.refusals.set(marker, decision);
    if (type === MessageType.Parse) this.discardUntilSync = true;
    this.toBackend.inject(type === MessageType.Parse ? build.parse(parseName(buf, start, end), marker) : build.query(marker));
  }

  /** A re-execution of a reviewed statement (its Bind): forwarded, or refused like a refused Parse. */
  private applyToExecution(decision: Decision, buf: Buffer, start: number, end: number): void {
    if (decision.effect === 'allow') {
      if (this.observer?.onBind) observeBind(this.observer, buf, start, end);
      const before = this.masker?.onClientFrame(MessageType.Bind, buf, start, end);
      if (before) this.toBackend.inject(before);
      this.toBackend.forward(buf, start, end);
      return;
    }
    // An unnamed Parse the backend rejects fails the batch up to Sync, in order, as for a Parse.
    const marker = `${this.refusalPrefix}${this.refusalSeq++}`;
    this.refusals.set(marker, decision);
    this.discardUntilSync = true;
    this.toBackend.inject(build.parse('', marker));
  }

  /** The ErrorResponse to send instead of the backend's error for a substituted statement. */
  private refusalFor(buf: Buffer, start: number, end: number): Buffer | undefined {
    const at = buf.indexOf(this.refusalPrefix, start, 'latin1');
    if (at < 0 || at >= end) return undefined;
    let stop = at + this.refusalPrefix.length;
    while (stop < end && buf[stop]! >= 0x30 && buf[stop]! <= 0x39) stop++;
    const marker = buf.toString('latin1', at, stop);
    const decision = this.refusals.get(marker);
    if (!decision) return undefined;
    this.refusals.delete(marker);
    return build.error({
      severity: 'ERROR',
      // A held statement that was cancelled or timed out reads like PostgreSQL's own cancel.
      code: decision.code ? DECISION_SQLSTATE[decision.code] : SQLSTATE.denied,
      message: decision.message ?? 'statement refused by jitgate policy',
      detail: decision.reasons.length ? `reason: ${decision.reasons.join(', ')}` : undefined,
    });
  }

  private hold(pending: PendingDecision, f: PendingFrame): void {
    // What came before the held statement goes now; what comes after waits behind it. The client
    // is still read (frames queue, up to a cap) so that a client that quits ends the session, and
    // with it the review, at once.
    this.flushToBackend();
    this.holding = true;
    this.flushToClient();
    // Told as soon as it waits for a person, in the session: what for and where to approve it.
    pending.onHold((hold) => {
      if (this.ended) return;
      this.heldInfo = hold;
      this.sendToClient(holdNotice(hold));
      this.flushToClient();
      // The client cancelled while the gateway was still deciding: it does not want to wait.
      if (this.cancelRequested) this.withdrawHeld();
    });
    pending.then(
      (decision) => this.release(decision, f),
      (err) => this.release({ effect: 'deny', reasons: ['decision_failed'], message: errorMessage(err) }, f),
    );
  }

  private release(decision: Decision, f: PendingFrame): void {
    if (this.ended) return;
    this.holding = false;
    this.heldInfo = undefined;
    this.cancelRequested = false;
    this.apply(decision, f.type, f.buf, f.start, f.end);
    // Replayed in order until one of them is held again; the rest keeps waiting behind that one.
    this.queued.drain(this.replayFrame, () => !this.ended && !this.holding);
    this.flushToBackend();
    this.flushToClient();
    this.updateClientFlow();
  }

  private readonly replayFrame = (q: PendingFrame): void => this.handleClientFrame(q.type, q.buf, q.start, q.end);

  private flushToBackend(): void {
    const data = this.toBackend.take();
    if (data && !this.backend.write(data)) {
      this.clientPaused.backpressure = true;
      this.updateClientFlow();
    }
  }

  private updateClientFlow(): void {
    if (this.ended) return;
    if (this.clientPaused.backpressure || this.clientPaused.hold) this.client.pause();
    else this.client.resume();
  }

  // -------------------------------------------------------------------------------------------
  // backend -> client

  private onBackendData(chunk: Buffer): void {
    if (this.ended) return;
    this.sawReady = false;
    try {
      this.backendFramer.push(chunk, this.onBackendFrame);
    } catch (err) {
      this.options.onError?.(err);
      this.terminate('protocol_error', new GatewayError('backend_lost', 'jitgate: invalid data from backend'));
      return;
    }
    this.flushToClient();
    if (this.sawReady && this.draining && this.stoppable) this.terminate('gateway_shutdown', shutdownError());
  }

  /** Framer callback, bound once. */
  private readonly onBackendFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.ended) return;
    // Masking sees every message (to follow results); undefined = forward the original bytes.
    const masked = this.masker?.onBackend(type, buf, start, end);
    if (type === MessageType.ReadyForQuery) {
      this.txStatus = buf[start + HEADER_LENGTH]!;
      this.awaitingReady = false;
      this.sawReady = true;
    } else if (type === MessageType.ErrorResponse) {
      if (isFatal(buf, start, end)) this.backendSentFatal = true;
      const refusal = this.refusals.size > 0 ? this.refusalFor(buf, start, end) : undefined;
      if (refusal) return this.sendToClient(refusal);
    } else if (type === MessageType.BackendKeyData) {
      return; // never expose the backend's cancel key
    } else if (type === MessageType.ParameterStatus && literalsReadOtherwise(buf, start, end)) {
      // Statements are analysed with string literals read as standard_conforming_strings = on;
      // with it off they would mean something else than what was checked. Fail closed.
      this.terminate(
        'protocol_error',
        new GatewayError(
          'denied',
          'jitgate: standard_conforming_strings was turned off or the client encoding changed to one jitgate cannot read; statements can no longer be checked as the server reads them, so the session ends',
        ),
      );
      return;
    }
    if (masked === REBUILT_ROW) {
      const { rowBuf, rowStart, rowEnd } = this.masker!;
      if (this.observer) observeBackendMessage(this.observer, type, rowBuf, rowStart, rowEnd, this.masker!.columnNotes);
      this.toClient.forward(rowBuf, rowStart, rowEnd);
      return;
    }
    if (masked) {
      for (const m of masked) {
        if (this.observer) observeBackendMessage(this.observer, m[0]!, m, 0, m.length, this.masker!.columnNotes);
        this.toClient.inject(m);
      }
      return;
    }
    if (this.observer) observeBackendMessage(this.observer, type, buf, start, end);
    this.toClient.forward(buf, start, end);
  };

  private flushToClient(): void {
    const data = this.toClient.take();
    if (!data) return;
    this.counters.bytesToClient += data.length;
    if (!this.client.write(data)) this.backend.pause();
  }

  private sendClient(message: Buffer): void {
    this.sendToClient(message);
    this.flushToClient();
  }

  /** Queues a message the gateway itself composed (an ErrorResponse), letting the observer see it. */
  private sendToClient(message: Buffer): void {
    if (this.observer) observeBackendMessage(this.observer, message[0]!, message, 0, message.length);
    this.toClient.inject(message);
  }

  // -------------------------------------------------------------------------------------------
  // endings

  private backendGone(): void {
    if (this.ended) return;
    // After Terminate the backend closing first is the normal goodbye, not a loss.
    if (this.clientSaidGoodbye) {
      this.finish('client_quit');
      return;
    }
    if (this.backendSentFatal) {
      this.finish('backend_lost');
      return;
    }
    this.terminate(
      'backend_lost',
      new GatewayError('backend_lost', 'jitgate: lost connection to the backend', 'the backend closed the connection unexpectedly'),
    );
  }

  private protocolFailure(err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : 'invalid message';
    this.terminate('protocol_error', new GatewayError('protocol_violation', message));
  }

  private finish(reason: SessionEndReason): void {
    if (this.ended) return;
    this.ended = true;
    const { client, backend } = this;
    if (!backend.destroyed) {
      if (!this.clientSaidGoodbye && backend.writable) backend.write(build.terminate());
      backend.end();
      backend.destroySoon?.();
    }
    client.end();
    // A client that stops reading must not keep the socket (and its buffers) forever.
    setTimeout(() => client.destroy(), 5000).unref();
    this.queued.clear();
    this.options.onEnd(reason);
  }

  /** Cancels what runs on the backend (kill, revoke): a held statement ends with the session. */
  cancel(): Promise<void> {
    return this.options.cancelBackend();
  }

  /**
   * The client's own CancelRequest (Ctrl-C in psql): a statement held for approval is withdrawn
   * and the client gets 57014 as for any cancelled statement; otherwise the backend is cancelled.
   */
  clientCancel(): Promise<void> {
    if (this.heldInfo) {
      this.withdrawHeld();
      return Promise.resolve();
    }
    // A statement still waiting for the gateway's own decision may yet be held for a person: the
    // cancel is kept for that moment (see hold()). What runs on the backend is cancelled as usual.
    if (this.holding) this.cancelRequested = true;
    return this.options.cancelBackend();
  }

  private withdrawHeld(): void {
    const held = this.heldInfo;
    this.heldInfo = undefined;
    this.cancelRequested = false;
    held?.withdraw();
  }
}

/** The NoticeResponse a held client sees: the message names the review, rule and where to approve. */
function holdNotice(hold: HoldInfo): Buffer {
  return build.notice({
    severity: 'NOTICE',
    code: '00000',
    message: hold.notice.message ?? 'jitgate: statement held for approval',
    detail: hold.detail,
    hint: hold.hint,
  });
}

function shutdownError(): GatewayError {
  return new GatewayError('shutting_down', 'terminating connection because the jitgate gateway is shutting down');
}

function statementOf(type: number, buf: Buffer, start: number, end: number): Statement | undefined {
  switch (type) {
    case MessageType.Query:
      return { source: 'simple', text: readCString(buf, start + HEADER_LENGTH, end).value };
    case MessageType.Parse: {
      const name = readCString(buf, start + HEADER_LENGTH, end);
      return { source: 'parse', name: name.value, text: readCString(buf, name.next, end).value };
    }
    case MessageType.FunctionCall:
      return { source: 'function-call', text: `function call oid ${buf.readUInt32BE(start + HEADER_LENGTH)}` };
    default:
      return undefined;
  }
}

function parseName(buf: Buffer, start: number, end: number): string {
  return readCString(buf, start + HEADER_LENGTH, end).value;
}

/**
 * A ParameterStatus saying statement text is no longer read as the gateway reads it:
 * standard_conforming_strings off, or a client encoding whose characters can hide ASCII bytes.
 */
export function literalsReadOtherwise(buf: Buffer, start: number, end: number): boolean {
  const name = readCString(buf, start + HEADER_LENGTH, end);
  if (name.value === 'standard_conforming_strings') return readCString(buf, name.next, end).value !== 'on';
  if (name.value === 'client_encoding') return unsafeClientEncoding(readCString(buf, name.next, end).value);
  return false;
}

function isFatal(buf: Buffer, start: number, end: number): boolean {
  // Severity is normally the first field: 'S' FATAL\0 or 'S' PANIC\0.
  const at = start + HEADER_LENGTH;
  if (buf[at] !== ErrorField.Severity) return false;
  const severity = buf.toString('latin1', at + 1, Math.min(end, at + 6));
  return severity === 'FATAL' || severity === 'PANIC';
}

function errorMessage(err: unknown): string {
  return err instanceof GatewayError ? err.message : 'statement could not be decided; refused';
}
