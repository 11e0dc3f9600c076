/**
 * Statement analysis for MySQL and MariaDB with node-sql-parser's MariaDB grammar (and its MySQL
 * grammar for what the first does not accept), into the same StatementInfo as PostgreSQL's
 * (./postgres.ts) so guardrails and reviews read both alike. What neither grammar parses is
 * reported as such and refused wherever a rule applies.
 *
 * MySQL specifics: SELECT ... INTO OUTFILE / DUMPFILE writes a file on the database server and
 * LOAD DATA reads one: both are kind 'copy' (PostgreSQL's COPY to or from a file), not read-only,
 * and are also reported as the pseudo-functions `into_outfile`, `into_dumpfile` and `load_data`
 * so a rule can name them next to LOAD_FILE. As for PostgreSQL the walk is generous: a name that
 * might be a table is reported as one.
 */
import { createRequire } from 'node:module';
import { MYSQL_BUILTINS } from './mysql-builtins.js';
import { readCanonicalString, serverTexts, splitStatements, type MysqlDialect } from './mysql-lexer.js';
import type { StatementInfo, StatementKind } from './postgres.js';

export type { MysqlDialect } from './mysql-lexer.js';

type Node = Record<string, unknown>;
interface SqlParser {
  astify(sql: string, options: { database: string }): unknown;
}

const require = createRequire(import.meta.url);
let parsers: Array<{ parser: SqlParser; database: string }> | undefined;

function grammars(): Array<{ parser: SqlParser; database: string }> {
  if (!parsers) {
    const load = (file: string) => {
      const mod = require(file) as { Parser: new () => SqlParser };
      return new mod.Parser();
    };
    parsers = [
      { parser: load('node-sql-parser/build/mariadb.js'), database: 'MariaDB' },
      { parser: load('node-sql-parser/build/mysql.js'), database: 'MySQL' },
    ];
  }
  return parsers;
}

/** Loads both grammars now (otherwise on first use). */
export function loadMysqlParser(): void {
  grammars();
}

/**
 * What a MySQL statement does, beyond what guardrails read from every dialect: the facts masking and
 * the relay need (variables assigned, routines called, prepared statements, what reveals other
 * sessions or the gateway's credential).
 */
export interface MysqlStatementInfo extends StatementInfo {
  /** Assigns a user or system variable (SET, `@x :=`, INTO @x): a value that outlives the statement. */
  assignsVariables: boolean;
  /** Stored functions and procedures called (CALL included): code the statement does not show. */
  routines: string[];
  /** PREPARE name FROM ...: the name (the prepared text's statements follow this one in the list). */
  prepares?: string;
  /** PREPARE name FROM 'text': the text prepared. */
  preparedText?: string;
  /** EXECUTE name: the prepared statement it runs. */
  executes?: string;
  /** SHOW WARNINGS / SHOW ERRORS: messages of earlier statements. */
  showsWarnings?: boolean;
  /** Reveals the gateway's backend credential or other sessions' statements: why. */
  sensitive?: string;
}

export type MysqlAnalysis = { ok: true; statements: MysqlStatementInfo[] } | { ok: false; error: string };

const CACHE_ENTRIES = 2000;
const CACHE_TEXT_CHARS = 8192;
const cache = new Map<string, MysqlAnalysis>();

/** analyseMysql with a bounded cache by exact text and dialect (applications repeat their statements). */
export function analyseMysqlCached(sql: string, dialect?: Partial<MysqlDialect>): MysqlAnalysis {
  if (sql.length > CACHE_TEXT_CHARS) return analyseMysql(sql, dialect);
  const key = dialect
    ? `${dialect.mariadb ?? ''}/${dialect.version ?? ''}/${dialect.noBackslashEscapes ?? ''}/${dialect.ansiQuotes ?? ''}\0${sql}`
    : sql;
  const hit = cache.get(key);
  if (hit) return hit;
  const result = analyseMysql(sql, dialect);
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(key, result);
  return result;
}

/**
 * Analyses a statement text as the server will run it (./mysql-lexer.ts): executable comments
 * expanded as the server expands them, and when the dialect is not fully known, every reading a
 * server could have (their statements together: what any reading does counts).
 */
export function analyseMysql(sql: string, dialect?: Partial<MysqlDialect>): MysqlAnalysis {
  return analyseText(sql, dialect, 0);
}

/** Prepared texts inside prepared texts are followed this deep. */
const MAX_NESTING = 2;

