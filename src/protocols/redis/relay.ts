/**
 * The per-session Redis relay between an authenticated client and its backend connection.
 *
 * Every client command is parsed (strictly, ./resp.ts), decided by the session pipeline and then
 * forwarded as the very bytes that were parsed (an inline command as the RESP of its parsed
 * arguments) or answered by the gateway; nothing reaches the backend that was not decided.
 * Commands pipelined before a boundary are made durable in the recording before they are sent. Replies are paired with commands through one
 * FIFO of pending entries, so answers the gateway composes itself (refusals, AUTH, scoped CLIENT
 * commands) reach the client in exactly the order Redis would have sent them, pipelined or not.
 * Pub/sub confirmations (one per channel) and out-of-band pushes (messages, invalidations) are told
 * apart the way clients do: RESP3 push type, or, on RESP2, message arrays while subscribed.
 *
 * Replies stream: their bytes go to the client as they arrive, so a 500 MB value never sits in
 * gateway memory; only a bounded decoded head is kept for pairing and recording. When masking
 * applies, replies are held whole (up to a cap), rewritten and re-encoded; a reply too big to
 * inspect is refused rather than passed unmasked (fail closed).
 */
import type { Socket } from 'node:net';
import type {
  Decision,
  DecisionCode,
  ResultObserver,
  SessionCounters,
  SessionEndReason,
  SessionPipeline,
  Statement,
} from '../../core/types.js';
import { credentialRefusal, replyRedactor, type ReplyRedactor } from './backend-secrets.js';
import { formatCommand, formatReply } from './display.js';
import { HoldQueue } from '../hold-queue.js';
import {
  CommandReader,
  CRLF_LENGTH,
  errorReply,
  encodeCommand,
  encodeValue,
  ReplyReader,
  RespError,
  RespType,
  simpleReply,
  stringOf,
  type ParsedCommand,
  type RespValue,
} from './resp.js';

/**
 * The error prefix of each command refusal that is not a policy one (Decision.code; a policy refusal
 * is NOPERM). `cancelled`: Redis has no cancel of its own, so a hold that ended unapproved (timed
 * out, grant ended) is refused as policy refuses.
 */
const DECISION_PREFIX: Record<DecisionCode, string> = {
  cancelled: 'NOPERM',
};

/**
 * Rewrites a reply for one command (masking); null = no masking for this session. Commands it could
 * not mask are refused before they run, by the session pipeline (the masker's check).
 */
export interface ReplyMasker {
  /** Masks `value` (the reply to `args`, or a push when args is null) in place; true if anything changed. */
  mask(args: readonly Buffer[] | null, value: RespValue, execQueue?: ReadonlyArray<readonly Buffer[]>): boolean;
  /** Largest reply held for masking; bigger ones are refused. */
  maxReplyBytes: number;
}

export interface RedisRelayOptions {
  client: Socket;
  backend: Socket;
  pipeline: SessionPipeline;
  /** The reader that parsed the handshake (it may hold the start of the next command). */
  reader: CommandReader;
  /** The backend connection's client id: CLIENT LIST is scoped to it. */
  backendClientId: string;
  /** Re-establishes the gateway's credential and database after RESET. */
  reauth: () => Buffer[];
  /** Checks a token presented again (AUTH / HELLO AUTH mid-session) for the session's own identity. */
  verifyAgain(user: string, token: string): Promise<boolean>;
  masker: ReplyMasker | null;
  onEnd: (reason: SessionEndReason) => void;
  onError?: (err: unknown) => void;
}

/** What the gateway does with a command it answers or reshapes itself (`later`: once a check against the store is done). */
type OwnAnswer = { refusal?: Decision; reply?: Buffer; forward?: Buffer; later?: Promise<{ reply?: Buffer; forward?: Buffer }> };

const identityFixed = (): Buffer => errorReply('WRONGPASS jitgate: a session cannot change its user or connection; open a new connection');

