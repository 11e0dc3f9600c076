/**
 * Content detectors: find sensitive values inside any text, wherever it travels (a free-text column,
 * a JSON document, an error message). Each match is checked beyond its shape where a checksum
 * exists (Luhn for cards, mod-97 for IBANs), so ordinary numbers are not masked by accident.
 */
import { isIP } from 'node:net';
import type { DetectorName } from '../core/types.js';

/** Defined in core (a session's MaskingScope names the detectors every protocol's masker runs). */
export type { DetectorName };

export const ALL_DETECTORS: readonly DetectorName[] = ['email', 'card', 'iban', 'ssn', 'phone', 'ip', 'jwt', 'cloud_key', 'private_key'];

export interface Finding {
  detector: DetectorName;
  start: number;
  end: number;
}

interface Detector {
  name: DetectorName;
  pattern: RegExp;
  valid?: (match: string) => boolean;
}

const DETECTORS: Detector[] = [
  { name: 'private_key', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)/g },
  { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g },
  {
    name: 'cloud_key',
    // AWS access key ids, Google API keys, GitHub and Slack tokens, Azure storage account keys.
    pattern:
      /\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abposr]-[A-Za-z0-9-]{10,}|AccountKey=[A-Za-z0-9+/=]{40,})/g,
  },
  { name: 'email', pattern: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  { name: 'iban', pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g, valid: ibanValid },
  { name: 'card', pattern: /\b\d(?:[ -]?\d){12,18}\b/g, valid: (m) => luhnValid(m.replace(/\D/g, '')) },
  { name: 'ssn', pattern: /\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g },
  {
    name: 'ip',
    pattern: /\b(?:\d{1,3}\.){3}\d{1,3}\b|(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])/g,
    valid: (m) => isIP(m) !== 0,
  },
  { name: 'phone', pattern: /(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w)/g, valid: phoneLike },
];

/** Every finding in `text` for the enabled detectors, non-overlapping, earliest and longest first. */
export function detect(text: string, enabled: readonly DetectorName[] = ALL_DETECTORS): Finding[] {
  const found: Finding[] = [];
  for (const d of DETECTORS) {
    if (!enabled.includes(d.name)) continue;
    d.pattern.lastIndex = 0;
    for (const m of text.matchAll(d.pattern)) {
      if (d.valid && !d.valid(m[0])) continue;
      found.push({ detector: d.name, start: m.index, end: m.index + m[0].length });
    }
  }
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Finding[] = [];
  for (const f of found) {
    const last = kept[kept.length - 1];
    if (last && f.start < last.end) continue;
    kept.push(f);
  }
  return kept;
}

/** `text` with each finding replaced by `[<detector>]`, and what was found. */
export function redactFindings(text: string, enabled?: readonly DetectorName[]): { text: string; findings: Finding[] } {
  const findings = detect(text, enabled);
  if (findings.length === 0) return { text, findings };
  let out = '';
  let pos = 0;
  for (const f of findings) {
    out += text.slice(pos, f.start) + `[${f.detector}]`;
    pos = f.end;
  }
  return { text: out + text.slice(pos), findings };
}

/** Luhn (mod 10) check of a card number's digits (12 to 19 of them, as ISO/IEC 7812 allows). */
export function luhnValid(digits: string): boolean {
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function ibanValid(text: string): boolean {
  const iban = text.replace(/ /g, '');
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? String(code - 55) : ch;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

/** 7 to 15 digits (E.164) written like a phone number, not like a date. */
function phoneLike(m: string): boolean {
  const digits = m.replace(/\D/g, '');
  if (digits.length < 7 || digits.length > 15) return false;
  // Dates and timestamps (2026-11-28, 2026-11-28 04:21) are not phone numbers.
  if (/^\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?$/.test(m)) return false;
  // Two groups only ("555 0134") is too weak on its own without a country or area code.
  return m.startsWith('+') || m.includes('(') || m.split(/[ .-]/).length >= 3;
}