function analyseText(sql: string, dialect: Partial<MysqlDialect> | undefined, depth: number): MysqlAnalysis {
  // A multi-statement text may change sql_mode half-way: its later statements are read both ways.
  const d = dialect && /sql_mode/i.test(sql) ? { ...dialect, noBackslashEscapes: undefined } : dialect;
  const texts = serverTexts(sql, d);
  if (!texts.ok) return { ok: false, error: texts.error };
  const statements: MysqlStatementInfo[] = [];
  for (const text of texts.texts) {
    for (const piece of splitStatements(text)) {
      const r = analysePiece(piece, d, depth);
      if (!r.ok) return r;
      statements.push(...r.statements);
    }
  }
  return { ok: true, statements };
}

function analysePiece(piece: string, dialect: Partial<MysqlDialect> | undefined, depth: number): MysqlAnalysis {
  const special = recognise(piece, dialect, depth);
  if (special) return special;
  let firstError = '';
  for (const { parser, database } of grammars()) {
    let ast: unknown;
    try {
      ast = parser.astify(piece, { database });
    } catch (err) {
      firstError ||= (err instanceof Error ? err.message : String(err)).slice(0, 200);
      continue;
    }
    const list = (Array.isArray(ast) ? ast : [ast]).filter((s): s is Node => isNode(s));
    const unfollowable = list.map(quotingChange).find(Boolean);
    if (unfollowable) return { ok: false, error: unfollowable };
    return { ok: true, statements: list.map((s) => analyseStatement(s, piece)) };
  }
  return { ok: false, error: firstError };
}

// ---------------------------------------------------------------------------------------------
// Statements the grammar lacks, read here from the server text (comments gone, strings canonical).

const IDENT = '(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)';
const STRING = "('(?:[^'\\\\]|\\\\.)*')";
const PREPARE_RE = new RegExp(`^PREPARE\\s+${IDENT}\\s+FROM\\s+([\\s\\S]+)$`, 'i');
const EXECUTE_IMMEDIATE_RE = new RegExp(`^EXECUTE\\s+IMMEDIATE\\s+([\\s\\S]+?)(?:\\s+USING\\s+([\\s\\S]+))?$`, 'i');
const EXECUTE_RE = new RegExp(`^EXECUTE\\s+${IDENT}(?:\\s+USING\\s+([\\s\\S]+))?$`, 'i');
const DEALLOCATE_RE = new RegExp(`^(?:DEALLOCATE|DROP)\\s+PREPARE\\s+${IDENT}$`, 'i');
const SET_NAMES_RE = new RegExp(
  `^SET\\s+(?:NAMES|CHARACTER\\s+SET|CHARSET)\\s+(?:${STRING}|${IDENT})(?:\\s+COLLATE\\s+(?:${STRING}|${IDENT}))?$`,
  'i',
);
const KILL_RE = /^KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(?:CONNECTION|QUERY)\s+)?(?:ID\s+)?\d+$/i;
/** Parameters of EXECUTE ... USING: user variables and literals only (an expression could read anything). */
const USING_RE = new RegExp(
  `^(?:@${IDENT}|${STRING}|-?\\d+(?:\\.\\d+)?|NULL)(?:\\s*,\\s*(?:@${IDENT}|${STRING}|-?\\d+(?:\\.\\d+)?|NULL))*$`,
  'i',
);
/** SHOW: words, names, one LIKE pattern; anything else (WHERE, expressions) goes to the grammar. */
const SHOW_RE = new RegExp(`^SHOW\\s+((?:(?:${IDENT}|COUNT\\(\\*\\)|\\.)\\s*)+?)(?:\\s+LIKE\\s+${STRING})?$`, 'i');

/**
 * Client character sets whose multi-byte characters may end in a quote or backslash byte (0x27,
 * 0x5c): the server reads such a byte as part of a character, the analysis would read a quote.
 */
export const HIDING_CHARSETS = ['big5', 'cp932', 'gbk', 'sjis', 'gb18030'];
const HIDING_CHARSETS_RE = new RegExp(`\\b(?:${HIDING_CHARSETS.join('|')})`, 'i');