type Pending =
  | { kind: 'local'; reply: Buffer; error?: string }
  | {
      kind: 'backend';
      args: Buffer[];
      /** Replies this command produces (subscribe family: one per channel); -1 = all current subscriptions. */
      expect: number;
      /** The subscribe family command this is (confirmations carry its name). */
      sub?: string;
      /** Replace the backend's reply with this (EXEC of a transaction with a refused command). */
      replace?: Buffer;
      /** The gateway's own command (re-auth after RESET): its reply is swallowed; an error ends the session. */
      internal?: boolean;
      /** For EXEC: the commands queued since MULTI, to mask each result by its command. */
      queued?: Buffer[][];
      /** Hides the backend's credentials in the reply (CONFIG GET, or EXEC of one). */
      redact?: ReplyRedactor;
    };

const SUBSCRIBE_FAMILY = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe']);
const MESSAGE_KINDS = new Set(['message', 'pmessage', 'smessage']);
/** Most items of one list in a reply held for masking (its decoded tree costs far more than its bytes). */
const MAX_MASKED_ITEMS = 1_000_000;
const EXECABORT = errorReply('EXECABORT Transaction discarded because of previous errors.');
const OK = simpleReply('OK');
/** Decoding limits for a reply that is redacted (CONFIG GET: a few hundred small items). */
const WHOLE_SMALL_REPLY = { keepBytes: 1024 * 1024, keepItems: 64 * 1024 };
/** The one column a recorded reply or push has (shared: recorded as is, never changed). */
const REPLY_COLUMNS = Object.freeze([Object.freeze({ name: 'reply', type: 0 })]) as unknown as Array<{ name: string; type: number }>;
const PUSH_COLUMNS = Object.freeze([Object.freeze({ name: 'push', type: 0 })]) as unknown as Array<{ name: string; type: number }>;

export class RedisRelay {
  readonly counters: SessionCounters = { bytesFromClient: 0, bytesToClient: 0, statements: 0 };
  private readonly client: Socket;
  private readonly backend: Socket;
  private readonly pipeline: SessionPipeline;
  private readonly observer: ResultObserver | undefined;
  private readonly reader: CommandReader;
  private readonly replies = new ReplyReader({ keepBytes: 4096, keepItems: 256 });
  private readonly fifo: Pending[] = [];
  private readonly toClient = new Output();
  private readonly toBackend = new Output();
  /** Commands waiting behind a held one. */
  /**
   * Commands that arrived behind a held one (from the chunk already read: the client is not read
   * while a command is held), bounded like every protocol's queue (protocols/hold-queue.ts).
   */
  private readonly queued = new HoldQueue<ParsedCommand>(() => undefined);
  private holding = false;
  private paused = { backpressure: false, hold: false };
  private inMulti = false;
  private multiDirty = false;
  private multiQueue: Buffer[][] = [];
  private readonly subscriptions = { subscribe: new Set<string>(), psubscribe: new Set<string>(), ssubscribe: new Set<string>() };
  /** Reply in progress: streamed, held for masking or for a decision at its end. */
  private reply: { mode: 'stream' | 'hold' | 'over'; parts: Buffer[]; size: number } = { mode: 'stream', parts: [], size: 0 };
  /** Commands forwarded since the recording's last checkpoint (a boundary, or one made before forwarding). */
  private unsaved = 0;
  private draining = false;
  private ended = false;
  private clientSaidGoodbye = false;

  constructor(private readonly options: RedisRelayOptions) {
    this.client = options.client;
    this.backend = options.backend;
    this.pipeline = options.pipeline;
    this.observer = options.pipeline.observer;
    this.reader = options.reader;
    // Values of masked sessions are decoded whole (the masker needs them); recorded ones keep a head
    // (what the recording shows); others only what pairing reads: the first items of a message.
    if (options.masker) this.replies.limits = { keepBytes: options.masker.maxReplyBytes, keepItems: MAX_MASKED_ITEMS };
    else if (!this.observer) this.replies.limits = { keepBytes: 4096, keepItems: 3 };
    this.limits = this.replies.limits;
  }

  /** The reply reader's limits for ordinary replies of this session. */
  private readonly limits: RedisRelay['replies']['limits'];

