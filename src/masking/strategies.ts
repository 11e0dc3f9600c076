/**
 * Masking strategies: what a sensitive value becomes. Pure functions of (value, options); the
 * keyed hash needs the gateway's masking key so equal inputs give equal outputs (joins and
 * GROUP BY still work) without the output revealing the input.
 */
import { createHmac } from 'node:crypto';
import { copyBytes, fillBytes } from '../core/bytes.js';
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

/**
 * A strategy applied to a value's bytes, for protocols that carry text as bytes (PostgreSQL
 * DataRows): the masked value is written straight into the outgoing row, with no string made of
 * the value or of the result. Only for ASCII values, where a byte is a character in every client
 * encoding; `length` answers -1 for any other value, which is then masked as text (applyStrategy).
 * Byte for byte the same output as applyStrategy.
 */
export interface ByteMask {
  /** The masked value's length in bytes, or -1 when src[from, to) is not all ASCII. */
  length(src: Buffer, from: number, to: number): number;
  /** Writes the masked value of src[from, to) (an ASCII value) at `at`; returns its length. */
  write(src: Buffer, from: number, to: number, out: Buffer, at: number): number;
}

const STAR = 0x2a;
const AT_SIGN = 0x40;
const X = 0x58;
const REDACTED_BYTES = Buffer.from(REDACTED);

/** Where the last '@' of src[from, to) is, relative to `from`; -1 if none. */
function lastAtSign(src: Buffer, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (src[i] === AT_SIGN) return i - from;
  return -1;
}

function isAscii(src: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (src[i]! > 0x7f) return false;
  return true;
}

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;

/** As `partial`: keeps the last N bytes, '*' for the rest; all '*' when at most 2N long. */
class PartialBytes implements ByteMask {
  constructor(private readonly keepLast: number) {}
  length(src: Buffer, from: number, to: number): number {
    return isAscii(src, from, to) ? to - from : -1;
  }
  write(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
    const n = to - from;
    const keep = n <= this.keepLast * 2 ? 0 : this.keepLast;
    fillBytes(out, STAR, at, at + n - keep);
    if (keep > 0) copyBytes(src, to - keep, to, out, at + n - keep);
    return n;
  }
}

/** As `maskEmail`: the first character of the local part, '*' for the rest of it, the domain as is. */
class EmailBytes implements ByteMask {
  length(src: Buffer, from: number, to: number): number {
    if (!isAscii(src, from, to)) return -1;
    const at = lastAtSign(src, from, to);
    // No '@', or nothing before it: all of it masked.
    if (at <= 0) return to - from;
    return 1 + Math.max(at - 1, 1) + (to - from - at);
  }
  write(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
    const sign = lastAtSign(src, from, to);
    const n = to - from;
    if (sign <= 0) {
      fillBytes(out, STAR, at, at + n);
      return n;
    }
    out[at] = src[from]!;
    const stars = Math.max(sign - 1, 1);
    fillBytes(out, STAR, at + 1, at + 1 + stars);
    copyBytes(src, from + sign, to, out, at + 1 + stars);
    return 1 + stars + n - sign;
  }
}

/** As `maskDigits`: every digit but the last `keep` becomes 'X', other characters stay. */
class DigitBytes implements ByteMask {
  constructor(private readonly keep: number) {}
  length(src: Buffer, from: number, to: number): number {
    return isAscii(src, from, to) ? to - from : -1;
  }
  write(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
    let digits = 0;
    for (let i = from; i < to; i++) if (isDigit(src[i]!)) digits++;
    let seen = 0;
    for (let i = from; i < to; i++) {
      const b = src[i]!;
      out[at + i - from] = isDigit(b) && ++seen <= digits - this.keep ? X : b;
    }
    return to - from;
  }
}

/** As `redact`: the same text whatever the value. */
const REDACT_BYTES: ByteMask = {
  length: () => REDACTED_BYTES.length,
  write: (_src, _from, _to, out, at) => REDACTED_BYTES.copy(out, at),
};

/** The byte-level form of a strategy, where it has one (not for `hash` and `null`). */
export function byteMaskFor(strategy: MaskStrategy): ByteMask | undefined {
  switch (strategy.kind) {
    case 'redact':
      return REDACT_BYTES;
    case 'partial':
      return new PartialBytes(strategy.keepLast);
    case 'email':
      return new EmailBytes();
    case 'phone':
      return new DigitBytes(2);
    case 'card':
      return new DigitBytes(4);
    case 'hash':
    case 'null':
      return undefined;
  }
}
