/**
 * The statement text as a MySQL or MariaDB server reads it, for node-sql-parser to analyse: the
 * grammar's own lexer differs from the server's in ways that hide code from the analysis.
 *
 * - Executable comments: the server runs what is inside `/*! … *\/` and (MariaDB) `/*M! … *\/`;
 *   a version-gated one (`/*!50001 …`, `/*M!100101 …`) only when the server is at least that
 *   version (MariaDB ignores plain `/*!` comments for MySQL 5.7–9.x versions, 50700–99999, and
 *   MySQL does not know `/*M!` at all). They are expanded here, or dropped, exactly as the server
 *   would; when the server is not known, every reading a server could have is returned, and
 *   callers analyse all of them (a rule that refuses any reading refuses the statement).
 * - Comments (`/* *\/`, `#`, `-- ` with a space or control character after the dashes) become a
 *   space; `--` followed by anything else is two minus signs (`1--1` is 2 for the server, a
 *   comment for the grammar).
 * - String literals are re-emitted in one canonical form (single quotes, backslash escapes), so
 *   the grammar sees the same boundaries the server does under either NO_BACKSLASH_ESCAPES
 *   setting; double-quoted text is a string, or an identifier under ANSI_QUOTES.
 *
 * What the server would refuse or read ambiguously (an unterminated string or comment, a comment
 * nested inside an executable comment) is an error: the caller refuses where a rule applies.
 */

export interface MysqlDialect {
  /** MariaDB (its executable-comment rules) or MySQL. */
  mariadb: boolean;
  /** The server version as MySQL numbers it: 10.11.6 = 101106, 8.0.36 = 80036. */
  version: number;
  /** sql_mode NO_BACKSLASH_ESCAPES: the server tells it in every OK packet's status. */
  noBackslashEscapes: boolean;
  /** sql_mode ANSI_QUOTES; unknown (undefined) gives both readings of double-quoted text. */
  ansiQuotes?: boolean;
}

/** Parses a server version string (`5.5.5-10.11.6-MariaDB-log`, `8.0.36`) into a dialect's flavour and number. */
export function dialectOf(serverVersion: string): Pick<MysqlDialect, 'mariadb' | 'version'> {
  const mariadb = /mariadb/i.test(serverVersion);
  const text = serverVersion.replace(/^5\.5\.5-/, '');
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(text);
  const version = m ? Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]) : 0;
  return { mariadb, version };
}

export type ServerTexts = { ok: true; texts: string[] } | { ok: false; error: string };

interface Reading {
  mariadb: boolean;
  version: number;
  backslash: boolean;
  ansi: boolean;
}

interface Features {
  versions: Set<number>;
  backslashInString: boolean;
  doubleQuote: boolean;
  executable: boolean;
}

/** Readings beyond this many are refused (each is analysed): a statement built to explode them is not ordinary. */
const MAX_READINGS = 16;
/** Oldest servers jitgate connects to (protocol features it needs: MySQL 5.7.5, MariaDB 10.2). */
const OLDEST = { mysql: 50705, mariadb: 100200 };
const NEWEST = 999999;

/**
 * Every distinct text the server could run for `sql` under the dialect (exactly one when the
 * dialect is fully known), or an error when the server's reading cannot be followed.
 */
