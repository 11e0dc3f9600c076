/**
 * Quoting for the SQL the gateway sends to PostgreSQL as an administrator (CREATE ROLE, DROP ROLE,
 * ...). Utility statements take no bind parameters, so names and values must be spelled into the
 * text; these two functions are the only way they get there.
 *
 * Both refuse what they cannot represent faithfully instead of altering it: a NUL byte (PostgreSQL
 * text cannot hold one, and libpq would cut the string there) and, for identifiers, anything longer
 * than PostgreSQL's 63-byte limit, which the server would silently truncate into a different name.
 */

/** NAMEDATALEN - 1: the longest identifier PostgreSQL keeps without truncating. */
export const MAX_IDENTIFIER_BYTES = 63;

export class QuoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuoteError';
  }
}

/** A double-quoted identifier: `"` doubled, always quoted (so case and keywords are kept as given). */
export function quoteIdent(name: string): string {
  if (name === '') throw new QuoteError('an identifier cannot be empty');
  if (name.includes('\0')) throw new QuoteError('an identifier cannot contain a NUL byte');
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new QuoteError(`an identifier cannot be longer than ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A string literal that means the same whatever `standard_conforming_strings` is set to, as libpq's
 * PQescapeLiteral does: `'` doubled, and when a backslash is present the E'' form with backslashes
 * doubled (a plain '' literal would treat them as escapes when the setting is off).
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new QuoteError('a string literal cannot contain a NUL byte');
  const body = value.replaceAll("'", "''");
  if (!value.includes('\\')) return `'${body}'`;
  return `E'${body.replaceAll('\\', '\\\\')}'`;
}
