/** Shared types. This module imports nothing, so every layer may depend on it. */

export type Protocol = 'postgres' | 'mysql' | 'redis';

/** Who is on the other end of a session. */
export interface Identity {
  /** Login name as the person or agent is known to the gateway. */
  user: string;
  groups: string[];
  /** People log in; services and AI agents use client credentials or API keys. */
  kind: 'human' | 'service';
  /** How the identity was established: 'oidc', 'session' (gateway session), 'apikey', 'client-credentials', 'local-admin'. */
  via: string;
}

/** Time-limited access of one identity to one connection; every data session rests on one. */
export interface Grant {
  id: string;
  user: string;
  /** Groups of the identity when the grant was made. */
  groups: string[];
  connection: string;
  reason: string;
  /** The access request it came from (absent for admin-issued grants). */
  requestId: string | null;
  /** Users who approved it (empty when policy granted it at once). */
  approvedBy: string[];
  breakGlass: boolean;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

export type BackendTlsMode = 'disable' | 'prefer' | 'require' | 'verify-full';

/** A configured backend data store, with its credential already resolved (never logged). */
export interface BackendTarget {
  connection: string;
  protocol: Protocol;
  host: string;
  port: number;
  database: string;
  user: string;
  /** The gateway's backend password. A rotation replaces it in place, so every holder sees the new one. */
  password?: string;
  /**
   * While the gateway rotates its password: the other one of the pair (the new one before the
   * backend has it, or the old one just after). A login the backend refuses is tried once more with
   * it (./backend-password.ts), so no session fails across the change.
   */
  otherPassword?: string;
  /**
   * Reads the password again from the store it lives in, where another gateway instance sharing
   * that store may have rotated it; resolves true when this target's passwords changed. A login
   * the backend refused with every password the target offered asks once.
   */
  reload?: () => Promise<boolean>;
  tls: { mode: BackendTlsMode; ca?: string; servername?: string };
  connectTimeoutMs: number;
}

/** One statement as seen on the data path, before any decision. */
export interface Statement {
  /** 'simple' = Query, 'parse' = extended-protocol Parse, 'bind' = a reviewed prepared statement executed again, 'function-call' = FunctionCall, 'command' = a Redis command. */
  source: 'simple' | 'parse' | 'function-call' | 'command' | 'bind';
  text: string;
  /** Prepared statement name for Parse ('' = unnamed). */
  name?: string;
  /** source 'command' (Redis): the command's arguments, decoded as UTF-8; `text` is its display form. */
  argv?: readonly string[];
  /**
   * MySQL: how the backend reads the text (MariaDB or MySQL, its version, sql_mode quoting), so the
   * analysis reads it the same way (executable comments, string escapes). Absent: every reading.
   */
  dialect?: { mariadb: boolean; version: number; noBackslashEscapes: boolean; ansiQuotes?: boolean };
  /**
   * Decided during login (a startup setting applied as SET): nobody can wait for an approval there,
   * so a statement a review rule would hold is refused instead, and no review is opened.
   */
  atLogin?: true;
}

export type Effect = 'allow' | 'deny' | 'review';

/** A decision on a statement; reasons are stable codes shown to users and recorded. */
export interface Decision {
  effect: Effect;
  reasons: string[];
  /** Human-readable message for a deny (names the rule). */
  message?: string;
  rule?: string;
  /**
   * What kind of deny this is when it is not a policy refusal; each protocol answers it in its own
   * words. Absent: refused by policy (PostgreSQL 42501, MySQL 1142, Redis NOPERM).
   */
  code?: DecisionCode;
}

/**
 * Kinds of refusal that are not policy ones, protocol-neutral. Each protocol maps every code to its
 * own error in a table typed `Record<DecisionCode, ...>` (postgres/errors.ts, mysql/errors.ts, the
 * Redis relay), so a new code does not compile until every protocol answers it.
 * `cancelled`: a held statement that will not run because its wait ended without approval (the
 * client cancelled it, the review timed out, the session's grant ended): PostgreSQL 57014, MySQL
 * 1317 (70100), as for a query the server itself cancelled; Redis NOPERM.
 */
export type DecisionCode = 'cancelled';

/** What the client is told while a statement is held, and how it stops waiting (see PendingDecision). */
export interface HoldInfo {
  /** effect 'review', the rule and reasons; `message` names what is awaited (e.g. the review id). */
  notice: Decision;
  /** Why it is held, for people (what was found, the rule's reason). */
  detail?: string;
  /** What happens next: who must approve, how long it waits, where to approve it. */
  hint?: string;
  /** The client gave up on the statement (cancel request): the pending decision settles as a deny. */
  withdraw(): void;
}

/**
 * A decision that comes later: it waits for the gateway itself (masking reading its catalog first),
 * for a person (a review), or for the one and then the other. `onHold` announces the wait for a
 * person, whenever it begins: the listener is called once, with why and how to withdraw, at once if
 * the statement is already held, never if it is decided without anyone. Made by
 * `pendingDecision()` (./pending-decision.ts).
 */
export type PendingDecision = Promise<Decision> & { onHold(listener: (hold: HoldInfo) => void): void };

export type SessionEndReason =
  | 'client_quit'
  | 'client_error'
  | 'backend_lost'
  | 'backend_refused'
  | 'grant_expired'
  | 'revoked'
  | 'killed'
  | 'gateway_shutdown'
  /** The gateway process died without ending the session (kill -9, power loss); set by the next start. */
  | 'gateway_crashed'
  /** The instance serving the session stopped heart-beating; set by a surviving instance. */
  | 'instance_lost'
  | 'protocol_error';

/** Counters kept per session and written to the store when it ends. */
export interface SessionCounters {
  bytesFromClient: number;
  bytesToClient: number;
  statements: number;
}

/**
 * The seam between a protocol engine and the gateway's policy, masking and recording: one per
 * session, built by session/ and handed to the engine. Protocol engines call it; they never reach
 * the store, policy or recorder directly.
 */
export interface SessionPipeline {
  readonly id: string;
  /**
   * Decide one statement. A PendingDecision means the statement waits: for the gateway itself, for
   * a person (announced through `onHold`), or both in turn.
   */
  decide(statement: Statement): Decision | PendingDecision;
  /** The session has ended; counters are final. Called exactly once. */
  end(reason: SessionEndReason, counters: SessionCounters): void;
  /**
   * Makes every statement decided so far survive a crash of the gateway process (as a statement
   * boundary does). A protocol engine that forwards several statements before their boundary
   * (Redis pipelines) calls it before forwarding them, so a crash loses at most the one in flight.
   * Absent: nothing is recorded.
   */
  checkpoint?(): void;
  /**
   * The relay's live counters, handed over once when it starts (the recording snapshots them now
   * and then, so a crash does not lose them). Optional: the relay does not depend on it.
   */
  watchCounters?(counters: Readonly<SessionCounters>): void;
  /**
   * What the client is sent, decoded into protocol-neutral events (for recording). Absent means
   * nothing is decoded at all, so passthrough stays cheap.
   */
  observer?: ResultObserver;
}

export type MaskStrategyKind = 'redact' | 'partial' | 'hash' | 'null' | 'email' | 'phone' | 'card';

/** How one output column is masked, and why (rule name and stable reason code, for the record). */
export interface ColumnMask {
  /** The masking rule's name ('lineage' when the column is masked because its origin is unprovable). */
  rule: string;
  /** masked_column (a masked source column), masked_expression (computed from one), masking_unprovable. */
  reason: 'masked_column' | 'masked_expression' | 'masking_unprovable';
  strategy: MaskStrategyKind;
  /** partial: characters kept at the end. */
  keepLast?: number;
}

/** What one statement's results need, from lineage (protocol-neutral). */
export interface StatementMaskPlan {
  /** Mask per output column in order, or 'unknown' when lineage cannot predict the columns. */
  columns: Array<ColumnMask | undefined> | 'unknown' | null;
  /** For columns lineage cannot place (unknown shape, no origin reported): masked if anything read is. */
  fallback: ColumnMask | undefined;
  /** The statement reads masked data somewhere (WHERE included): errors and notices may echo it. */
  touchesMasked: boolean;
  /** COPY ... TO STDOUT and its options. */
  copy?: { format: 'text' | 'csv' | 'binary'; delimiter: string; quote: string; escape: string; header: boolean; null: string };
}

/** How masking changes a value (the hash strategy is keyed per gateway). */
export type MaskStrategy =
  | { kind: 'redact' }
  | { kind: 'partial'; keepLast: number }
  | { kind: 'hash' }
  | { kind: 'null' }
  | { kind: 'email' }
  | { kind: 'phone' }
  | { kind: 'card' };

/** Content detectors: kinds of sensitive values recognised inside any text (masking/detectors.ts). */
export type DetectorName = 'email' | 'card' | 'iban' | 'ssn' | 'phone' | 'ip' | 'jwt' | 'cloud_key' | 'private_key';

/** What one rule masks, as a glob over names (columns `schema.table.column`, Redis keys or hash fields). */
export interface MaskTarget {
  pattern: string;
  strategy: MaskStrategy;
}

/** A masking rule as it applies to a session: SQL columns, Redis keys and hash fields it masks. */
export interface MaskRule {
  name: string;
  columns: MaskTarget[];
  /** Redis: key globs (case-sensitive) whose values are masked. */
  keys?: MaskTarget[];
  /** Redis: hash field globs whose values are masked. */
  fields?: MaskTarget[];
}

/**
 * The masking that applies to one session, protocol-neutral: the rules for its identity and
 * connection, the content detectors and the gateway's hash key. Each protocol turns it into its own
 * masker (an adapter in its folder: what it masks is read from its own wire format).
 */
export interface MaskingScope {
  connection: string;
  rules: MaskRule[];
  detectors: DetectorName[];
  hashKey: Buffer;
}

/**
 * The part of a session's masker the session pipeline uses, whatever the protocol: it is ready
 * before the first statement, and it refuses statements whose results it could not mask. What it
 * masks and how (result columns, reply values) is the protocol adapter's own business.
 */
export interface SessionMasking {
  /** Loads what masking needs (e.g. the backend's catalog); a rejection refuses the session (fail closed). */
  prepare(): Promise<void>;
  /**
   * A refusal when the statement would copy masked data out or cannot be followed; else undefined.
   * A promise when masking must first read something (PostgreSQL: validate its catalog); the
   * statement waits for it.
   */
  check(statement: Statement): Decision | Promise<Decision | undefined> | undefined;
}

/** A source column a masking rule matched: the step of lineage that masks an output column. */
export interface MaskedSource {
  /** `schema.table.column`, or `?what` for data lineage cannot follow. */
  source: string;
  rule: string;
}

/** One output column, explained: where its values come from and which mask that gives it. */
export interface ColumnExplanation {
  index: number;
  name?: string;
  /** Source columns its values come from (plain copy unless `derived`). */
  sources: string[];
  derived: boolean;
  mask?: ColumnMask;
  /** The sources that made it masked, with the rule each matched. */
  maskedBy: MaskedSource[];
}

export interface StatementMaskExplanation {
  /** Output columns, or 'unknown' when lineage cannot predict them, or null when no rows come back. */
  columns: ColumnExplanation[] | 'unknown' | null;
  /** The mask of columns lineage cannot place (decided by the origin the server reports). */
  fallback?: ColumnMask;
  /** Masked sources the statement reads anywhere (WHERE included): its errors and notices are scrubbed. */
  reads: MaskedSource[];
}

/** A column of a result as the client sees it. */
export interface ResultColumn {
  name: string;
  /** Protocol type identifier (PostgreSQL: type OID). */
  type: number;
}

/** A result column the gateway masked: its index, the rule and the reason code. */
export interface MaskedColumnNote {
  column: number;
  rule: string;
  reason: string;
}

export type ResultEvent =
  | { kind: 'columns'; columns: ResultColumn[]; masked?: MaskedColumnNote[] }
  /** Values as sent to the client (text format decoded as UTF-8; binary values base64 with a `b64:` prefix). */
  | { kind: 'row'; values: Array<string | null> }
  /** One CopyData message of COPY ... TO STDOUT (a row in text/CSV format), while rows are wanted. */
  | { kind: 'copy'; data: string }
  | { kind: 'complete'; tag: string }
  | { kind: 'error'; severity: string; code: string; message: string }
  | { kind: 'notice'; severity: string; code: string; message: string }
  /** The statement (or batch) is over and the session is ready for the next one. */
  | { kind: 'ready' };

export interface ResultObserver {
  /** Whether row values are still wanted for the statement in flight (per-statement caps). */
  wantsRows(): boolean;
  onResult(event: ResultEvent): void;
  /**
   * Parameter values bound to a prepared statement (extended protocol Bind), when the observer
   * wants them. Decoded only if this is present.
   */
  onBind?(bind: BoundParameters): void;
}

/** One Bind: which prepared statement runs with which values. */
export interface BoundParameters {
  /** Portal and prepared statement names ('' = unnamed). */
  portal: string;
  statement: string;
  /** Values as text (binary ones base64 with a `b64:` prefix); null = SQL NULL. */
  values: Array<string | null>;
  /** Indexes of values cut to the decoder's size limit (their full size is in `sizes`). */
  cut: number[];
  /** Byte length of each value as sent (-1 for NULL). */
  sizes: number[];
}

/**
 * The backend credential one session connects with (the stored one, or a role made just for this
 * session), held until the session ends. Built by credentials/, used by protocol engines.
 */
export interface BackendLease {
  target: BackendTarget;
  /** The session is over: give the credential back (e.g. drop the role). Idempotent; never throws. */
  release(): void;
}

/** What a protocol listener tells the session service about a new session. */
export interface SessionInfo {
  user: string;
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  tokenId: string;
  authMethod: string;
  encrypted: boolean;
  /** Protections every statement of the session passes (policy/pg-session-protection.ts). */
  protect?: (statement: Statement) => Decision | undefined;
  /**
   * Builds the protocol's masker (an adapter in the protocol's folder) from the masking that applies
   * to the session, when any does; undefined when nothing in it concerns this protocol. The session
   * decides each statement with its check, in the pipeline's order, and the listener hands what it
   * built to its relay. Absent: a session masking applies to is refused (fail closed).
   */
  masker?: (scope: MaskingScope) => SessionMasking | undefined;
}

/** What a protocol listener asks for when a session needs its backend connection. */
export interface BackendRequest {
  sessionId: string;
  user: string;
  connection: string;
  tokenId: string;
  /** The connection's configured target (stored credential). */
  target: BackendTarget;
}

/** Where a key came from: the shared store, a file imported into it, a file, or made now. */
export type KeyOrigin = 'store' | 'imported' | 'file' | 'created';

/**
 * Keys every gateway instance on one store must agree on (credentials/shared-keys.ts): in the store
 * when a master key can seal them, else in files under the data directory.
 */
export interface KeyKeeper {
  /** True when keys live in the shared store (every instance on it agrees), false when in local files. */
  readonly shared: boolean;
  /**
   * The key `name`, text: the stored one; else the value in `file` (a single-host gateway's, imported
   * when shared) or `create()`'s, kept so that the next caller anywhere gets the same.
   */
  key(name: string, o: { file: string; create: () => string }): Promise<{ value: string; origin: KeyOrigin }>;
  /** The key `name` as it is kept now (the store's, else `file`'s, which the next start would import), without creating one. */
  find(name: string, file?: string): Promise<string | undefined>;
  /** Shared keys only: stores `value` unless one is stored (or in place of `replacing`); returns what is stored after. */
  put(name: string, value: string, replacing?: string): Promise<string>;
}