  /**
   * Starts relaying. `early` are commands read with the handshake; `earlyError` a protocol error
   * found right after them (answered once their replies are out).
   */
  start(early: ParsedCommand[], clientLeftover: Buffer, earlyError?: string): void {
    const { client, backend } = this;
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    backend.on('data', (chunk: Buffer) => this.onBackendData(chunk));
    client.on('drain', () => {
      if (!this.ended) backend.resume();
    });
    backend.on('drain', () => {
      this.paused.backpressure = false;
      this.updateClientFlow();
    });
    // Redis clients hang up without a goodbye; between commands that is an ordinary end.
    const clientGone = () => this.finish(this.clientSaidGoodbye || this.fifo.length === 0 ? 'client_quit' : 'client_error');
    client.on('error', clientGone);
    client.on('close', clientGone);
    client.on('end', clientGone);
    backend.on('error', () => this.backendGone());
    backend.on('close', () => this.backendGone());
    backend.on('end', () => this.backendGone());
    for (const c of early) this.onCommand(c);
    if (earlyError !== undefined) this.protocolError(earlyError);
    else if (clientLeftover.length) this.onClientData(clientLeftover);
    // The commands read with the handshake go out now (their replies come before any error).
    this.flush();
    client.resume();
    backend.resume();
  }

  /** No command in flight: ending now cuts no reply. */
  get idle(): boolean {
    return this.fifo.length === 0 && !this.holding && !this.inMulti;
  }

  /** Ends the session now, telling the client why (kill, revocation, forced shutdown). */
  terminate(reason: SessionEndReason, message: string): void {
    if (this.ended) return;
    // Now, not in turn: a command blocked on the backend (BLPOP) gets this as its answer.
    this.toClient.push(errorReply(`ERR ${message}`));
    this.observer?.onResult({ kind: 'error', severity: 'FATAL', code: 'ERR', message });
    this.flush();
    this.finish(reason);
  }

  /** Ends the session at the next point where no command is in flight (graceful shutdown). */
  drain(): void {
    this.draining = true;
    if (this.idle) this.terminate('gateway_shutdown', 'jitgate: the gateway is shutting down');
  }

  // -------------------------------------------------------------------------------------------
  // client -> backend

  private onClientData(chunk: Buffer): void {
    if (this.ended) return;
    this.counters.bytesFromClient += chunk.length;
    try {
      this.reader.push(chunk, this.onCommand);
    } catch (err) {
      if (!(err instanceof RespError)) throw err;
      this.protocolError(err.message);
    }
    this.flush();
    // Commands the gateway answered itself may have emptied the queue while draining.
    if (this.draining && this.idle) this.terminate('gateway_shutdown', 'jitgate: the gateway is shutting down');
  }

  /**
   * Malformed input: like Redis, the commands before it are answered, then the error, then the
   * connection closes. Nothing more is read from this client.
   */
  private protocolError(message: string): void {
    if (this.closingWith !== null) return;
    this.closingWith = message;
    this.client.pause();
    this.client.removeAllListeners('data');
    this.sendLocal(errorReply(`ERR ${message}`), message);
  }

  private closingWith: string | null = null;

  private readonly onCommand = (c: ParsedCommand): void => {
    if (this.ended || this.closingWith !== null) return;
    if (this.holding) this.queued.push(c, commandBytes(c));
    else this.handle(c);
  };

  private readonly replay = (c: ParsedCommand): void => this.handle(c);

  private handle(c: ParsedCommand): void {
    this.counters.statements++;
    // Every command goes through the pipeline (so the recording holds all of them); the gateway's
    // own handling applies to the ones policy allows.
    const decision = this.pipeline.decide(new CommandStatement(c.args));
    if (decision instanceof Promise) this.hold(decision, c);
    else this.apply(decision, c);
  }