/** SHOW forms that reveal other sessions' statements or the gateway's credential, with why. */
const SENSITIVE_SHOW: Array<[RegExp, string]> = [
  [/^(?:FULL\s+)?PROCESSLIST\b/i, "other sessions' statements"],
  [/^GRANTS\b/i, "the backend user's grants and password hash"],
  [/^CREATE\s+USER\b/i, "the backend user's password hash"],
  [/^ENGINE\b/i, "other sessions' statements"],
  [/^(?:BINLOG|RELAYLOG)\s+EVENTS\b/i, "other sessions' statements and data"],
];

function recognise(piece: string, dialect: Partial<MysqlDialect> | undefined, depth: number): MysqlAnalysis | undefined {
  const head = /^[A-Za-z]+/.exec(piece)?.[0].toUpperCase();
  if (head === 'PREPARE') {
    const m = PREPARE_RE.exec(piece);
    if (!m) return { ok: false, error: 'PREPARE not understood' };
    return prepared(piece, m[1]!, m[2]!, dialect, depth);
  }
  if (head === 'EXECUTE') {
    const immediate = EXECUTE_IMMEDIATE_RE.exec(piece);
    if (immediate) {
      if (immediate[2] !== undefined && !USING_RE.test(immediate[2].trim()))
        return { ok: false, error: 'EXECUTE ... USING an expression cannot be followed' };
      return prepared(piece, '', immediate[1]!, dialect, depth);
    }
    const m = EXECUTE_RE.exec(piece);
    if (!m) return { ok: false, error: 'EXECUTE not understood' };
    if (m[2] !== undefined && !USING_RE.test(m[2].trim()))
      return { ok: false, error: 'EXECUTE ... USING an expression cannot be followed' };
    const info = emptyInfo('other', piece);
    info.executes = identifier(m[1]!);
    return { ok: true, statements: [info] };
  }
  if ((head === 'DEALLOCATE' || head === 'DROP') && DEALLOCATE_RE.test(piece)) return { ok: true, statements: [emptyInfo('other', piece)] };
  if (head === 'SET' && /\b(?:NAMES|CHARACTER\s+SET|CHARSET|character_set_client)\b/i.test(piece) && HIDING_CHARSETS_RE.test(piece)) {
    return { ok: false, error: 'a client character set whose characters can contain quote and backslash bytes (use utf8mb4)' };
  }
  if (head === 'SET' && SET_NAMES_RE.test(piece)) {
    const info = emptyInfo('set', piece);
    info.readOnly = false;
    info.settings = ['names'];
    return { ok: true, statements: [info] };
  }
  if (head === 'KILL' && KILL_RE.test(piece)) {
    const info = emptyInfo('other', piece);
    info.readOnly = false;
    return { ok: true, statements: [info] };
  }
  if (head === 'SHOW') {
    const m = SHOW_RE.exec(piece);
    const words = (m?.[1] ?? piece.slice(4)).trim();
    const info = emptyInfo('show', piece);
    info.sensitive = SENSITIVE_SHOW.find(([re]) => re.test(words))?.[1];
    if (info.sensitive) return { ok: true, statements: [info] };
    if (!m) return undefined; // SHOW ... WHERE and the like: the grammar, or unparsable
    info.showsWarnings = /^(?:COUNT\(\*\)\s+)?(?:WARNINGS|ERRORS)\b/i.test(words);
    // SHOW COLUMNS FROM t [FROM db], SHOW INDEX IN t: the table named is read (its structure).
    const from = new RegExp(`\\b(?:FROM|IN)\\s+${IDENT}(?:\\s*\\.\\s*${IDENT})?(?:\\s+(?:FROM|IN)\\s+${IDENT})?`, 'i').exec(words);
    if (from && /^(?:FULL\s+)?(?:COLUMNS|FIELDS|INDEX|INDEXES|KEYS)\b/i.test(words)) {
      const db = from[3] ?? (from[2] ? from[1] : undefined);
      const table = from[2] ?? from[1]!;
      info.tablesRead.push(((db ? `${identifier(db)}.` : '') + identifier(table)).toLowerCase());
    }
    return { ok: true, statements: [info] };
  }
  return undefined;
}

/** PREPARE name FROM 'text' (and EXECUTE IMMEDIATE 'text'): the text is analysed as the statement it is. */
function prepared(piece: string, name: string, source: string, dialect: Partial<MysqlDialect> | undefined, depth: number): MysqlAnalysis {
  const literal = readCanonicalString(source.trim(), 0);
  if (!literal || literal.end !== source.trim().length)
    return { ok: false, error: 'a statement prepared from an expression or variable cannot be analysed' };
  if (depth >= MAX_NESTING) return { ok: false, error: 'prepared statements nested too deep' };
  const inner = analyseText(literal.value, dialect, depth + 1);
  if (!inner.ok) return { ok: false, error: `the prepared statement: ${inner.error}` };
  // The PREPARE is reported as the statement it prepares (one statement; one per reading).
  return {
    ok: true,
    statements: inner.statements.map((st) => ({
      ...st,
      text: piece,
      ...(name ? { prepares: identifier(name), preparedText: literal.value } : {}),
    })),
  };
}

