/**
 * The gateway's persistent state. The embedded default is SQLite (./sqlite.ts); a PostgreSQL store
 * for multi-instance deployments can implement the same interface later. All times are epoch ms.
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

export interface Store {
  startSession(row: Omit<SessionRow, 'endedAt' | 'endReason' | 'bytesFromClient' | 'bytesToClient' | 'statements'>): void;
  endSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): void;
  /** Sessions that never ended (e.g. after a crash) are closed with this reason at startup. */
  closeOrphanSessions(endedAt: number, reason: SessionEndReason): number;
  /**
   * The real end of a session the store missed (the gateway crashed, or its end row never got in),
   * as recovered from its recording; applies while the row is open or closed as `gateway_crashed`.
   */
  reconcileSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): void;
  listSessions(filter?: SessionFilter): SessionRow[];
  /** Runs `writes` as one transaction (all or nothing; one commit for many rows). */
  batch(writes: () => void): void;

  /** The SCRAM salt shared by all tokens of one user on one connection (created on first use). */
  scramSalt(user: string, connection: string): Buffer;
  insertToken(row: TokenRow): void;
  /** Tokens neither expired (expiresAt > now) nor revoked. */
  activeTokens(user: string, connection: string, now: number): TokenRow[];
  revokeToken(id: string, at: number): boolean;

  recordAuthFailure(row: AuthFailureRow): void;
  listAuthFailures(limit?: number): AuthFailureRow[];

  putSecret(row: SecretRow): void;
  getSecret(name: string): SecretRow | undefined;
  listSecrets(): { name: string; updatedAt: number }[];
  deleteSecret(name: string): boolean;

  /** Cheap liveness probe for /readyz. */
  ping(): boolean;
  close(): void;
}
