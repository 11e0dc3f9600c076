/**
 * Password literals out of statement texts before they are recorded. The relay never gives the
 * pipeline a login secret, but a person can still type one into SQL: `ALTER ROLE x PASSWORD '...'`
 * (psql's \password sends exactly that, with a SCRAM verifier), `CREATE USER ... PASSWORD`,
 * `CREATE USER MAPPING ... OPTIONS (password '...')`, or a libpq connection string
 * (`dblink_connect('... password=...')`). Redaction only ever removes text, so a false positive
 * costs a few characters of evidence, never a leak.
 */

const REDACTED = "'[redacted]'";

/** `password=''x y''`: a quoted conninfo value inside a SQL string literal (its quotes doubled). */
const CONNINFO_QUOTED = /\b(password\s*=\s*)''(?:[^']|'''')*''/gi;
/** `PASSWORD 'x'` / `ENCRYPTED PASSWORD E'x'` / `password $$x$$` (roles, user mappings, options). */
const PASSWORD_LITERAL = /\b(password)(\s+|\s*=\s*)(?:[eE]?'(?:[^']|'')*'|\$([A-Za-z_]*)\$[\s\S]*?\$\3\$)/gi;
/** `password=x` inside a connection string (a bare word), unless already redacted above. */
const CONNINFO_BARE = /\b(password\s*=\s*)(?!'\[redacted\]'|\[redacted\])[^\s']+/gi;

export interface Redacted {
  text: string;
  redacted: boolean;
}

export function redactStatement(text: string): Redacted {
  // Cheap exit for the usual statement: no word "password" at all.
  if (!/password/i.test(text)) return { text, redacted: false };
  let out = text.replace(CONNINFO_QUOTED, (_m, prefix: string) => `${prefix}[redacted]`);
  out = out.replace(PASSWORD_LITERAL, (_m, word: string, sep: string) => `${word}${sep}${REDACTED}`);
  out = out.replace(CONNINFO_BARE, (_m, prefix: string) => `${prefix}[redacted]`);
  return { text: out, redacted: out !== text };
}