  private apply(decision: Decision, c: ParsedCommand): void {
    if (decision.effect !== 'allow') {
      this.refuse(decision);
      return;
    }
    const name = c.args[0]!.toString('latin1').toLowerCase();
    const sub = c.args.length > 1 ? c.args[1]!.toString('latin1').toLowerCase() : '';
    const own = this.ownAnswer(name, sub, c.args);
    // RESP arrays go on as the very bytes parsed; inline commands as the RESP of their parsed arguments.
    if (!own) this.forward(c.raw ?? [encodeCommand(c.args)], c.args, name);
    else if (own.refusal) this.refuse(own.refusal);
    else if (own.reply) this.sendLocal(own.reply);
    else if (own.forward) this.forward([own.forward], c.args, name);
    else if (own.later) {
      // A token checked against the store: the commands after it wait, so answers keep their order.
      this.suspend(own.later, (answer) => {
        if (answer?.reply) this.sendLocal(answer.reply);
        else if (answer?.forward) this.forward([answer.forward], c.args, name);
        else this.sendLocal(errorReply('ERR jitgate: the token cannot be checked right now; try again'));
      });
    }
  }

  /**
   * Commands the gateway answers or reshapes itself, whatever the policy: those that would reach
   * other sessions on the shared backend, break reply pairing, or change the session's identity.
   */
  private ownAnswer(name: string, sub: string, args: Buffer[]): OwnAnswer | undefined {
    const refuse = (why: string, reason: string): { refusal: Decision } => ({
      refusal: { effect: 'deny', reasons: [reason], message: `jitgate: ${why}` },
    });
    const secret = credentialRefusal(name, sub, args);
    if (secret) return refuse(secret.why, secret.reason);
    switch (name) {
      case 'monitor':
        return refuse("MONITOR would show other sessions' commands and is not available through the gateway", 'monitor_refused');
      case 'sync':
      case 'psync':
      case 'replconf':
        return refuse(`${name.toUpperCase()} (replication) is not available through the gateway`, 'replication_refused');
      case 'auth': {
        // The session's identity is fixed: AUTH again is accepted for the same person and connection only.
        const [user, token] =
          args.length >= 3 ? [args[1]!.toString('utf8'), args[2]!.toString('utf8')] : [undefined, args[1]?.toString('utf8')];
        if (token === undefined) return { reply: errorReply("ERR wrong number of arguments for 'auth' command") };
        return { later: this.options.verifyAgain(user ?? '', token).then((same) => ({ reply: same ? OK : identityFixed() })) };
      }
      case 'hello':
        return this.hello(args);
      case 'reset':
        return undefined; // decided like any command; forward() adds the re-authentication
      case 'client':
        switch (sub) {
          case 'kill':
          case 'pause':
          case 'unpause':
          case 'unblock':
          case 'no-evict':
            return refuse(
              `CLIENT ${sub.toUpperCase()} would reach other sessions on the shared backend and is not available through the gateway`,
              'client_command_refused',
            );
          case 'reply':
            if ((args[2]?.toString('latin1') ?? '').toLowerCase() === 'on') return undefined;
            return refuse(
              'CLIENT REPLY OFF/SKIP is not available through the gateway (every command is answered)',
              'client_command_refused',
            );
          case 'tracking':
            if (args.some((a) => a.toString('latin1').toLowerCase() === 'redirect')) {
              return refuse(
                'CLIENT TRACKING REDIRECT names another connection and is not available through the gateway',
                'client_command_refused',
              );
            }
            return undefined;
          case 'list':
            // Only this session's own backend connection, never the gateway's other sessions.
            return args.length === 2 || (args.length === 4 && args[2]!.toString('latin1').toLowerCase() === 'type')
              ? { forward: encodeCommand(['CLIENT', 'LIST', 'ID', this.options.backendClientId]) }
              : refuse("CLIENT LIST is limited to this session's own connection: use CLIENT LIST or CLIENT INFO", 'client_command_refused');
          default:
            return undefined;
        }
      default:
        return undefined;
    }
  }

  /** HELLO mid-session: the protocol version may change; AUTH in it must name the same identity. */
  private hello(args: Buffer[]): OwnAnswer {
    const rest: Buffer[] = [args[0]!];
    let auth: { user: string; token: string } | undefined;
    let i = 1;
    if (args.length > 1) {
      const v = args[1]!.toString('latin1');
      if (v !== '2' && v !== '3') return { reply: errorReply('NOPROTO unsupported protocol version') };
      rest.push(args[1]!);
      i = 2;
    }
    for (; i < args.length; i++) {
      const opt = args[i]!.toString('latin1').toLowerCase();
      if (opt === 'auth' && i + 2 < args.length) {
        auth = { user: args[i + 1]!.toString('utf8'), token: args[i + 2]!.toString('utf8') };
        i += 2;
      } else if (opt === 'setname' && i + 1 < args.length) {
        rest.push(args[i]!, args[i + 1]!);
        i += 1;
      } else return { reply: errorReply(`ERR Syntax error in HELLO option '${opt}'`) };
    }
    const forward = encodeCommand(rest);
    if (!auth) return { forward };
    return { later: this.options.verifyAgain(auth.user, auth.token).then((same) => (same ? { forward } : { reply: identityFixed() })) };
  }