function identifier(raw: string): string {
  return raw.startsWith('`') ? raw.slice(1, -1).replace(/``/g, '`') : raw;
}

/** Tables that hold the gateway's credential or other sessions' statements. */
const SENSITIVE_TABLES: Record<string, string> = {
  'mysql.user': "the backend users' password hashes",
  'mysql.global_priv': "the backend users' password hashes",
  'mysql.general_log': "other sessions' statements",
  'mysql.slow_log': "other sessions' statements",
  'information_schema.processlist': "other sessions' statements",
  'performance_schema.threads': "other sessions' statements",
  'performance_schema.processlist': "other sessions' statements",
  'performance_schema.events_statements_current': "other sessions' statements",
  'performance_schema.events_statements_history': "other sessions' statements",
  'performance_schema.events_statements_history_long': "other sessions' statements",
  'sys.processlist': "other sessions' statements",
  'sys.session': "other sessions' statements",
  'sys.x$processlist': "other sessions' statements",
  'sys.x$session': "other sessions' statements",
};

/** Names that are sensitive even unqualified (the default schema may be the one holding them). */
const SENSITIVE_BARE = new Set([
  'global_priv',
  'processlist',
  'general_log',
  'slow_log',
  'events_statements_current',
  'events_statements_history',
  'events_statements_history_long',
  'x$processlist',
  'x$session',
]);

function sensitiveTable(name: string): string | undefined {
  const n = name.replace(/`/g, '').toLowerCase();
  return SENSITIVE_TABLES[n] ?? (SENSITIVE_BARE.has(n) ? "other sessions' statements or the backend's credentials" : undefined);
}

/** Schemas a session may not make its default (unqualified names would then reach the tables above). */
function sensitiveSchema(db: string): string | undefined {
  return ['mysql', 'performance_schema', 'sys'].includes(db.replace(/`/g, '').toLowerCase())
    ? 'a system schema as the default database'
    : undefined;
}

const SIMPLE_KINDS: Record<string, StatementKind> = {
  select: 'select',
  insert: 'insert',
  replace: 'insert',
  update: 'update',
  delete: 'delete',
  truncate: 'truncate',
  grant: 'grant',
  revoke: 'revoke',
  set: 'set',
  show: 'show',
  desc: 'show',
  transaction: 'transaction',
  call: 'call',
  explain: 'explain',
  lock: 'lock',
  unlock: 'lock',
  load_data: 'copy',
};

const DDL_TYPES = new Set(['create', 'alter', 'drop', 'rename']);
const READ_ONLY_KINDS = new Set<StatementKind>(['select', 'show', 'explain', 'transaction']);

function emptyInfo(kind: StatementKind, text: string): MysqlStatementInfo {
  return {
    kind,
    text,
    tablesRead: [],
    tablesWritten: [],
    columns: [],
    functions: [],
    unboundedWrites: [],
    readOnly: true,
    assignsVariables: false,
    routines: [],
  };
}

