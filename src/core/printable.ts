/**
 * Untrusted text made safe to print: statement texts, request reasons, result values and user names
 * come from clients, and a raw CR, ESC or bidi override in them can make a terminal show something
 * other than what is there (a held UPDATE that renders as `select 1`). Control characters are shown
 * as visible escapes instead, as psql does: `\r`, `\n`, `\t`, `\x1b` for C0 and DEL, `\u0085` for C1
 * controls and the invisible formatting characters (bidi overrides and isolates, zero-width
 * characters, line and paragraph separators, BOM). A backslash is left alone, so SQL stays readable.
 */

// C0, DEL, C1; bidi marks, embeddings, overrides and isolates; zero-width and separator characters.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
// The same, but newline and tab pass (text laid out in lines, where they are the layout).
// eslint-disable-next-line no-control-regex
const UNSAFE_KEEP_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visible(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Every control and invisible formatting character as a visible escape (one line of text). */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** The same, but keeps newlines and tabs: for whole outputs whose lines the printer laid out. */
export function escapeControlsKeepLayout(text: string): string {
  return text.replace(UNSAFE_KEEP_LAYOUT, visible);
}

/** Default cap of a client-supplied value echoed in an error message. */
export const ECHO_MAX_CHARS = 64;

/**
 * A client-supplied value (a user or database name) fit to echo in an error: control characters
 * escaped, and cut to `max` characters with a note of how long it was, so a 5,000-character name
 * is not sent back whole.
 */
export function echo(value: string, max = ECHO_MAX_CHARS): string {
  const chars = [...value];
  const cut = chars.length > max ? `${chars.slice(0, max).join('')}…(${chars.length} characters)` : value;
  return escapeControls(cut);
}
