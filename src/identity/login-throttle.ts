/**
 * Failed logins on the data listeners (PostgreSQL, MySQL, Redis), throttled and summarised.
 *
 * Throttling never locks out a valid token: it acts only on failures. A login is always checked; a
 * correct token always gets in. A failure counts against its source address and its user name;
 * once either has failed more than its threshold (without a success in between, and within
 * `forgetAfterMs` of the last failure), the failure is answered late (exponential backoff from
 * `baseDelayMs`, capped at `maxDelayMs`) and with the protocol's own "too many failed logins"
 * error instead of the ordinary one. Per source first: one address guessing at many names is slowed
 * at once; many addresses guessing at one name are slowed by the per-user count, while that user,
 * presenting a valid token, still gets in.
 *
 * The audit log gets one `login.failed` entry per failure until throttling starts for that source;
 * after that, the source's failures are counted and summarised once per window (`windowMs`) in a
 * single `login.failed.repeated` entry (count, user names, protocols, reasons), so an attack of
 * thousands of attempts adds a handful of entries, not thousands.
 *
 * Memory is bounded: at most `maxTracked` sources and user names are remembered (the oldest are
 * forgotten first).
 */
import type { Clock } from '../core/clock.js';
import { echo } from '../core/printable.js';

export interface LoginThrottleOptions {
  /** Failures a source address may have before throttling starts (default 10). */
  sourceThreshold: number;
  /** Failures a user name may have, from anywhere, before throttling starts (default 10). */
  userThreshold: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A count is forgotten this long after its last failure (default 15 minutes). */
  forgetAfterMs: number;
  /** Throttled failures of a source are summarised once per window (default 1 minute). */
  windowMs: number;
  maxTracked: number;
}

export const LOGIN_THROTTLE_DEFAULTS: LoginThrottleOptions = {
  sourceThreshold: 10,
  userThreshold: 10,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  forgetAfterMs: 15 * 60_000,
  windowMs: 60_000,
  maxTracked: 100_000,
};

export interface FailedLogin {
  protocol: string;
  user: string;
  connection: string;
  clientAddress: string;
  reason: string;
}

export interface FailureVerdict {
  /** Answer with the "too many failed logins" error (not the ordinary one). */
  throttled: boolean;
  /** Wait this long before answering. */
  delayMs: number;
  /** Write this failure to the audit log on its own (false: it is in a later summary). */
  auditEach: boolean;
}

/** One `login.failed.repeated` audit entry's data. */
export interface FailureSummary {
  clientAddress: string;
  count: number;
  from: number;
  to: number;
  users: string[];
  moreUsers: number;
  protocols: string[];
  connections: string[];
  reasons: string[];
}

interface Count {
  failures: number;
  lastAt: number;
}

interface Window {
  from: number;
  to: number;
  count: number;
  users: Set<string>;
  moreUsers: number;
  protocols: Set<string>;
  connections: Set<string>;
  reasons: Set<string>;
  cancel: () => void;
}

const MAX_LISTED = 10;

export class LoginThrottle {
  private readonly o: LoginThrottleOptions;
  private readonly sources = new Map<string, Count>();
  private readonly users = new Map<string, Count>();
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly clock: Clock,
    private readonly summarise: (summary: FailureSummary) => void,
    options: Partial<LoginThrottleOptions> = {},
  ) {
    this.o = { ...LOGIN_THROTTLE_DEFAULTS, ...options };
  }

  failed(f: FailedLogin): FailureVerdict {
    const now = this.clock.now();
    const source = this.bump(this.sources, f.clientAddress, now);
    const user = this.bump(this.users, f.user, now);
    const over = Math.max(source.failures - this.o.sourceThreshold, user.failures - this.o.userThreshold);
    if (over <= 0) return { throttled: false, delayMs: 0, auditEach: true };
    const delayMs = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over - 1, 30));
    this.count(f, now);
    return { throttled: true, delayMs, auditEach: false };
  }

  /** A login that succeeded: its source and user start afresh. */
  succeeded(clientAddress: string, user: string): void {
    this.sources.delete(clientAddress);
    this.users.delete(user);
  }

  /** Write every open summary now (at shutdown). */
  close(): void {
    for (const key of [...this.windows.keys()]) this.flush(key);
  }

  private bump(map: Map<string, Count>, key: string, now: number): Count {
    let c = map.get(key);
    if (c && now - c.lastAt > this.o.forgetAfterMs) c = undefined;
    if (!c) {
      if (map.size >= this.o.maxTracked) map.delete(map.keys().next().value!);
      c = { failures: 0, lastAt: now };
    }
    map.delete(key); // re-insert: the map's order is least recently failed first
    c.failures++;
    c.lastAt = now;
    map.set(key, c);
    return c;
  }

  private count(f: FailedLogin, now: number): void {
    let w = this.windows.get(f.clientAddress);
    if (!w) {
      const key = f.clientAddress;
      w = {
        from: now,
        to: now,
        count: 0,
        users: new Set(),
        moreUsers: 0,
        protocols: new Set(),
        connections: new Set(),
        reasons: new Set(),
        cancel: this.clock.at(now + this.o.windowMs, () => this.flush(key)),
      };
      this.windows.set(key, w);
    }
    w.count++;
    w.to = now;
    // Names come from clients: capped and escaped, and only the first few are kept.
    const user = echo(f.user);
    if (w.users.has(user)) {
      // already listed
    } else if (w.users.size < MAX_LISTED) w.users.add(user);
    else w.moreUsers++;
    w.protocols.add(f.protocol);
    if (w.connections.size < MAX_LISTED) w.connections.add(echo(f.connection));
    w.reasons.add(f.reason);
  }

  private flush(key: string): void {
    const w = this.windows.get(key);
    if (!w) return;
    this.windows.delete(key);
    w.cancel();
    this.summarise({
      clientAddress: key,
      count: w.count,
      from: w.from,
      to: w.to,
      users: [...w.users],
      moreUsers: w.moreUsers,
      protocols: [...w.protocols],
      connections: [...w.connections],
      reasons: [...w.reasons],
    });
  }
}
