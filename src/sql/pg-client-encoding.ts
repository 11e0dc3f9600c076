/**
 * Client encodings in which a multi-byte character's later bytes can be ASCII (a backslash, say):
 * SJIS, BIG5, GBK, GB18030, UHC, JOHAB and their aliases. The gateway reads statement text as
 * UTF-8; with one of these the server would split the same bytes into characters differently, and a
 * string literal could end where the gateway's parse says it does not. Sessions may not use them.
 */
const UNSAFE = new Set([
  'sjis',
  'shiftjis',
  'shiftjis2004',
  'mskanji',
  'win932',
  'windows932',
  'cp932',
  'big5',
  'win950',
  'windows950',
  'cp950',
  'gbk',
  'win936',
  'windows936',
  'cp936',
  'gb18030',
  'uhc',
  'win949',
  'windows949',
  'cp949',
  'johab',
]);

/** Whether PostgreSQL would take this client encoding name as one the gateway cannot read safely. */
export function unsafeClientEncoding(name: string): boolean {
  // PostgreSQL compares encoding names ignoring case and non-alphanumerics.
  return UNSAFE.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}