export function serverTexts(sql: string, dialect?: Partial<MysqlDialect>): ServerTexts {
  const flavours = dialect?.mariadb === undefined ? [true, false] : [dialect.mariadb];
  const probe = lex(sql, {
    mariadb: flavours[0]!,
    version: dialect?.version ?? NEWEST,
    backslash: !(dialect?.noBackslashEscapes ?? false),
    ansi: dialect?.ansiQuotes ?? false,
  });
  if (!probe.ok && !probe.features) return { ok: false, error: probe.error };
  const f = probe.features!;
  if (!f.executable && !f.doubleQuote && !f.backslashInString)
    return probe.ok ? { ok: true, texts: [probe.text] } : { ok: false, error: probe.error };

  const backslashes =
    dialect?.noBackslashEscapes !== undefined ? [!dialect.noBackslashEscapes] : f.backslashInString ? [true, false] : [true];
  const ansis = dialect?.ansiQuotes !== undefined ? [dialect.ansiQuotes] : f.doubleQuote ? [false, true] : [false];
  const texts = new Set<string>();
  const seen = new Set<string>();
  for (const backslash of backslashes) {
    for (const ansi of ansis) {
      for (const mariadb of flavours) {
        // Versions that decide something: each gate and the one just below it, and the extremes.
        const first = lex(sql, { mariadb, version: NEWEST, backslash, ansi });
        const gates = first.features ? [...first.features.versions] : [];
        const versions =
          dialect?.version !== undefined
            ? [dialect.version]
            : [...new Set([mariadb ? OLDEST.mariadb : OLDEST.mysql, NEWEST, ...gates, ...gates.map((g) => g - 1)])];
        for (const version of versions) {
          const key = `${backslash}/${ansi}/${mariadb}/${version}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const r = lex(sql, { mariadb, version, backslash, ansi });
          if (!r.ok) return { ok: false, error: r.error };
          texts.add(r.text);
          if (texts.size > MAX_READINGS)
            return { ok: false, error: 'the statement has too many possible readings (executable comments, quoting)' };
        }
      }
    }
  }
  return { ok: true, texts: [...texts] };
}

type LexResult = { ok: true; text: string; features: Features } | { ok: false; error: string; features?: Features };

function lex(sql: string, r: Reading): LexResult {
  const out: string[] = [];
  const features: Features = { versions: new Set(), backslashInString: false, doubleQuote: false, executable: false };
  const n = sql.length;
  let i = 0;
  let inExecutable = false;
  const fail = (error: string): LexResult => ({ ok: false, error, features });
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      if (c === '"') features.doubleQuote = true;
      const s = readQuoted(sql, i, c, r.backslash, features);
      if (!s) return fail('unterminated string');
      out.push(c === '"' && r.ansi ? '`' + s.value.replace(/`/g, '``') + '`' : canonicalString(s.value));
      i = s.end;
      continue;
    }
    if (c === '`') {
      // `` inside a quoted identifier is one backtick.
      let k = sql.indexOf('`', i + 1);
      while (k >= 0 && sql[k + 1] === '`') k = sql.indexOf('`', k + 2);
      if (k < 0) return fail('unterminated quoted identifier');
      out.push(sql.slice(i, k + 1));
      i = k + 1;
      continue;
    }
    if (c === '#') {
      i = lineEnd(sql, i);
      out.push(' ');
      continue;
    }
    if (c === '-' && sql[i + 1] === '-') {
      const after = sql.charCodeAt(i + 2);
      if (i + 2 >= n || after <= 0x20 || after === 0x7f) {
        i = lineEnd(sql, i);
        out.push(' ');
      } else {
        out.push('- -');
        i += 2;
      }
      continue;
    }
    if (c === '*' && sql[i + 1] === '/' && inExecutable) {
      inExecutable = false;
      out.push(' ');
      i += 2;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      if (inExecutable) return fail('a comment inside an executable comment');
      const mariaMarker = sql[i + 2] === 'M' && sql[i + 3] === '!';
      const marker = sql[i + 2] === '!' || mariaMarker;
      if (!marker || (mariaMarker && !r.mariadb)) {
        // A regular comment: the first */ ends it (MySQL does not nest them).
        const end = sql.indexOf('*/', i + 2);
        if (end < 0) return fail('unterminated comment');
        out.push(' ');
        i = end + 2;
        continue;
      }
      features.executable = true;
      let j = i + (mariaMarker ? 4 : 3);
      const digits = /^\d{5,6}/.exec(sql.slice(j, j + 6));
      let runs = true;
      if (digits) {
        const version = Number(digits[0]);
        features.versions.add(version);
        j += digits[0].length;
        runs = r.mariadb ? version <= r.version && (version < 50700 || version > 99999 || mariaMarker) : version <= r.version;
      }
      if (runs) {
        inExecutable = true;
        out.push(' ');
        i = j;
        continue;
      }
      // Skipped as a comment; the server allows one nested comment inside one for another version.
      const end = skipGatedComment(sql, j);
      if (end < 0) return fail('unterminated comment');
      out.push(' ');
      i = end;
      continue;
    }
    out.push(c);
    i++;
  }
  return { ok: true, text: out.join(''), features };
}

function lineEnd(sql: string, i: number): number {
  const nl = sql.indexOf('\n', i);
  return nl < 0 ? sql.length : nl + 1;
}

/** The end (past its closing mark) of a version-gated comment the server skips, or -1. */
function skipGatedComment(sql: string, from: number): number {
  let depth = 0;
  for (let i = from; i < sql.length - 1; i++) {
    if (depth === 0 && sql[i] === '/' && sql[i + 1] === '*') {
      depth = 1;
      i++;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      if (depth === 0) return i + 2;
      depth = 0;
      i++;
    }
  }
  return -1;
}

function readQuoted(
  sql: string,
  start: number,
  quote: string,
  backslash: boolean,
  features: Features,
): { value: string; end: number } | undefined {
  let value = '';
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === '\\') {
      features.backslashInString = true;
      if (backslash) {
        if (i + 1 >= sql.length) return undefined;
        value += unescape(sql[i + 1]!);
        i++;
        continue;
      }
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        value += quote;
        i++;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += c;
  }
  return undefined;
}

const ESCAPES: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };

function unescape(c: string): string {
  // \% and \_ keep their backslash (LIKE patterns); other unknown escapes are the character itself.
  if (c === '%' || c === '_') return '\\' + c;
  return ESCAPES[c] ?? c;
}

/** A string literal node-sql-parser reads back to `value`. */
export function canonicalString(value: string): string {
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

/** The value of a canonical string literal at `start` of a server text, and where it ends. */
export function readCanonicalString(text: string, start: number): { value: string; end: number } | undefined {
  if (text[start] !== "'") return undefined;
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      value += text[i + 1] ?? '';
      i++;
    } else if (c === "'") return { value, end: i + 1 };
    else value += c;
  }
  return undefined;
}

/** Splits a server text into statements at top-level semicolons (strings and quoted names skipped). */
export function splitStatements(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      i = (readCanonicalString(text, i)?.end ?? text.length) - 1;
    } else if (c === '`') {
      let k = text.indexOf('`', i + 1);
      while (k >= 0 && text[k + 1] === '`') k = text.indexOf('`', k + 2);
      i = k < 0 ? text.length : k;
    } else if (c === ';') {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}
