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
import type { AnalysisResult, StatementInfo, StatementKind } from './postgres.js';

type Node = Record<string, unknown>;
interface SqlParser {
  astify(sql: string, options: { database: string }): unknown;
  sqlify(ast: unknown, options: { database: string }): string;
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

const CACHE_ENTRIES = 2000;
const CACHE_TEXT_CHARS = 8192;
const cache = new Map<string, AnalysisResult>();

/** analyseMysql with a bounded cache by exact text (applications repeat their statements). */
export function analyseMysqlCached(sql: string): AnalysisResult {
  if (sql.length > CACHE_TEXT_CHARS) return analyseMysql(sql);
  const hit = cache.get(sql);
  if (hit) return hit;
  const result = analyseMysql(sql);
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(sql, result);
  return result;
}

export function analyseMysql(sql: string): AnalysisResult {
  let firstError = '';
  for (const { parser, database } of grammars()) {
    let ast: unknown;
    try {
      ast = parser.astify(sql, { database });
    } catch (err) {
      firstError ||= (err instanceof Error ? err.message : String(err)).slice(0, 200);
      continue;
    }
    const list = (Array.isArray(ast) ? ast : [ast]).filter((s): s is Node => isNode(s));
    const statements = list.map((s) => analyseStatement(s, list.length === 1 ? sql.trim() : textOf(parser, s, database)));
    return { ok: true, statements };
  }
  return { ok: false, error: firstError };
}

function textOf(parser: SqlParser, ast: Node, database: string): string {
  try {
    return parser.sqlify(ast, { database });
  } catch {
    return String(ast.type ?? 'statement');
  }
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

function analyseStatement(ast: Node, text: string): StatementInfo {
  const type = String(ast.type ?? '').toLowerCase();
  const info: StatementInfo = { kind: 'other', text, tablesRead: [], tablesWritten: [], columns: [], functions: [], unboundedWrites: [], readOnly: true };
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
  if (type === 'use') info.kind = 'other';

  walk(ast, info);
  info.tablesWritten = [...written];
  info.tablesRead = unique(info.tablesRead);
  info.columns = unique(info.columns);
  info.functions = unique(info.functions);
  if (written.size > 0 || !READ_ONLY_KINDS.has(info.kind)) info.readOnly = type === 'use';
  if (info.kind === 'copy') info.readOnly = false;
  return info;
}

function walk(node: unknown, info: StatementInfo): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, info);
    return;
  }
  if (!isNode(node)) return;
  const type = node.type;
  if (type === 'column_ref') {
    const column = typeof node.column === 'string' ? node.column : isNode(node.column) ? String((node.column.expr as Node | undefined)?.value ?? '') : '';
    if (column) info.columns.push((typeof node.table === 'string' && node.table ? `${node.table}.${column}` : column).toLowerCase());
    return;
  }
  if (type === 'function') {
    const name = functionName(node.name);
    if (name) info.functions.push(name);
  } else if (type === 'aggr_func' && typeof node.name === 'string') {
    info.functions.push(node.name.toLowerCase());
  }
  // A table reference: { db, table, as } in FROM lists, write targets and DDL names.
  if (typeof node.table === 'string' && 'db' in node && type !== 'column_ref') {
    const name = tableName(node);
    if (name) info.tablesRead.push(name);
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === 'tableList' || key === 'columnList') continue;
    if (value !== null && typeof value === 'object') walk(value, info);
  }
}

function functionName(name: unknown): string {
  if (typeof name === 'string') return name.toLowerCase();
  if (isNode(name) && Array.isArray(name.name)) {
    return name.name
      .map((part) => (isNode(part) ? String(part.value ?? '') : String(part)))
      .filter(Boolean)
      .join('.')
      .toLowerCase();
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

export function plainSelect(sql: string): PlainSelect | undefined {
  for (const { parser, database } of grammars()) {
    let ast: unknown;
    try {
      ast = parser.astify(sql, { database });
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
      const info: StatementInfo = { kind: 'select', text: '', tablesRead: [], tablesWritten: [], columns: [], functions: [], unboundedWrites: [], readOnly: true };
      walk(c.expr, info);
      if (info.columns.some((x) => x.endsWith('*')) || info.tablesRead.length > 0) return { tables };
      outputs.push(unique(info.columns));
    }
    return { tables, outputs };
  }
  return undefined;
}