function analyseStatement(ast: Node, text: string): MysqlStatementInfo {
  const type = String(ast.type ?? '').toLowerCase();
  const info = emptyInfo('other', text);
  if (DDL_TYPES.has(type)) {
    info.kind = 'ddl';
    info.ddl = `${type} ${String(ast.keyword ?? 'object').toLowerCase()}`;
  } else info.kind = SIMPLE_KINDS[type] ?? 'other';

  const written = new Set<string>();
  if (['insert', 'replace', 'update', 'delete', 'truncate'].includes(type) || DDL_TYPES.has(type)) {
    for (const key of ['table', 'name']) for (const t of asArray(ast[key])) addTable(written, t);
  }
  if (type === 'load_data') addTable(written, ast.table);
  if ((type === 'update' || type === 'delete') && !ast.where) info.unboundedWrites = [...written];

  const into = isNode(ast.into) ? String(ast.into.keyword ?? '').toLowerCase() : '';
  if (type === 'select' && (into === 'outfile' || into === 'dumpfile')) {
    info.kind = 'copy';
    info.functions.push(`into_${into}`);
    info.readOnly = false;
  }
  if (type === 'load_data') info.functions.push('load_data');
  if (type === 'call') {
    const name = isNode(ast.expr) ? functionName(ast.expr.name) : '';
    info.routines.push(name || 'procedure');
  }

  walk(ast, info, new Set());
  if (type === 'set') {
    info.assignsVariables = true;
    const settings = unique(asArray(ast.expr).map((e) => (isNode(e) && isNode(e.left) ? variableName(e.left) : '*'))).filter(
      (n) => !n.startsWith('@'),
    );
    if (settings.length > 0) info.settings = settings;
  }
  // CREATE TRIGGER / EVENT / PROCEDURE / FUNCTION store code that runs later, unseen.
  if (type === 'create' && ['trigger', 'event', 'procedure', 'function'].includes(String(ast.keyword ?? '').toLowerCase())) {
    info.opaque = [...(info.opaque ?? []), `CREATE ${String(ast.keyword).toUpperCase()} (runs later)`];
  }
  info.routines = unique(info.routines);
  if (info.routines.length > 0) info.opaque = [...(info.opaque ?? []), ...info.routines.map((r) => `routine ${r}()`)];
  info.tablesWritten = [...written];
  info.tablesRead = unique(info.tablesRead);
  info.columns = unique(info.columns);
  info.functions = unique(info.functions);
  if (written.size > 0 || !READ_ONLY_KINDS.has(info.kind)) info.readOnly = type === 'use';
  if (info.kind === 'copy') info.readOnly = false;
  if (type === 'use') info.sensitive = sensitiveSchema(String(ast.db ?? ''));
  info.sensitive ??= info.tablesRead.map(sensitiveTable).find(Boolean);
  return info;
}

/**
 * Walks a parse tree collecting tables, columns, functions and variable assignments. `ctes` are
 * the names of common table expressions in scope: a `*` over those alone refers to no base column.
 */
function walk(node: unknown, info: MysqlStatementInfo, ctes: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, info, ctes);
    return;
  }
  if (!isNode(node)) return;
  const type = node.type;
  if (type === 'column_ref') {
    const column =
      typeof node.column === 'string'
        ? node.column
        : isNode(node.column)
          ? String((node.column.expr as Node | undefined)?.value ?? '')
          : '';
    if (column) info.columns.push((typeof node.table === 'string' && node.table ? `${node.table}.${column}` : column).toLowerCase());
    return;
  }
  if (type === 'select') {
    const scope = new Set(ctes);
    for (const w of asArray(node.with)) {
      if (!isNode(w)) continue;
      const name = isNode(w.name) ? String(w.name.value ?? '') : String(w.name ?? '');
      if (name) scope.add(name.toLowerCase());
    }
    if (
      Array.isArray(node.from) &&
      node.from.length > 0 &&
      node.from.every((f) => isNode(f) && (f.expr !== undefined || (typeof f.table === 'string' && scope.has(f.table.toLowerCase()))))
    ) {
      // Only derived tables and CTEs: their own selects are walked; a star here adds no base column.
      const { columns, ...rest } = node;
      for (const c of asArray(columns)) {
        if (isNode(c) && isNode(c.expr) && c.expr.type === 'column_ref' && (c.expr.column === '*' || String(c.expr.column).endsWith('*')))
          continue;
        walk(c, info, scope);
      }
      for (const [key, value] of Object.entries(rest))
        if (key !== 'tableList' && key !== 'columnList' && value !== null && typeof value === 'object') walk(value, info, scope);
      return;
    }
    ctes = scope;
  }
  if (type === 'function') {
    const name = functionName(node.name);
    if (name) {
      info.functions.push(name);
      if (!MYSQL_BUILTINS.has(name)) info.routines.push(name);
    }
  } else if (type === 'aggr_func' && typeof node.name === 'string') {
    info.functions.push(node.name.toLowerCase());
  }
  if (type === 'assign' && isNode(node.left) && node.left.type === 'var') info.assignsVariables = true;
  if (type === 'into' && String(node.keyword ?? '') === 'var') info.assignsVariables = true;
  // A table reference: { db, table, as } in FROM lists, write targets and DDL names.
  if (typeof node.table === 'string' && 'db' in node && type !== 'column_ref') {
    const name = tableName(node);
    if (name && !(ctes.has(name) && !node.db)) info.tablesRead.push(name);
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === 'tableList' || key === 'columnList') continue;
    if (value !== null && typeof value === 'object') walk(value, info, ctes);
  }
}

