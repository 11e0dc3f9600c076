/**
 * The gateway's persistent state, on the embedded SQLite file (./sqlite.ts) or a shared PostgreSQL
 * (./postgres-store.ts), both through ./sql-store.ts. Every call is async: a shared store is a
 * network away. All times are epoch ms.
 */
import type { SessionCounters, SessionEndReason } from '../core/types.js';

export interface SessionRow {
  id: string;
  user: string;
  connection: string;
  protocol: string;
  clientAddress: string;
  applicationName: string | null;
  startedAt: number;
  endedAt: number | null;
  endReason: SessionEndReason | null;
  bytesFromClient: number;
  bytesToClient: number;
  statements: number;
  /** The gateway instance that serves (or served) the session; null for rows from before instances. */
  instanceId: string | null;
}

export interface SessionFilter {
  user?: string;
  connection?: string;
  /** true: only live sessions; false: only ended ones; undefined: both. */
  active?: boolean;
  limit?: number;
}

/** An issued access token, stored only as a SCRAM verifier (the token itself is never stored). */
export interface TokenRow {
  id: string;
  user: string;
  connection: string;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface AuthFailureRow {
  at: number;
  user: string;
  connection: string;
  clientAddress: string;
  reason: string;
}

/** One encrypted secret (AES-256-GCM); the plaintext never touches the store. */
export interface SecretRow {
  name: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
  updatedAt: number;
}

/**
 * One running gateway process (several may share a store). The id is random per process start;
 * hostname and pid are for people, and let an instance on the same host tell at once that a
 * process is gone (see instances/registry.ts).
 */
export interface InstanceRow {
  id: string;
  hostname: string;
  pid: number;
  /** The PID namespace the pid belongs to (Linux), so a pid is only checked where it means something. */
  pidNamespace: string | null;
  startedAt: number;
  heartbeatAt: number;
  /** Set when another instance found this one lost and began closing what it left. */
  lostAt: number | null;
  lostBy: string | null;
}

/** The instances table and the sessions each instance serves. */
export interface InstanceRepository {
  /** Adds (or, after being declared lost while alive, re-adds) this instance's row. */
  register(row: Omit<InstanceRow, 'lostAt' | 'lostBy'>): Promise<void>;
  /** False when the row is gone or marked lost: another instance has declared this one lost. */
  heartbeat(id: string, at: number): Promise<boolean>;
  /** A clean shutdown, or the end of closing what a lost instance left. */
  remove(id: string): Promise<void>;
  list(): Promise<InstanceRow[]>;
  /**
   * Claims a lost instance, in one transaction with closing its open sessions as `reason`: one
   * conditional update, so of several instances trying at once exactly one gets the ids back.
   * `seen` is the row as read; undefined when it changed since (a heartbeat, another claimant).
   */
  claimLost(seen: InstanceRow, by: string, at: number, reason: SessionEndReason): Promise<string[] | undefined>;
  /**
   * Closes open sessions no instance row owns: rows from before instances (no instance) and those of
   * an instance that stopped cleanly but whose end rows never got in. Returns their ids.
   */
  closeUnownedSessions(endedAt: number, reason: SessionEndReason): Promise<string[]>;
  /**
   * Asks the instance serving an open session to end it (a kill made through another instance);
   * false when the session is not open on that instance.
   */
  requestKill(request: KillRequest): Promise<boolean>;
  /** The kills asked of this instance, removed as they are taken. */
  takeKills(instanceId: string): Promise<KillRequest[]>;
  /**
   * Records which instance handed out a cancel key; false when another holds that pid. The holder
   * claiming it again names its session (a MySQL id is handed out before the session exists).
   */
  claimCancelKey(key: { protocol: string; pid: number; instanceId: string; sessionId: string }): Promise<boolean>;
  /** The instance holding a cancel key and the user of the open session it was named for (null while none is). */
  cancelKeyHolder(protocol: string, pid: number): Promise<{ instanceId: string; sessionId: string; user: string | null } | undefined>;
  releaseCancelKey(protocol: string, pid: number, instanceId: string): Promise<void>;
  /** Passes a cancel to the instance that handed out its key; false when no instance did. */
  requestCancel(request: { protocol: string; pid: number; secret: number; requestedAt: number }): Promise<boolean>;
  /** The cancels passed to this instance, removed as they are taken. */
  takeCancels(instanceId: string): Promise<Array<{ protocol: string; pid: number; secret: number }>>;
  /** A lost instance's cancel keys go with it, and the cancels and kills asked of it that it never took. */
  forgetRequestsOf(instanceId: string): Promise<void>;
  /** Adds to this instance's counts (one transaction). */
  addUsage(instanceId: string, counts: readonly UsageCount[]): Promise<void>;
  /** Every other instance's counts in buckets from `since` on (per kind: see UsageCount). */
  usageOfOthers(instanceId: string, since: Readonly<Record<string, number>>): Promise<Array<UsageCount & { instanceId: string }>>;
  /** Drops buckets older than `before`. */
  dropUsageBefore(before: number): Promise<void>;
}

/** What one instance counted for one user or address in one time bucket (instances/usage.ts). */
export interface UsageCount {
  kind: string;
  key: string;
  /** The bucket's start, epoch ms. */
  bucket: number;
  count: number;
}

/** A kill made through one instance for a session another serves. */
export interface KillRequest {
  sessionId: string;
  instanceId: string;
  by: string;
  reason: string;
  requestedAt: number;
}

/** End reasons crash recovery may still correct from a session's recording (see reconcileSession). */
export const RECOVERABLE_END_REASONS: readonly SessionEndReason[] = ['gateway_crashed', 'instance_lost'];

export interface Store {
  startSession(
    row: Omit<SessionRow, 'endedAt' | 'endReason' | 'bytesFromClient' | 'bytesToClient' | 'statements' | 'instanceId'> & {
      instanceId?: string | null;
    },
  ): Promise<void>;
  endSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): Promise<void>;
  /** Gateway instances, their heartbeats, and closing the sessions of one that is gone. */
  readonly instances: InstanceRepository;
  /**
   * The real end of a session the store missed (the gateway crashed, or its end row never got in),
   * as recovered from its recording; applies while the row is open or closed as one of
   * RECOVERABLE_END_REASONS.
   */
  reconcileSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): Promise<void>;
  listSessions(filter?: SessionFilter): Promise<SessionRow[]>;
  /** Runs `writes` as one transaction (all or nothing; one commit for many rows): their calls join it. */
  batch(writes: () => Promise<void>): Promise<void>;

  /** The SCRAM salt shared by all tokens of one user on one connection (created on first use). */
  scramSalt(user: string, connection: string): Promise<Buffer>;
  insertToken(row: TokenRow): Promise<void>;
  /** Tokens neither expired (expiresAt > now) nor revoked. */
  activeTokens(user: string, connection: string, now: number): Promise<TokenRow[]>;
  revokeToken(id: string, at: number): Promise<boolean>;

  recordAuthFailure(row: AuthFailureRow): Promise<void>;
  listAuthFailures(limit?: number): Promise<AuthFailureRow[]>;

  putSecret(row: SecretRow): Promise<void>;
  /** Stores `row` unless a secret of that name exists; false when one did (another instance was first). */
  addSecret(row: SecretRow): Promise<boolean>;
  /** Replaces the secret only while it is still the value sealed with `expectedIv` (each write has its own IV). */
  replaceSecret(row: SecretRow, expectedIv: Buffer): Promise<boolean>;
  getSecret(name: string): Promise<SecretRow | undefined>;
  listSecrets(): Promise<{ name: string; updatedAt: number }[]>;
  deleteSecret(name: string): Promise<boolean>;

  /** Cheap liveness probe for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
