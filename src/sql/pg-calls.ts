/**
 * What function calls, operators and a few statements do beyond what the parse tree shows:
 * - functions and operators PostgreSQL does not ship (user code, extensions) and code written to
 *   run later (functions, triggers, rules) are opaque: the gateway cannot see what they run;
 * - built-ins that execute SQL passed as text (query_to_xml, ts_stat, ...) run that text as part of
 *   the statement: a literal text is analysed like the statement itself, anything else is opaque;
 * - built-ins that read a table named by a value (table_to_xml) read it;
 * - settings changed by SET, RESET, set_config() and ALTER ... SET;
 * - backends signalled by pg_terminate_backend / pg_cancel_backend.
 */
import { asArray, only, sval, type Node } from './pg-ast.js';
import { PG_BUILTIN_FUNCTIONS, PG_BUILTIN_OPERATORS } from './pg-builtins.js';
import type { StatementInfo } from './postgres.js';

/** Statements whose code the gateway cannot see, now or when it later runs. */
export const OPAQUE_STATEMENTS: Readonly<Record<string, string>> = {
  CreateFunctionStmt: 'CREATE FUNCTION or PROCEDURE (code that runs later)',
  AlterFunctionStmt: 'ALTER FUNCTION (code that runs later)',
  CreateTrigStmt: 'CREATE TRIGGER (code that runs later)',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER (code that runs later)',
  RuleStmt: 'CREATE RULE (statements that run later)',
  CreateCastStmt: 'CREATE CAST (code that runs later)',
  CreateTransformStmt: 'CREATE TRANSFORM (code that runs later)',
  LoadStmt: 'LOAD of a shared library',
};

/** How opaque entries for SQL or tables named at run time end (policy reads them by these). */
export const UNREADABLE_TEXT = 'over a query jitgate cannot read';
export const TABLE_AT_RUN_TIME = 'of a table named at run time';
export const READS_EVERY_TABLE = '(reads every table it can)';

/** Built-ins that execute the SQL text in one of their arguments (index), per argument count. */
const SQL_TEXT_ARGUMENT: Readonly<Record<string, (argc: number) => number | undefined>> = {
  query_to_xml: () => 0,
  query_to_xmlschema: () => 0,
  query_to_xml_and_xmlschema: () => 0,
  ts_stat: () => 0,
  ts_rewrite: (argc) => (argc === 2 ? 1 : undefined),
};

/** Built-ins that read a whole table named by their first argument. */
const TABLE_ARGUMENT = new Set(['table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema']);

/** Built-ins that read every table of a schema or database: nothing to check them by. */
const READS_EVERYTHING = new Set([
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
]);

const SIGNALS = new Set(['pg_terminate_backend', 'pg_cancel_backend']);

/** Analyses SQL text found in a literal (the caller's own analyser, to avoid a module cycle). */
export type InnerAnalyser = (sql: string) => StatementInfo[] | undefined;

/** Records what one function call runs or reads that its name alone does not say. */
export function inspectCall(fc: Node, info: StatementInfo, analyse: InnerAnalyser): void {
  const parts = asArray(fc.funcname).map(sval);
  const name = parts.at(-1) ?? '';
  const schema = parts.length > 1 ? parts.at(-2)!.toLowerCase() : undefined;
  const builtin = (schema === undefined || schema === 'pg_catalog' || schema === 'information_schema') && PG_BUILTIN_FUNCTIONS.has(name);
  if (!builtin) {
    info.opaque!.push(`function ${parts.join('.').toLowerCase()}()`);
    return;
  }
  const args = asArray(fc.args);
  const textAt = SQL_TEXT_ARGUMENT[name]?.(args.length);
  if (textAt !== undefined) {
    const text = literalText(args[textAt]);
    const inner = text === undefined ? undefined : analyse(text);
    if (!inner) info.opaque!.push(`${name}() ${UNREADABLE_TEXT}`);
    else for (const s of inner) mergeInto(info, s);
  } else if (TABLE_ARGUMENT.has(name)) {
    const table = literalText(args[0]);
    if (table === undefined) info.opaque!.push(`${name}() ${TABLE_AT_RUN_TIME}`);
    else info.tablesRead.push(unquoteName(table));
  } else if (READS_EVERYTHING.has(name)) {
    info.opaque!.push(`${name}() ${READS_EVERY_TABLE}`);
  } else if (SIGNALS.has(name)) {
    info.backendSignals!.push(pidOf(args[0]));
  } else if (name === 'set_config') {
    const setting = literalText(args[0]);
    info.settings!.push(setting === undefined ? '*' : setting.toLowerCase());
    if (setting !== undefined) info.settingValues![setting.toLowerCase()] = literalText(args[1]) ?? null;
  }
}