/**
 * A SET that would turn on ANSI_QUOTES (or sets sql_mode to something computed): the session would
 * then read double-quoted text as names, which the analysis of later statements does not follow.
 */
function quotingChange(ast: Node): string | undefined {
  if (String(ast.type ?? '').toLowerCase() !== 'set') return undefined;
  for (const e of asArray(ast.expr)) {
    if (!isNode(e) || !isNode(e.left) || !variableName(e.left).endsWith('sql_mode')) continue;
    const value = isNode(e.right) && typeof e.right.value === 'string' && /string/.test(String(e.right.type)) ? e.right.value : undefined;
    if (value === undefined || /ansi/i.test(value))
      return 'sql_mode with ANSI_QUOTES (or a computed sql_mode) changes how statements are read';
  }
  return undefined;
}

function variableName(v: Node): string {
  const name = String(v.name ?? '').toLowerCase();
  if (v.prefix === '@') return `@${name}`;
  const members = asArray(v.members).map(String);
  // @@session.sql_mode: the grammar reads `session` as the name and `sql_mode` as a member.
  if (['session', 'global', 'local'].includes(name) && members.length > 0) return members.join('.').toLowerCase();
  return name || '*';
}

function functionName(name: unknown): string {
  if (typeof name === 'string') return name.toLowerCase();
  if (isNode(name) && Array.isArray(name.name)) {
    const schema = isNode(name.schema) ? `${String(name.schema.value ?? '')}.` : '';
    const parts = name.name.map((part) => (isNode(part) ? String(part.value ?? '') : String(part))).filter(Boolean);
    return (schema + parts.join('.')).toLowerCase();
  }
  return '';
}

function addTable(set: Set<string>, t: unknown): void {
  if (!isNode(t)) return;
  const name = tableName(t);
  if (name) set.add(name);
}

function tableName(t: Node): string {
  const table = typeof t.table === 'string' ? t.table : '';
  if (!table) return '';
  const db = typeof t.db === 'string' && t.db ? `${t.db}.` : '';
  return (db + table).toLowerCase();
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** A single SELECT over base tables only (no CTE, derived table, UNION): what result origins can be checked against. */
export interface PlainSelect {
  /** Tables in FROM/JOIN, lower-cased, unqualified. */
  tables: string[];
  /**
   * The column references each output column is computed from, in output order (`email`,
   * `c.email`); undefined when an output is `*` or a subquery (not attributable column by column).
   */
  outputs?: string[][];
}

export function plainSelect(sql: string, dialect?: Partial<MysqlDialect>): PlainSelect | undefined {
  const texts = serverTexts(sql, dialect);
  if (!texts.ok || texts.texts.length !== 1) return undefined;
  const pieces = splitStatements(texts.texts[0]!);
  if (pieces.length !== 1) return undefined;
  for (const { parser, database } of grammars()) {
    let ast: unknown;
    try {
      ast = parser.astify(pieces[0]!, { database });
    } catch {
      continue;
    }
    const list = Array.isArray(ast) ? ast : [ast];
    if (list.length !== 1 || !isNode(list[0])) return undefined;
    const s = list[0];
    if (s.type !== 'select' || s._next || s.with || !Array.isArray(s.columns)) return undefined;
    const tables: string[] = [];
    for (const f of asArray(s.from)) {
      // A derived table (a subquery in FROM) reports itself as the origin of its columns.
      if (!isNode(f) || typeof f.table !== 'string' || f.expr) return undefined;
      tables.push(f.table.toLowerCase());
    }
    const outputs: string[][] = [];
    for (const c of s.columns) {
      if (!isNode(c)) return { tables };
      const info = emptyInfo('select', '');
      walk(valueOf(c.expr), info, new Set());
      if (info.columns.some((x) => x.endsWith('*')) || info.tablesRead.length > 0) return { tables };
      outputs.push(unique(info.columns));
    }
    return { tables, outputs };
  }
  return undefined;
}

/** The part of an output expression whose value can show: COUNT(x) shows how many, not x. */
function valueOf(expr: unknown): unknown {
  if (isNode(expr) && expr.type === 'aggr_func' && String(expr.name).toUpperCase() === 'COUNT') return null;
  return expr;
}
