/**
 * The code in DO blocks and in CREATE FUNCTION / PROCEDURE bodies, read with PostgreSQL's own
 * PL/pgSQL parser (libpg-query's parsePlPgSQL): every SQL statement and expression it runs is
 * analysed as part of the statement that carries it. What stays unseen is reported as opaque:
 * EXECUTE of text built at run time (a string literal is read like any SQL text), bodies that do not
 * parse, and languages other than SQL and PL/pgSQL.
 */
import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import { asArray, type Node } from './pg-ast.js';
import { literalText, type InnerAnalyser } from './pg-calls.js';
import type { StatementInfo } from './postgres.js';

/** What a body runs: the statements found (to merge), and what could not be seen. */
export interface CodeBody {
  statements: StatementInfo[];
  opaque: string[];
}

/** Opaque entries for dynamic SQL end with this. */
export const DYNAMIC_SQL = 'runs SQL text built at run time';

/** Whether an opaque entry is code in a body this module could not read (dynamic SQL included). */
export function unreadBody(entry: string): boolean {
  return /^(DO block|function)( that runs SQL text built at run time| whose code jitgate cannot read| in language \S+| body in language \S+| body jitgate cannot read| without a body jitgate can read)$/.test(
    entry,
  );
}

/** PL/pgSQL nodes whose expression is SQL text to execute, not SQL itself. */
const DYNAMIC_KEYS: Readonly<Record<string, string>> = {
  PLpgSQL_stmt_dynexecute: 'query',
  PLpgSQL_stmt_dynfors: 'query',
  PLpgSQL_stmt_open: 'dynquery',
  PLpgSQL_stmt_return_query: 'dynquery',
};

/** A DO block's body (its `as` text) in its language. */
export function doBody(stmt: Node, analyse: InnerAnalyser): CodeBody {
  let body: string | undefined;
  let language = 'plpgsql';
  for (const a of asArray(stmt.args)) {
    const d = ((a as Node).DefElem ?? {}) as Node;
    const text = typeof (d.arg as Node | undefined)?.String === 'object' ? ((d.arg as Node).String as Node).sval : undefined;
    if (d.defname === 'as' && typeof text === 'string') body = text;
    if (d.defname === 'language' && typeof text === 'string') language = text.toLowerCase();
  }
  if (body === undefined) return { statements: [], opaque: ['DO block without a body jitgate can read'] };
  if (language !== 'plpgsql') return { statements: [], opaque: [`DO block in language ${language}`] };
  return plpgsql(wrapAsFunction(body), 'DO block', analyse);
}

/** A function's or procedure's body, given the CREATE statement's own text. */
export function functionBody(stmt: Node, text: string, analyse: InnerAnalyser): CodeBody {
  let language = 'sql';
  let body: string[] = [];
  for (const o of asArray(stmt.options)) {
    const d = ((o as Node).DefElem ?? {}) as Node;
    const arg = d.arg as Node | undefined;
    if (d.defname === 'language' && typeof (arg?.String as Node | undefined)?.sval === 'string')
      language = ((arg!.String as Node).sval as string).toLowerCase();
    if (d.defname === 'as')
      body = asArray((arg?.List as Node | undefined)?.items).map(
        (i) => (((i as Node).String as Node | undefined)?.sval as string | undefined) ?? '',
      );
  }
  // BEGIN ATOMIC bodies are part of the parse tree already; nothing more to read.
  if (stmt.sql_body) return { statements: [], opaque: [] };
  if (language === 'sql') {
    const found = body.length === 1 ? analyse(body[0]!) : undefined;
    return found ? { statements: found, opaque: [] } : { statements: [], opaque: ['function body jitgate cannot read'] };
  }
  if (language === 'plpgsql') return plpgsql(text, 'function', analyse);
  return { statements: [], opaque: [`function body in language ${language}`] };
}

function wrapAsFunction(body: string): string {
  let tag = 'jitgate';
  for (let i = 0; body.includes(`$${tag}$`) && i < 100; i++) tag = `jitgate${i}`;
  return `CREATE FUNCTION pg_temp.jitgate_do() RETURNS void LANGUAGE plpgsql AS $${tag}$${body}$${tag}$`;
}

function plpgsql(createText: string, what: string, analyse: InnerAnalyser): CodeBody {
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(createText);
  } catch {
    return { statements: [], opaque: [`${what} whose code jitgate cannot read`] };
  }
  const out: CodeBody = { statements: [], opaque: [] };
  visit(tree, undefined);
  return out;

  function visit(node: unknown, dynamicField: string | undefined): void {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, undefined);
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node as Node)) {
      if (key === 'PLpgSQL_expr') {
        expression(value as Node, dynamicField !== undefined);
        continue;
      }
      const dynamic = DYNAMIC_KEYS[key];
      if (dynamic && value && typeof value === 'object') {
        for (const [field, inner] of Object.entries(value as Node)) visit(inner, field === dynamic ? field : undefined);
        continue;
      }
      visit(value, undefined);
    }
  }

  function expression(expr: Node, dynamic: boolean): void {
    const query = typeof expr.query === 'string' ? expr.query : '';
    const sql = asSql(query, typeof expr.parseMode === 'number' ? expr.parseMode : 0);
    const found = sql === undefined ? undefined : analyse(sql);
    if (!found) {
      out.opaque.push(`${what} whose code jitgate cannot read`);
      return;
    }
    out.statements.push(...found);
    if (!dynamic) return;
    // EXECUTE 'literal': the literal is SQL like any other; anything else is built at run time.
    const literal = found.length === 1 ? literalOfSelect(sql!) : undefined;
    const inner = literal === undefined ? undefined : analyse(literal);
    if (inner) out.statements.push(...inner);
    else out.opaque.push(`${what} that ${DYNAMIC_SQL}`);
  }
}

/**
 * PL/pgSQL expression text as SQL: statements (mode 0) as they are, expressions (mode 2) as
 * `SELECT expr`, assignments (modes 3-5: `target := expr`) as `SELECT expr`.
 */
function asSql(query: string, parseMode: number): string | undefined {
  if (parseMode === 0 || parseMode === 1) return query;
  if (parseMode === 2) return `SELECT ${query}`;
  const at = query.indexOf(':=');
  const eq = at >= 0 ? at + 2 : query.indexOf('=') + 1;
  if (eq <= 0) return undefined;
  return `SELECT ${query.slice(eq)}`;
}

/** The string literal a bare `SELECT 'text'` selects (possibly cast), else undefined. */
function literalOfSelect(sql: string): string | undefined {
  try {
    const tree = parseSync(sql) as { stmts?: Array<{ stmt?: Node }> };
    const select = tree.stmts?.[0]?.stmt?.SelectStmt as Node | undefined;
    const targets = asArray(select?.targetList);
    if (!select || targets.length !== 1 || select.fromClause) return undefined;
    return literalText(((targets[0] as Node).ResTarget as Node | undefined)?.val);
  } catch {
    return undefined;
  }
}
