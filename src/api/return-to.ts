/**
 * Where a browser may be sent back to after signing in: a path on this gateway, nothing else.
 *
 * Browsers are lenient in ways a prefix check misses: they drop tabs and newlines anywhere in a URL
 * (`/\t/evil.example` becomes `//evil.example`), treat `\` as `/` (`/\evil.example`), and take
 * `https:evil.example` as absolute. So the value is refused outright when it holds a control
 * character, a backslash or whitespace, then resolved with the URL parser against this gateway's
 * origin and kept only if it stays on that origin; what is returned is the parser's own serialisation
 * of path, query and fragment (never the raw input), and never starts with `//`. Anything else: `/`.
 */

/** Any origin works as the base: only "does it stay on the base's origin" is asked. */
const BASE = 'https://gateway.invalid';

// C0 controls, space, DEL, C1 controls, backslash, and the invisible or bidirectional formatting
// characters that make a URL read differently from what it is.
// eslint-disable-next-line no-control-regex
const REFUSED = /[\u0000-\u0020\u007f-\u009f\\\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]/;

export function safeReturnTo(value: string | null | undefined): string {
  if (!value || value.length > 2048 || !value.startsWith('/') || value.startsWith('//') || REFUSED.test(value)) return '/';
  let url: URL;
  try {
    url = new URL(value, BASE);
  } catch {
    return '/';
  }
  if (url.origin !== BASE) return '/';
  const target = `${url.pathname}${url.search}${url.hash}`;
  // `/.//evil` normalises to `//evil`, which a browser reads as another host.
  if (!target.startsWith('/') || target.startsWith('//')) return '/';
  return target;
}