  private forward(bytes: readonly Buffer[], args: Buffer[], name: string): void {
    const entry: Pending = { kind: 'backend', args, expect: 1 };
    const redact = replyRedactor(name, args, this.multiQueue);
    if (redact) entry.redact = redact;
    if (SUBSCRIBE_FAMILY.has(name)) {
      entry.sub = name;
      entry.expect = args.length > 1 ? args.length - 1 : name.endsWith('unsubscribe') ? -1 : 1;
    }
    if (name === 'multi') {
      this.inMulti = true;
      this.multiDirty = false;
      this.multiQueue = [];
    } else if (name === 'exec' || name === 'discard') {
      const dirty = this.multiDirty;
      entry.queued = this.multiQueue;
      this.inMulti = false;
      this.multiDirty = false;
      this.multiQueue = [];
      if (name === 'exec' && dirty) {
        // A refused command voids the transaction, as a command Redis rejects while queueing does.
        entry.replace = EXECABORT;
        bytes = [encodeCommand(['DISCARD'])];
      }
    } else if (name === 'reset') {
      this.inMulti = false;
      this.multiQueue = [];
    } else if (this.inMulti && name !== 'watch') {
      this.multiQueue.push(args);
    }
    if (name === 'quit') this.clientSaidGoodbye = true;
    this.fifo.push(entry);
    this.unsaved++;
    for (const b of bytes) this.toBackend.push(b);
    if (name === 'reset') {
      // RESET logs the connection out to the default user: log the gateway's credential back in.
      for (const r of this.options.reauth()) {
        this.fifo.push({ kind: 'backend', args: [], expect: 1, internal: true });
        this.toBackend.push(r);
      }
    }
  }

  private refuse(decision: Decision): void {
    if (this.inMulti) this.multiDirty = true;
    const message = decision.message ?? 'jitgate: command refused by policy';
    const prefix = decision.code ? DECISION_PREFIX[decision.code] : 'NOPERM';
    this.sendLocal(errorReply(`${prefix} ${message}`), message);
  }

  /** A reply the gateway composed, placed in order behind the replies still owed by the backend. */
  private sendLocal(reply: Buffer, error?: string): void {
    this.fifo.push({ kind: 'local', reply, ...(error !== undefined ? { error } : {}) });
    this.pump();
  }

  private hold(pending: Promise<Decision>, c: ParsedCommand): void {
    this.suspend(pending, (d) =>
      this.apply(d ?? { effect: 'deny', reasons: ['decision_failed'], message: 'jitgate: command could not be decided; refused' }, c),
    );
  }

  /**
   * Stops reading commands until `pending` settles, then runs `resume` with its value (undefined
   * when it failed) and replays what arrived meanwhile, in order.
   */
  private suspend<T>(pending: Promise<T>, resume: (value: T | undefined) => void): void {
    this.flush();
    this.holding = true;
    this.paused.hold = true;
    this.updateClientFlow();
    pending.then(
      (v) => this.resumeWith(() => resume(v)),
      () => this.resumeWith(() => resume(undefined)),
    );
  }

  private resumeWith(step: () => void): void {
    if (this.ended) return;
    this.holding = false;
    this.paused.hold = false;
    step();
    // Replayed in order until one of them is held again; the rest keeps waiting behind that one.
    this.queued.drain(this.replay, () => !this.ended && !this.holding);
    this.flush();
    this.updateClientFlow();
  }

  private updateClientFlow(): void {
    if (this.ended) return;
    if (this.paused.backpressure || this.paused.hold) this.client.pause();
    else this.client.resume();
  }