/** Operators PostgreSQL does not ship run user functions. */
export function inspectOperator(expr: Node, info: StatementInfo): void {
  if (expr.kind !== 'AEXPR_OP' && expr.kind !== 'AEXPR_OP_ANY' && expr.kind !== 'AEXPR_OP_ALL') return;
  const parts = asArray(expr.name).map(sval);
  const op = parts.at(-1) ?? '';
  const schema = parts.length > 1 ? parts.at(-2)!.toLowerCase() : undefined;
  if ((schema === undefined || schema === 'pg_catalog') && PG_BUILTIN_OPERATORS.has(op)) return;
  info.opaque!.push(`operator ${parts.join('.')}`);
}

/** Settings a statement node changes (undefined: it changes none). */
export function settingsOf(type: string, body: Node, values: Record<string, string | null>): string[] | undefined {
  switch (type) {
    case 'VariableSetStmt':
      return variableSet(body, values);
    case 'AlterRoleSetStmt':
    case 'AlterDatabaseSetStmt':
    case 'AlterSystemStmt':
      return body.setstmt ? variableSet(body.setstmt as Node, values) : undefined;
    case 'DiscardStmt':
      // DISCARD ALL includes RESET ALL and SET SESSION AUTHORIZATION DEFAULT.
      return body.target === 'DISCARD_ALL' ? ['*'] : undefined;
    default:
      return undefined;
  }
}

function variableSet(set: Node, values: Record<string, string | null>): string[] {
  if (set.kind === 'VAR_RESET_ALL') return ['*'];
  const name = typeof set.name === 'string' ? set.name.toLowerCase() : '*';
  const args = asArray(set.args);
  const reset = set.kind === 'VAR_SET_DEFAULT' || set.kind === 'VAR_RESET';
  values[name] = reset
    ? 'default'
    : set.kind === 'VAR_SET_VALUE' && args.length === 1
      ? (literalText(args[0]) ?? constantText(args[0]) ?? null)
      : null;
  // SET TRANSACTION / SET SESSION CHARACTERISTICS set the transaction_* settings.
  if (name === 'transaction' || name === 'session characteristics' || name === 'transaction snapshot') {
    return [
      'transaction_isolation',
      'transaction_read_only',
      'transaction_deferrable',
      'default_transaction_isolation',
      'default_transaction_read_only',
      'default_transaction_deferrable',
    ];
  }
  return [name];
}

/** The text of a string literal (possibly cast: `'x'::text`), or undefined for anything else. */
export function literalText(n: unknown): string | undefined {
  if (!n || typeof n !== 'object') return undefined;
  const [type, body] = only(n as Node);
  if (type === 'TypeCast') return literalText(body.arg);
  if (type === 'A_Const' && body.sval) return ((body.sval as Node).sval as string | undefined) ?? '';
  return undefined;
}

/** A bare identifier or number used as a SET value (`SET client_encoding TO sjis`). */
function constantText(n: unknown): string | undefined {
  const c = (n as Node | undefined)?.A_Const as Node | undefined;
  const ival = c?.ival as Node | undefined;
  if (ival) return String(ival.ival ?? 0);
  return undefined;
}

function pidOf(n: unknown): number | 'self' | 'unknown' {
  if (!n || typeof n !== 'object') return 'unknown';
  const [type, body] = only(n as Node);
  if (type === 'TypeCast') return pidOf(body.arg);
  if (type === 'A_Const') {
    const ival = body.ival as Node | undefined;
    if (ival) return typeof ival.ival === 'number' ? ival.ival : 0;
    return 'unknown';
  }
  if (type === 'FuncCall') {
    const parts = asArray(body.funcname).map(sval);
    const schemaOk = parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog');
    if (schemaOk && parts.at(-1) === 'pg_backend_pid' && asArray(body.args).length === 0) return 'self';
  }
  return 'unknown';
}

/** A table name given as text ('payroll', 'hr."Pay"'): lower-cased unless quoted, as regclass reads it. */
function unquoteName(text: string): string {
  return text
    .split('.')
    .map((p) => (p.startsWith('"') && p.endsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase()))
    .join('.');
}

/** What a statement run inside another (SQL text, a DO block's body) adds to it. */
export function mergeInto(info: StatementInfo, inner: StatementInfo): void {
  info.innerKinds!.push(inner.kind, ...(inner.innerKinds ?? []));
  info.tablesRead.push(...inner.tablesRead);
  info.tablesWritten.push(...inner.tablesWritten);
  info.columns.push(...inner.columns);
  info.functions.push(...inner.functions);
  info.unboundedWrites.push(...inner.unboundedWrites);
  info.unboundedNotes!.push(...(inner.unboundedNotes ?? []));
  info.opaque!.push(...(inner.opaque ?? []));
  info.settings!.push(...(inner.settings ?? []));
  Object.assign(info.settingValues!, inner.settingValues ?? {});
  info.backendSignals!.push(...(inner.backendSignals ?? []));
  info.copyTargets!.push(...(inner.copyTargets ?? []));
  if (!inner.readOnly) info.readOnly = false;
}
