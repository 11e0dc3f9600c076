/**
 * Commands and replies as redis-cli shows them, for recordings and replay: arguments quoted when
 * they need it, replies as `"value"`, `(integer) 1`, `(nil)`, `(error) ERR ...`, numbered nested
 * lists. Sizes are bounded: long values are cut with a note of their full length, long lists after
 * a number of items.
 */
import type { RespValue } from './resp.js';

/** Most bytes of one argument or value shown. */
export const DISPLAY_VALUE_BYTES = 4096;
/** Most items of one list shown. */
export const DISPLAY_ITEMS = 200;

export function formatCommand(args: readonly Buffer[]): string {
  const secret = secretArgs(args);
  return args.map((a, i) => (secret.has(i) ? '(redacted)' : quoteArg(a, i === 0))).join(' ');
}

/**
 * Positions of arguments that are passwords or tokens, never shown: AUTH's, HELLO ... AUTH's,
 * MIGRATE's AUTH/AUTH2, ACL SETUSER's >password and #hash rules, CONFIG SET of *pass* settings.
 */
export function secretArgs(args: readonly Buffer[]): Set<number> {
  const lower = (i: number) => args[i]?.toString('latin1').toLowerCase() ?? '';
  const out = new Set<number>();
  const name = lower(0);
  if (name === 'auth') {
    for (let i = 1; i < args.length; i++) if (i === args.length - 1) out.add(i);
  } else if (name === 'hello' || name === 'migrate') {
    for (let i = 1; i < args.length; i++) {
      if (lower(i) === 'auth') out.add(i + (name === 'hello' ? 2 : 1));
      if (lower(i) === 'auth2') out.add(i + 2);
    }
  } else if (name === 'acl' && lower(1) === 'setuser') {
    for (let i = 3; i < args.length; i++) if (/^[>#<!]/.test(lower(i))) out.add(i);
  } else if (name === 'config' && lower(1) === 'set') {
    for (let i = 2; i + 1 < args.length; i += 2) if (/pass|auth/.test(lower(i))) out.add(i + 1);
  }
  return out;
}

function quoteArg(a: Buffer, isName: boolean): string {
  const shown = a.length > DISPLAY_VALUE_BYTES ? a.subarray(0, DISPLAY_VALUE_BYTES) : a;
  const text = shown.toString('utf8');
  const plain = text.length > 0 && /^[\x21-\x7e]+$/.test(text) && !/["'\\]/.test(text);
  const out = plain ? (isName ? text.toUpperCase() : text) : quote(shown);
  return a.length > DISPLAY_VALUE_BYTES ? `${out}...(${a.length} bytes)` : out;
}

/** A value in double quotes with redis-cli's escapes (\n, \r, \t, \", \\, \xHH for other bytes). */
export function quote(b: Buffer): string {
  const text = b.toString('utf8');
  const valid = Buffer.byteLength(text) === b.length && !text.includes('\uFFFD');
  let out = '"';
  if (valid) {
    for (const ch of text) out += escapeChar(ch);
  } else {
    for (const byte of b)
      out += byte >= 0x20 && byte < 0x7f ? escapeChar(String.fromCharCode(byte)) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out + '"';
}

function escapeChar(ch: string): string {
  switch (ch) {
    case '"':
      return '\\"';
    case '\\':
      return '\\\\';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
    default: {
      const c = ch.codePointAt(0)!;
      return c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
    }
  }
}

export function formatReply(v: RespValue): string {
  return lines(v, '').join('\n');
}

function scalar(v: RespValue): string | undefined {
  switch (v.type) {
    case 'simple':
      return v.text;
    case 'error':
      return `(error) ${v.text}`;
    case 'bloberror':
      return `(error) ${v.data.toString('utf8')}`;
    case 'integer':
      return `(integer) ${v.text}`;
    case 'null':
      return '(nil)';
    case 'double':
      return `(double) ${v.text}`;
    case 'boolean':
      return v.value ? '(true)' : '(false)';
    case 'bignum':
      return `(big number) ${v.text}`;
    case 'bulk':
      if (v.data === null) return '(nil)';
      return quote(v.data) + (v.cut !== undefined ? `...(${v.cut} bytes)` : '');
    case 'verbatim':
      return quote(v.data) + (v.cut !== undefined ? `...(${v.cut} bytes)` : '');
    default:
      return undefined;
  }
}

function lines(v: RespValue, indent: string): string[] {
  const s = scalar(v);
  if (s !== undefined) return [s];
  const agg = v as Extract<RespValue, { items: RespValue[] | null }>;
  if (agg.items === null) return ['(nil)'];
  if (agg.count === 0) return [agg.type === 'map' ? '(empty hash)' : agg.type === 'set' ? '(empty set)' : '(empty array)'];
  const out: string[] = [];
  const width = String(agg.type === 'map' ? agg.count : agg.count).length;
  const items = agg.items;
  const step = agg.type === 'map' ? 2 : 1;
  const mark = agg.type === 'map' ? '#' : agg.type === 'set' ? '~' : ')';
  let shown = 0;
  for (let i = 0; i < items.length && shown < DISPLAY_ITEMS; i += step, shown++) {
    const label = `${String(shown + 1).padStart(width)}${mark} `;
    const inner = indent + ' '.repeat(label.length);
    let body: string[];
    if (step === 2) {
      const key = lines(items[i]!, inner);
      const value = items[i + 1] ? lines(items[i + 1]!, inner) : ['(missing)'];
      body = [`${key.join('\n')} => ${value[0]}`, ...value.slice(1)];
    } else body = lines(items[i]!, inner);
    out.push((out.length ? indent : '') + label + body[0], ...body.slice(1).map((l) => l));
  }
  const total = agg.count;
  if (shown < total) out.push(`${indent}... (${total - shown} more)`);
  return out;
}