  // -------------------------------------------------------------------------------------------
  // backend -> client

  private onBackendData(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.replies.push(chunk, this.replyHandler);
    } catch (err) {
      this.options.onError?.(err);
      this.terminate('protocol_error', 'jitgate: invalid data from the Redis backend');
      return;
    }
    this.flush();
    if (this.draining && this.idle) this.terminate('gateway_shutdown', 'jitgate: the gateway is shutting down');
  }

  private readonly replyHandler = {
    begin: () => {
      const head = this.fifo[0];
      // Held whole: everything when masking, and replies the gateway swaps, swallows or redacts.
      const own = head?.kind === 'backend' && (head.replace !== undefined || head.internal === true || head.redact !== undefined);
      const hold = this.options.masker !== null || own;
      // A redacted reply is decoded whole (it is small); others only as far as the session needs.
      this.replies.limits = head?.kind === 'backend' && head.redact && !this.options.masker ? WHOLE_SMALL_REPLY : this.limits;
      const r = this.reply;
      r.mode = hold ? 'hold' : 'stream';
      r.size = 0;
      if (hold || r.parts.length > 0) r.parts = [];
    },
    bytes: (data: Buffer) => {
      const r = this.reply;
      if (r.mode === 'stream') {
        this.toClient.push(data);
        return;
      }
      if (r.mode === 'over') return;
      r.size += data.length;
      if (this.options.masker && r.size > this.options.masker.maxReplyBytes) {
        r.mode = 'over';
        r.parts = [];
        return;
      }
      r.parts.push(data);
    },
    end: (value: RespValue) => this.onReply(value),
  };

  private onReply(value: RespValue): void {
    const r = this.reply;
    // A masked reply must be decoded whole; one with more items than that is refused like a big one.
    if (r.mode === 'hold' && this.options.masker && isCut(value)) {
      r.mode = 'over';
      r.parts = [];
    }
    const push = this.isPush(value);
    if (push) {
      this.trackSubscription(value);
      let bytes: Buffer | null = null;
      if (r.mode === 'hold') bytes = this.masked(null, value, r.parts);
      // An out-of-band message too big to inspect is dropped, never passed unmasked.
      if (bytes) this.toClient.push(bytes);
      this.observeReply(value, 'push');
      if (push.confirmation) this.consume(push.confirmation);
      else if (this.fifo.length === 0) this.ready();
      return;
    }
    const head = this.fifo[0];
    if (!head || head.kind !== 'backend') {
      // A reply nothing asked for: pairing is lost, and so is any guarantee about what follows.
      this.options.onError?.(new Error('unpaired reply from the Redis backend'));
      this.terminate('protocol_error', 'jitgate: the Redis backend sent a reply nobody asked for');
      return;
    }
    if (head.internal) {
      if (value.type === 'error') {
        this.options.onError?.(new Error(`re-authentication after RESET failed: ${value.text}`));
        this.terminate('backend_lost', "jitgate: could not restore the session's backend credential after RESET");
        return;
      }
      this.fifo.shift();
      this.pump(true);
      return;
    }
    if (head.replace) {
      this.toClient.push(head.replace);
      this.observeReply({ type: 'error', text: head.replace.toString('utf8', 1).trim() }, 'reply');
    } else if (r.mode === 'over') {
      const tooBig = errorReply(
        `ERR jitgate: the reply is larger than ${this.options.masker!.maxReplyBytes} bytes (or ${MAX_MASKED_ITEMS} items in one list) and cannot be masked; refused`,
      );
      this.toClient.push(tooBig);
      this.observeReply({ type: 'error', text: tooBig.toString('utf8', 1).trim() }, 'reply');
    } else if (head.redact && isCut(value)) {
      // Too big to be sure no credential is in it: not passed on (fail closed).
      const tooBig = errorReply("ERR jitgate: the reply is too large to check for the backend's credentials; refused");
      this.toClient.push(tooBig);
      this.observeReply({ type: 'error', text: tooBig.toString('utf8', 1).trim() }, 'reply');
    } else {
      if (r.mode === 'hold') {
        const redacted = head.redact?.(value) ?? false;
        const bytes = this.masked(head.args, value, r.parts, head.queued, redacted);
        if (bytes) this.toClient.push(bytes);
      }
      this.observeReply(value, 'reply');
    }
    if (head.sub) this.trackSubscription(value);
    this.consume(head.sub ?? '');
  }

  /** One reply of the head entry arrived: drop the entry once all its replies are in. */
  private consume(kind: string): void {
    const head = this.fifo[0];
    if (!head || head.kind !== 'backend') return;
    if (head.sub !== undefined && kind !== '' && head.sub !== kind) return;
    if (head.expect === -1) {
      const set = this.subscriptions[head.sub!.replace('un', '') as keyof RedisRelay['subscriptions']];
      // Counted after this confirmation removed its channel: the ones left are still to come.
      head.expect = set.size + 1;
    }
    head.expect--;
    if (head.expect <= 0) {
      this.fifo.shift();
      this.pump(true);
    }
  }

  /** Masked bytes of a held reply (the original ones when nothing changed, here or before: `changed`). */
  private masked(args: Buffer[] | null, value: RespValue, parts: Buffer[], queued?: Buffer[][], changed = false): Buffer {
    const masker = this.options.masker;
    const masked = masker ? masker.mask(args, value, queued) : false;
    if (masked || changed) return encodeValue(value);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * A push (out of band) or a subscribe-family confirmation. RESP3 marks both with the push type;
   * on RESP2 they are arrays, told apart by their first element while the session is subscribed.
   */
  private isPush(value: RespValue): { confirmation: string | null } | null {
    if (value.type !== 'push' && value.type !== 'array') return null;
    const kind = stringOf(value.items?.[0])?.toLowerCase();
    if (value.type === 'array') {
      // A RESP2 confirmation is an ordinary reply to the subscribe-family command at the head.
      return kind && MESSAGE_KINDS.has(kind) && this.subscribed ? { confirmation: null } : null;
    }
    return { confirmation: kind && SUBSCRIBE_FAMILY.has(kind) ? kind : null };
  }

  private get subscribed(): boolean {
    const s = this.subscriptions;
    return s.subscribe.size + s.psubscribe.size + s.ssubscribe.size > 0;
  }

  private trackSubscription(value: RespValue): void {
    if (value.type !== 'push' && value.type !== 'array') return;
    const kind = stringOf(value.items?.[0])?.toLowerCase();
    if (!kind || !SUBSCRIBE_FAMILY.has(kind)) return;
    const channel = stringOf(value.items?.[1]);
    const set = this.subscriptions[kind.replace('un', '') as keyof RedisRelay['subscriptions']];
    if (channel === undefined) return;
    if (kind.includes('unsubscribe')) set.delete(channel);
    else set.add(channel);
  }

  /**
   * Sends local replies now at the head of the queue (nothing owed by the backend before them);
   * when the queue empties the session is at a boundary (recorded as such).
   */
  private pump(shifted = false): void {
    while (this.fifo.length > 0 && this.fifo[0]!.kind === 'local') {
      shifted = true;
      const local = this.fifo.shift() as Extract<Pending, { kind: 'local' }>;
      this.toClient.push(local.reply);
      if (this.observer) {
        if (local.error !== undefined) this.observer.onResult({ kind: 'error', severity: 'ERROR', code: 'NOPERM', message: local.error });
        else this.observeReply(decodeSimple(local.reply), 'reply');
      }
    }
    if (shifted && this.fifo.length === 0) this.ready();
    if (this.fifo.length === 0 && this.closingWith !== null && !this.ended) {
      this.flush();
      this.finish('protocol_error');
    }
  }

  private observeReply(value: RespValue, tag: 'reply' | 'push'): void {
    const o = this.observer;
    if (!o) return;
    if (value.type === 'error') {
      const space = value.text.indexOf(' ');
      o.onResult({
        kind: 'error',
        severity: 'ERROR',
        code: space > 0 ? value.text.slice(0, space) : value.text,
        message: space > 0 ? value.text.slice(space + 1) : '',
      });
      return;
    }
    o.onResult({ kind: 'columns', columns: tag === 'reply' ? REPLY_COLUMNS : PUSH_COLUMNS });
    if (o.wantsRows()) o.onResult({ kind: 'row', values: [formatReply(value)] });
    o.onResult({ kind: 'complete', tag });
  }

  /** No command in flight: a statement boundary (the recording checkpoints there). */
  private ready(): void {
    this.unsaved = 0;
    this.observer?.onResult({ kind: 'ready' });
  }

  private flush(): void {
    if (this.toBackend.length) {
      // Pipelined commands are made durable in the recording before they reach the backend, so a
      // crash loses at most the one in flight, as between statement boundaries (one write per
      // batch of commands read together, not one per command).
      if (this.unsaved > 1) {
        this.pipeline.checkpoint?.();
        this.unsaved = 0;
      }
      const data = this.toBackend.take();
      if (!this.backend.write(data)) {
        this.paused.backpressure = true;
        this.updateClientFlow();
      }
    }
    if (this.toClient.length) {
      const data = this.toClient.take();
      this.counters.bytesToClient += data.length;
      if (!this.client.write(data)) this.backend.pause();
    }
  }

  // -------------------------------------------------------------------------------------------
  // endings

  private backendGone(): void {
    if (this.ended) return;
    if (this.clientSaidGoodbye) {
      this.flush();
      this.finish('client_quit');
      return;
    }
    this.terminate('backend_lost', 'jitgate: lost connection to the Redis backend');
  }

  private finish(reason: SessionEndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.backend.destroy();
    this.client.end();
    // A client that stops reading must not keep the socket (and its buffers) forever.
    setTimeout(() => this.client.destroy(), 5000).unref();
    this.queued.clear();
    this.fifo.length = 0;
    this.options.onEnd(reason);
  }
}

