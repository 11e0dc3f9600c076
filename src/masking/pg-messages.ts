/**
 * Which PostgreSQL error and notice texts provably quote nothing but the statement's own text.
 *
 * A statement that reads a masked column anywhere (select list, WHERE, a function argument) can make
 * the server quote a value in its error: `relation "<value>" does not exist` from a regclass cast,
 * `requested character too large for encoding: <digits>` from chr(), a DETAIL naming a key. Pattern
 * scrubbing cannot know every such message, so for those statements every text field is replaced,
 * except a message that matches one of the templates below with each variable part found verbatim
 * in the statement the client sent (what the client wrote, it already knows). Everything else is
 * hidden; the SQLSTATE and severity always stay.
 */

/**
 * Templates of common messages. `%s` is a variable part that must appear in the statement; `%n` is
 * one PostgreSQL only ever fills with a catalog object's name (a constraint, the table a constraint
 * belongs to), never with a value, so it is kept as it is.
 */
const TEMPLATES = [
  'syntax error at or near "%s"',
  'syntax error at end of input',
  'column "%s" does not exist',
  'column %s does not exist',
  'column "%s" of relation "%s" does not exist',
  'relation "%s" does not exist',
  'schema "%s" does not exist',
  'function %s does not exist',
  'column reference "%s" is ambiguous',
  'missing FROM-clause entry for table "%s"',
  'permission denied for table %s',
  'permission denied for view %s',
  'permission denied for schema %s',
  'permission denied for sequence %s',
  'permission denied for function %s',
  'division by zero',
  'integer out of range',
  'bigint out of range',
  'smallint out of range',
  'numeric field overflow',
  'current transaction is aborted, commands ignored until end of transaction block',
  'canceling statement due to user request',
  'canceling statement due to statement timeout',
  'canceling statement due to lock timeout',
  'could not serialize access due to concurrent update',
  'could not serialize access due to read/write dependencies among transactions',
  'deadlock detected',
  'there is no transaction in progress',
  'there is already a transaction in progress',
  'cursor "%s" does not exist',
  'prepared statement "%s" does not exist',
  'prepared statement "%s" already exists',
  'portal "%s" does not exist',
  'table "%s" does not exist, skipping',
  'relation "%s" already exists',
  'relation "%s" already exists, skipping',
  'subquery in FROM must have an alias',
  'more than one row returned by a subquery used as an expression',
  'aggregate functions are not allowed in WHERE',
  'set-returning functions are not allowed in WHERE',
  'argument of WHERE must be type boolean, not type %s',
  'each UNION query must have the same number of columns',
  'INSERT has more expressions than target columns',
  'INSERT has more target columns than expressions',
  'duplicate key value violates unique constraint "%n"',
  'null value in column "%n" of relation "%n" violates not-null constraint',
  'new row for relation "%n" violates check constraint "%n"',
  'insert or update on table "%n" violates foreign key constraint "%n"',
  'update or delete on table "%n" violates foreign key constraint "%n" on table "%n"',
  'conflicting key value violates exclusion constraint "%n"',
  'value too long for type character varying(%n)',
  'value too long for type character(%n)',
  'invalid input syntax for type %n: "%s"',
  'value out of range: overflow',
  'value out of range: underflow',
  'cannot insert a non-DEFAULT value into column "%n"',
  'column "%n" is of type %n but expression is of type %n',
  'cannot cast type %n to %n',
  'could not determine data type of parameter $%n',
  // A Parse of several statements: refused before anything runs (masking cannot plan it either).
  'cannot insert multiple commands into a prepared statement',
];

/** Hints that are fixed texts. */
const FIXED_HINTS = new Set([
  'No function matches the given name and argument types. You might need to add explicit type casts.',
  'No operator matches the given name and argument types. You might need to add explicit type casts.',
  'Could not choose a best candidate function. You might need to add explicit type casts.',
  'Could not choose a best candidate operator. You might need to add explicit type casts.',
]);

/** Each template as a regular expression; `%s` parts are captured (they must be checked), `%n` not. */
const COMPILED = TEMPLATES.map(
  (t) =>
    new RegExp(
      '^' +
        t
          .split(/(%[sn])/)
          .map((p) => (p === '%s' ? '(.+?)' : p === '%n' ? '(?:[^"]+)' : escapeRegExp(p)))
          .join('') +
        '$',
      's',
    ),
);

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether `message` matches a template whose every variable part appears in `statement` as a whole
 * token (case-insensitive). A message quoting a value the statement only read is never kept.
 */
export function quotesOnlyStatement(message: string, statement: string | undefined): boolean {
  for (const re of COMPILED) {
    const m = re.exec(message);
    if (!m) continue;
    const parts = m.slice(1);
    // A fixed text quotes nothing, whichever statement (if any is known) it answers.
    if (parts.length === 0) return true;
    if (statement && parts.every((part) => part !== '' && containsToken(statement, part))) return true;
  }
  return false;
}

/**
 * `part` occurs in `text` as a whole token (not inside a longer word): a one-letter value such as
 * "F" must not pass because the statement says FROM.
 */
function containsToken(text: string, part: string): boolean {
  return new RegExp(`(?:^|[^\\p{L}\\p{N}_$])${escapeRegExp(part)}(?:$|[^\\p{L}\\p{N}_$])`, 'iu').test(text);
}

/** A HINT that is one of PostgreSQL's fixed texts (quotes nothing). */
export function isFixedHint(hint: string): boolean {
  return FIXED_HINTS.has(hint);
}
