/**
 * Per-client token buckets for the sign-in endpoints: anyone may start a sign-in, so a flood from
 * one address must not make the gateway talk to the IdP (or fill its login table) without bound.
 * A bucket holds `burst` requests and refills at `perMinute`; an empty bucket answers 429 with
 * Retry-After. Buckets are kept in memory and the map is bounded (oldest forgotten first). With
 * several gateway instances, each bucket is also charged what the others let through.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError, type RouteGuard } from './router.js';

export interface RateLimitOptions {
  /** Requests allowed at once from one address. */
  burst: number;
  /** Sustained requests per minute from one address. */
  perMinute: number;
  now?: () => number;
  /** Addresses tracked at most. */
  maxClients?: number;
  /** Attempts other gateway instances let through, charged here too (instances/usage.ts); absent for a gateway alone. */
  elsewhere?: AttemptsElsewhere;
}

export interface AttemptsElsewhere {
  /** An attempt let through here. */
  add(kind: 'sign_in', key: string, n: number): void;
  /** Calls `fn` with the attempts other instances let through since it last did. */
  onOthers(fn: (kind: string, key: string, n: number) => void): () => void;
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly o: RateLimitOptions) {
    this.now = o.now ?? Date.now;
    o.elsewhere?.onOthers((kind, key, n) => {
      if (kind === 'sign_in') this.charge(key, n);
    });
  }

  /** Takes `n` tokens for attempts another instance let through; the bucket may go below zero, down to one burst owed. */
  private charge(key: string, n: number): void {
    const b = this.refilled(key, this.now());
    b.tokens = Math.max(-this.o.burst, b.tokens - n);
  }

  /** Takes one token for `key`; returns the seconds to wait when there is none. */
  take(key: string): { ok: true } | { ok: false; retryAfterS: number } {
    const b = this.refilled(key, this.now());
    const ratePerMs = this.o.perMinute / 60_000;
    if (b.tokens < 1) return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000)) };
    b.tokens -= 1;
    this.o.elsewhere?.add('sign_in', key, 1);
    return { ok: true };
  }

  /** The bucket of `key`, refilled up to now and made the most recently used. */
  private refilled(key: string, now: number): { tokens: number; at: number } {
    const ratePerMs = this.o.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.o.burst, at: now };
    // A clock that steps back must not drain the bucket.
    b.tokens = Math.min(this.o.burst, b.tokens + Math.max(0, now - b.at) * ratePerMs);
    b.at = now;
    // Re-insert so the map's order is least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > (this.o.maxClients ?? 10_000)) this.buckets.delete(this.buckets.keys().next().value!);
    return b;
  }
}

/** A router guard limiting the routes whose pattern is in `patterns`, per client address. */
export function rateLimitGuard(patterns: readonly string[], limiter: RateLimiter): RouteGuard {
  const limited = new Set(patterns);
  return (req: IncomingMessage, route) => {
    if (!limited.has(route.pattern)) return;
    const r = limiter.take(req.socket.remoteAddress ?? 'unknown');
    if (!r.ok) {
      throw new HttpError(429, 'rate_limited', `too many sign-in attempts from this address; try again in ${r.retryAfterS} s`, {
        'retry-after': String(r.retryAfterS),
      });
    }
  };
}
