/**
 * Masking strategies: what a sensitive value becomes. Pure functions of (value, options); the
 * keyed hash needs the gateway's masking key so equal inputs give equal outputs (joins and
 * GROUP BY still work) without the output revealing the input.
 */
import { createHmac } from 'node:crypto';
import type { MaskStrategy } from '../core/types.js';

/** Defined in core (a session's MaskingScope carries strategies to every protocol's masker). */
export type { MaskStrategy };

export const REDACTED = '[redacted]';

const SURROGATE = /[\uD800-\uDFFF]/;

export interface MaskContext {
  /** Key for the deterministic hash; per gateway, never shown. */
  hashKey: Buffer;
}

/** The masked text, or null for the `null` strategy. */
export function applyStrategy(strategy: MaskStrategy, value: string, ctx: MaskContext): string | null {
  switch (strategy.kind) {
    case 'redact':
      return REDACTED;
    case 'null':
      return null;
    case 'partial':
      return partial(value, strategy.keepLast);
    case 'hash':
      return 'h:' + createHmac('sha256', ctx.hashKey).update(value, 'utf8').digest('hex').slice(0, 16);
    case 'email':
      return maskEmail(value);
    case 'phone':
      return maskDigits(value, 2);
    case 'card':
      return maskDigits(value, 4);
  }
}

/** Keeps the last N characters, replacing the rest with '*' (short values are fully masked). */
export function partial(value: string, keepLast: number): string {
  // Without surrogate pairs a UTF-16 unit is a character: no need to split into code points.
  if (!SURROGATE.test(value)) {
    if (value.length <= keepLast * 2) return '*'.repeat(value.length);
    return '*'.repeat(value.length - keepLast) + value.slice(value.length - keepLast);
  }
  const chars = [...value];
  if (chars.length <= keepLast * 2) return '*'.repeat(chars.length);
  return '*'.repeat(chars.length - keepLast) + chars.slice(chars.length - keepLast).join('');
}

/** `jane.doe@example.com` → `j*******@example.com`: the shape and domain stay, the person does not. */
export function maskEmail(value: string): string {
  const at = value.lastIndexOf('@');
  if (at <= 0) return partial(value, 0);
  const head = value.slice(0, at);
  if (!SURROGATE.test(head)) return head[0] + '*'.repeat(Math.max(head.length - 1, 1)) + value.slice(at);
  const local = [...head];
  return local[0] + '*'.repeat(Math.max(local.length - 1, 1)) + value.slice(at);
}

/** Replaces digits except the last `keep` with 'X', keeping separators: `+1 415-555-0134` → `+X XXX-XXX-XX34`. */
export function maskDigits(value: string, keep: number): string {
  const total = (value.match(/\d/g) ?? []).length;
  let seen = 0;
  return value.replace(/\d/g, (d) => (++seen > total - keep ? d : 'X'));
}
