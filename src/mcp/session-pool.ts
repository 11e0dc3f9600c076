/**
 * What the agent session classes (PostgreSQL, MySQL, Redis) share: one open connection per
 * (agent, connection) reused between calls, replaced when the gateway has ended it (grant expired,
 * revoked, killed), closed after a quiet spell; and the statements held for review whose outcome an
 * agent collects later with query_result.
 */
import type { Identity } from '../core/types.js';
import type { QueryOutcome } from './data-sessions.js';

export interface PooledConnection {
  /** A call is using it (one statement at a time per session). */
  busy: boolean;
  /** Still able to run statements (false once the gateway or the network ended it). */
  usable(): boolean;
  close(): void;
}

export class SessionPool<C extends PooledConnection> {
  private readonly open = new Map<string, Promise<C>>();
  private readonly idle = new Map<string, NodeJS.Timeout>();
  private shutDown = false;

  constructor(
    private readonly connect: (who: Identity, connection: string) => Promise<C>,
    private readonly idleMs: number,
  ) {}

  /** The agent's session on `connection`, opened (or reopened) when needed. */
  async get(who: Identity, connection: string): Promise<C> {
    if (this.shutDown) throw new Error('the gateway is shutting down');
    const key = keyOf(who.user, connection);
    let existing = this.open.get(key);
    if (existing && !(await existing.catch(() => undefined))?.usable()) {
      this.forget(key);
      existing = undefined;
    }
    if (!existing) {
      existing = this.connect(who, connection);
      this.open.set(key, existing);
      existing.catch(() => this.open.get(key) === existing && this.open.delete(key));
    }
    clearTimeout(this.idle.get(key));
    return existing;
  }

  /** The call is done with the session: it closes after `idleMs` unless used again. */
  release(who: Identity, connection: string, conn: C): void {
    conn.busy = false;
    const key = keyOf(who.user, connection);
    clearTimeout(this.idle.get(key));
    const timer = setTimeout(() => {
      if (conn.busy) return;
      this.forget(key);
      conn.close();
    }, this.idleMs);
    timer.unref();
    this.idle.set(key, timer);
  }

  async close(): Promise<void> {
    this.shutDown = true;
    const all = [...this.open.values()];
    for (const t of this.idle.values()) clearTimeout(t);
    this.open.clear();
    this.idle.clear();
    for (const p of all) (await p.catch(() => undefined))?.close();
  }

  private forget(key: string): void {
    clearTimeout(this.idle.get(key));
    this.idle.delete(key);
    this.open.delete(key);
  }
}

interface Held {
  reviewId: string;
  user: string;
  connection: string;
  outcome: Promise<QueryOutcome>;
  settled?: QueryOutcome;
}

/** Statements held for review, by review id, until their agent collects the outcome. */
export class HeldStatements {
  private readonly held = new Map<string, Held>();

  add(who: Identity, connection: string, reviewId: string, outcome: Promise<QueryOutcome>): void {
    const held: Held = { reviewId, user: who.user, connection, outcome };
    void outcome.then((o) => (held.settled = o));
    this.held.set(reviewId, held);
  }

  /** The review a still-undecided statement of the agent on `connection` waits for, if any. */
  waitingOn(who: Identity, connection: string): string | undefined {
    return [...this.held.values()].find((h) => h.user === who.user && h.connection === connection && !h.settled)?.reviewId;
  }

  /**
   * The outcome of a held statement (the id or a prefix of it), waiting up to `waitMs` for the
   * decision. Undefined when no such statement of this agent is held here.
   */
  async result(who: Identity, reviewId: string, waitMs: number): Promise<QueryOutcome | undefined> {
    const held = [...this.held.values()].find(
      (h) => h.user === who.user && (h.reviewId.startsWith(reviewId) || reviewId.startsWith(h.reviewId)),
    );
    if (!held) return undefined;
    const outcome = held.settled ?? (await Promise.race([held.outcome, delay(waitMs).then(() => undefined)]));
    if (!outcome)
      return { status: 'waiting_for_approval', reviewId: held.reviewId, message: 'the statement is still waiting for approval' };
    this.held.delete(held.reviewId);
    return outcome;
  }

  clear(): void {
    this.held.clear();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function keyOf(user: string, connection: string): string {
  return `${user}\u0000${connection}`;
}