/** The statement the pipeline decides (and the recorder records): display text and arguments made on demand. */
class CommandStatement implements Statement {
  readonly source = 'command' as const;
  private shown: string | undefined;
  private decoded: string[] | undefined;

  constructor(private readonly args: Buffer[]) {}

  get text(): string {
    return (this.shown ??= formatCommand(this.args));
  }

  get argv(): string[] {
    return (this.decoded ??= this.args.map((a) => a.toString('utf8')));
  }
}

/**
 * Bytes to write, collected per incoming chunk: adjacent slices of one buffer (commands or replies
 * forwarded as received) merge back into one, so a chunk passed through unchanged is one write of
 * the very bytes that arrived.
 */
class Output {
  private parts: Buffer[] = [];
  /** The last run of adjacent bytes, not made into a Buffer until something else comes or take(). */
  private run: Buffer | null = null;
  private runEnd = 0;

  get length(): number {
    return this.parts.length + (this.run ? 1 : 0);
  }

  push(b: Buffer): void {
    const run = this.run;
    if (run && run.buffer === b.buffer && this.runEnd === b.byteOffset) {
      this.runEnd += b.length;
      return;
    }
    if (run) this.parts.push(this.close(run));
    this.run = b;
    this.runEnd = b.byteOffset + b.length;
  }

  take(): Buffer {
    const run = this.run;
    if (run) {
      const last = this.close(run);
      this.run = null;
      if (this.parts.length === 0) return last;
      this.parts.push(last);
    }
    const parts = this.parts;
    this.parts = [];
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private close(run: Buffer): Buffer {
    const length = this.runEnd - run.byteOffset;
    return length === run.length ? run : Buffer.from(run.buffer, run.byteOffset, length);
  }
}

function isCut(v: RespValue): boolean {
  if (v.type === 'bulk' || v.type === 'verbatim') return v.cut !== undefined;
  if (v.type === 'array' || v.type === 'set' || v.type === 'push' || v.type === 'map') return v.cut === true || (v.items ?? []).some(isCut);
  return false;
}

function decodeSimple(reply: Buffer): RespValue {
  const text = reply.toString('utf8', 1, reply.length - CRLF_LENGTH);
  return reply[0] === RespType.SimpleError ? { type: 'error', text } : { type: 'simple', text };
}

/** What a queued command weighs: its bytes as received (an inline one, its arguments). */
function commandBytes(c: ParsedCommand): number {
  let n = 0;
  for (const b of c.raw ?? c.args) n += b.length;
  return n;
}
