/**
 * Statement analysis for PostgreSQL with the real grammar (libpg-query, PostgreSQL's own parser
 * compiled to WebAssembly). One call analyses a whole query string into one StatementInfo per
 * statement: kind, tables read and written, columns, functions, WHERE-less writes. What does not
 * parse is reported as such; policy treats it as unknown (deny by default), never as harmless.
 *
 * The walk is deliberately generous: a name that might be a table (a CTE name, say) may be
 * reported as one. Over-reporting can only make a rule match more, never less.
 */
import { loadModule, parseSync } from 'libpg-query';
import { asArray, only, sval, type Node } from './pg-ast.js';
import { inspectCall, inspectOperator, mergeInto, OPAQUE_STATEMENTS, settingsOf } from './pg-calls.js';
import { doBody, functionBody } from './pg-plpgsql.js';
import { mergeUnbounded, targetOf, unbounded } from './pg-write-bounds.js';

export type StatementKind =
  | 'select'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'copy'
  | 'ddl'
  | 'grant'
  | 'revoke'
  | 'set'
  | 'show'
  | 'transaction'
  | 'call'
  | 'do'
  | 'listen'
  | 'notify'
  | 'unlisten'
  | 'explain'
  | 'prepare'
  | 'execute'
  | 'deallocate'
  | 'lock'
  | 'truncate'
  | 'maintenance'
  | 'other';

export interface StatementInfo {
  kind: StatementKind;
  /** For kind 'ddl': create | alter | drop | rename | comment and the object type, e.g. 'create table'. */
  ddl?: string;
  /** The statement's own text within the query string. */
  text: string;
  /** Relations read, as written (schema-qualified when the statement qualifies them), lower-cased. */
  tablesRead: string[];
  /** Relations written (insert/update/delete/merge/copy from/truncate/select into/DDL targets). */
  tablesWritten: string[];
  /** Column references as written: `column`, `alias.column` or `table.*`; `*` for a bare star. */
  columns: string[];
  /** Functions called, lower-cased, schema-qualified when written so (e.g. `pg_catalog.pg_read_file`). */
  functions: string[];
  /** Tables that an UPDATE or DELETE (anywhere in the statement, CTEs included) changes without WHERE. */
  unboundedWrites: string[];
  /** Nothing in the statement writes data or changes schema, privileges or settings. */
  readOnly: boolean;
  /**
   * Code the gateway cannot see into, each named (`DO block`, `function public.f()`, `operator
   * public.+++`, `query_to_xml() over a query built at run time`, `CREATE TRIGGER (runs later)`).
   * Absent or empty when everything the statement runs is visible (PostgreSQL dialect only).
   */
  opaque?: string[];
  /**
   * Settings the statement changes (SET, SET LOCAL, RESET, set_config(), ALTER ROLE|DATABASE|SYSTEM
   * ... SET), lower-cased; `*` when it may change any (RESET ALL, DISCARD ALL, a name built at run
   * time). `SET ROLE` is `role`, `SET SESSION AUTHORIZATION` is `session_authorization`.
   */
  settings?: string[];
  /** The value each changed setting gets when it is written as a literal (`null` otherwise). */
  settingValues?: Record<string, string | null>;
  /**
   * Kinds of the statements run inside this one: data-modifying CTEs, PREPARE's statement, COPY's
   * query, a DO block's or function body's statements, SQL passed as text.
   */
  innerKinds?: StatementKind[];
  /** COPY's ends: `stdin`, `stdout`, `file` (a server file) or `program`. */
  copyTargets?: CopyTarget[];
  /** The unbounded writes named for people: `DELETE without WHERE on t`, `MERGE ... on t`. */
  unboundedNotes?: string[];
  /**
   * Backends the statement signals (pg_terminate_backend, pg_cancel_backend): a pid as written,
   * `self` for pg_backend_pid(), `unknown` for anything computed.
   */
  backendSignals?: Array<number | 'self' | 'unknown'>;
}

export type CopyTarget = 'stdin' | 'stdout' | 'file' | 'program';

export type AnalysisResult = { ok: true; statements: StatementInfo[] } | { ok: false; error: string };

let ready: Promise<void> | undefined;

/** Loads the parser (WebAssembly) once; call before analysePostgres. */
export function loadPostgresParser(): Promise<void> {
  ready ??= loadModule();
  return ready;
}

const CACHE_ENTRIES = 2000;
const CACHE_TEXT_CHARS = 8192;
const cache = new Map<string, AnalysisResult>();

/**
 * analysePostgres with a bounded cache by exact text: applications repeat the same statements
 * (pgbench, ORMs, prepared statements re-parsed), so the parser runs once per distinct text.
 */
export function analysePostgresCached(sql: string): AnalysisResult {
  if (sql.length > CACHE_TEXT_CHARS) return analysePostgres(sql);
  const hit = cache.get(sql);
  if (hit) return hit;
  const result = analysePostgres(sql);
  if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(sql, result);
  return result;
}

export function analysePostgres(sql: string): AnalysisResult {
  // The parser refuses an empty string, which PostgreSQL answers with EmptyQueryResponse (drivers
  // and pools send it to check a connection): no statement, as for one holding only blanks.
  if (sql === '') return { ok: true, statements: [] };
  let tree: { stmts?: Array<{ stmt?: Node; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  const statements: StatementInfo[] = [];
  for (const raw of tree.stmts ?? []) {
    if (!raw.stmt) continue;
    const start = raw.stmt_location ?? 0;
    const text = (raw.stmt_len ? sql.slice(start, start + raw.stmt_len) : sql.slice(start)).trim();
    statements.push(analyseStatement(raw.stmt, text));
  }
  return { ok: true, statements };
}

const DATA_WRITES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

function analyseStatement(stmt: Node, text: string): StatementInfo {
  const [type, body] = only(stmt);
  const info: StatementInfo = {
    kind: 'other',
    text,
    tablesRead: [],
    tablesWritten: [],
    columns: [],
    functions: [],
    unboundedWrites: [],
    readOnly: true,
    opaque: [],
    innerKinds: [],
    settings: [],
    settingValues: {},
    copyTargets: [],
    unboundedNotes: [],
    backendSignals: [],
  };
  classify(info, type, body);
  const written = new Set<string>();
  collectWriteTargets(stmt, written, info);
  walk(stmt, info);
  // Writes found inside code bodies and SQL text were merged during the walk.
  info.tablesWritten = unique([...written, ...info.tablesWritten]);
  // Write targets also appear as read: over-reporting can only make a rule match more.
  info.tablesRead = unique(info.tablesRead);
  info.columns = unique(info.columns);
  info.functions = unique(info.functions);
  info.unboundedWrites = unique(info.unboundedWrites);
  info.unboundedNotes = unique(info.unboundedNotes!);
  info.opaque = unique(info.opaque!);
  info.settings = unique(info.settings!);
  info.innerKinds = [...new Set(info.innerKinds!)].filter((k) => k !== info.kind);
  if (info.tablesWritten.length > 0 || info.settings.length > 0 || !READ_ONLY_KINDS.has(info.kind)) info.readOnly = false;
  return info;
}

const READ_ONLY_KINDS = new Set<StatementKind>([
  'select',
  'show',
  'explain',
  'transaction',
  'listen',
  'unlisten',
  'execute',
  'deallocate',
  'copy',
  'prepare',
]);

function classify(info: StatementInfo, type: string, body: Node): void {
  const simple: Record<string, StatementKind> = {
    SelectStmt: 'select',
    InsertStmt: 'insert',
    UpdateStmt: 'update',
    DeleteStmt: 'delete',
    MergeStmt: 'merge',
    CopyStmt: 'copy',
    VariableSetStmt: 'set',
    VariableShowStmt: 'show',
    TransactionStmt: 'transaction',
    CallStmt: 'call',
    DoStmt: 'do',
    ListenStmt: 'listen',
    NotifyStmt: 'notify',
    UnlistenStmt: 'unlisten',
    ExplainStmt: 'explain',
    PrepareStmt: 'prepare',
    ExecuteStmt: 'execute',
    DeallocateStmt: 'deallocate',
    LockStmt: 'lock',
    TruncateStmt: 'truncate',
    VacuumStmt: 'maintenance',
    ClusterStmt: 'maintenance',
    ReindexStmt: 'maintenance',
    CheckPointStmt: 'maintenance',
    DiscardStmt: 'set',
  };
  if (type === 'GrantStmt' || type === 'GrantRoleStmt') {
    info.kind = body.is_grant ? 'grant' : 'revoke';
    return;
  }
  if (type === 'SelectStmt' && body.intoClause) {
    info.kind = 'ddl';
    info.ddl = 'create table';
    return;
  }
  if (type === 'DeclareCursorStmt' && body.query) {
    // A cursor is what it runs: DECLARE ... FOR SELECT reads.
    classify(info, ...only(body.query as Node));
    return;
  }
  if (type === 'FetchStmt' || type === 'ClosePortalStmt') {
    info.kind = 'select';
    return;
  }
  if (type === 'ExplainStmt') {
    // EXPLAIN ANALYZE runs the statement: it is what it explains.
    const analyze = asArray(body.options).some((o) => (o as Node).DefElem && ((o as Node).DefElem as Node).defname === 'analyze');
    if (analyze && body.query) {
      classify(info, ...only(body.query as Node));
      return;
    }
  }
  const kind = simple[type];
  if (kind) {
    info.kind = kind;
    if (type === 'CopyStmt') {
      if (body.is_from) info.readOnly = false;
      const end: CopyTarget = body.is_program ? 'program' : body.filename ? 'file' : body.is_from ? 'stdin' : 'stdout';
      info.copyTargets!.push(end);
    }
    return;
  }
  const ddl = ddlOf(type, body);
  if (ddl) {
    info.kind = 'ddl';
    info.ddl = ddl;
  }
}

function ddlOf(type: string, body: Node): string | undefined {
  const object = (t: unknown) =>
    typeof t === 'string'
      ? t
          .replace(/^OBJECT_/, '')
          .toLowerCase()
          .replace(/_/g, ' ')
      : 'object';
  if (type === 'DropStmt') return `drop ${object(body.removeType)}`;
  if (type === 'RenameStmt') return `rename ${object(body.renameType)}`;
  if (type === 'CommentStmt') return `comment ${object(body.objtype)}`;
  if (type === 'AlterTableStmt') return `alter ${object(body.objtype)}`;
  if (type === 'CreateStmt') return 'create table';
  if (type === 'CreateTableAsStmt') return `create ${object(body.objtype)}`;
  if (type === 'IndexStmt') return 'create index';
  if (type === 'ViewStmt') return 'create view';
  if (type === 'CreateFunctionStmt') return body.is_procedure ? 'create procedure' : 'create function';
  if (type === 'CreateSchemaStmt') return 'create schema';
  if (type === 'CreateRoleStmt') return 'create role';
  if (type === 'AlterRoleStmt') return 'alter role';
  if (type === 'DropRoleStmt') return 'drop role';
  if (type === 'CreateExtensionStmt') return 'create extension';
  if (type === 'CreatedbStmt') return 'create database';
  if (type === 'DropdbStmt') return 'drop database';
  if (type === 'CreateTrigStmt') return 'create trigger';
  if (type === 'CreateSeqStmt') return 'create sequence';
  if (type === 'AlterSeqStmt') return 'alter sequence';
  if (type === 'RuleStmt') return 'create rule';
  if (type === 'CreatePolicyStmt') return 'create policy';
  if (type === 'AlterOwnerStmt') return `alter ${object(body.objectType)} owner`;
  if (type === 'AlterDefaultPrivilegesStmt') return 'alter default privileges';
  const m = /^(Create|Alter|Drop)(.*)Stmt$/.exec(type);
  if (m) return `${m[1]!.toLowerCase()} ${m[2]!.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}`;
  return undefined;
}

/** Relations the statement writes, wherever they appear (data-modifying CTEs included). */
function collectWriteTargets(node: unknown, written: Set<string>, info: StatementInfo): void {
  if (Array.isArray(node)) {
    for (const n of node) collectWriteTargets(n, written, info);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Node)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const v = value as Node;
      if (DATA_WRITES.has(key) && v.relation) {
        const name = relationName(v.relation as Node);
        written.add(name);
        info.innerKinds!.push(key.replace(/Stmt$/, '').toLowerCase() as StatementKind);
        const what = key.replace(/Stmt$/, '').toUpperCase();
        if (key === 'UpdateStmt' || key === 'DeleteStmt') {
          const others = asArray(key === 'UpdateStmt' ? v.fromClause : v.usingClause).length > 0;
          if (unbounded(v.whereClause, targetOf(v.relation as Node, others))) {
            info.unboundedWrites.push(name);
            info.unboundedNotes!.push(v.whereClause ? `${what} whose WHERE bounds nothing on ${name}` : `${what} without WHERE on ${name}`);
          }
        } else if (key === 'MergeStmt' && mergeUnbounded(v)) {
          info.unboundedWrites.push(name);
          info.unboundedNotes!.push(`MERGE updating or deleting matched rows without a bound on ${name}`);
        }
      } else if (key === 'CopyStmt' && v.relation && v.is_from) {
        written.add(relationName(v.relation as Node));
      } else if (key === 'TruncateStmt') {
        for (const r of asArray(v.relations)) written.add(relationName(((r as Node).RangeVar ?? r) as Node));
      } else if (key === 'intoClause' || key === 'into') {
        if (v.rel) written.add(relationName(v.rel as Node));
      } else if ((key === 'CreateStmt' || key === 'AlterTableStmt' || key === 'IndexStmt') && v.relation) {
        written.add(relationName(v.relation as Node));
      } else if (key === 'ViewStmt' && v.view) {
        written.add(relationName(v.view as Node));
      } else if (
        key === 'DropStmt' &&
        (v.removeType === 'OBJECT_TABLE' || v.removeType === 'OBJECT_VIEW' || v.removeType === 'OBJECT_MATVIEW')
      ) {
        for (const o of asArray(v.objects)) {
          const items = asArray(((o as Node).List as Node | undefined)?.items).map((i) => sval(i));
          if (items.length) written.add(items.join('.').toLowerCase());
        }
      }
    }
    collectWriteTargets(value, written, info);
  }
}

/** Tables read, columns and functions, anywhere in the tree. */
function walk(node: unknown, info: StatementInfo): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, info);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Node)) {
    if (key === 'RangeVar' && value && typeof value === 'object') {
      info.tablesRead.push(relationName(value as Node));
    } else if (key === 'ColumnRef' && value && typeof value === 'object') {
      info.columns.push(
        asArray((value as Node).fields)
          .map((f) => ((f as Node).A_Star ? '*' : sval(f)))
          .join('.')
          .toLowerCase(),
      );
    } else if ((key === 'FuncCall' || key === 'funccall') && value && typeof value === 'object') {
      // CallStmt keeps its FuncCall unwrapped under `funccall`.
      info.functions.push(
        asArray((value as Node).funcname)
          .map(sval)
          .join('.')
          .toLowerCase(),
      );
      inspectCall(value as Node, info, innerStatements);
    } else if (key === 'A_Expr' && value && typeof value === 'object') {
      inspectOperator(value as Node, info);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      const opaque = OPAQUE_STATEMENTS[key];
      if (opaque) info.opaque!.push(opaque);
      // Code bodies: what they run is analysed as part of this statement.
      const body =
        key === 'DoStmt'
          ? doBody(value as Node, innerStatements)
          : key === 'CreateFunctionStmt'
            ? functionBody(value as Node, info.text, innerStatements)
            : undefined;
      if (body) {
        for (const inner of body.statements) mergeInto(info, inner);
        info.opaque!.push(...body.opaque);
      }
      if (key === 'PrepareStmt' && (value as Node).query) {
        const inner = { ...info, kind: 'other' as StatementKind };
        classify(inner, ...only((value as Node).query as Node));
        info.innerKinds!.push(inner.kind);
      }
      const settings = settingsOf(key, value as Node, info.settingValues!);
      if (settings) info.settings!.push(...settings);
    }
    walk(value, info);
  }
}

/** SQL text found in a literal, analysed like a statement; undefined when it does not parse. */
function innerStatements(sql: string): StatementInfo[] | undefined {
  const r = analysePostgres(sql);
  return r.ok ? r.statements : undefined;
}

function relationName(rv: Node): string {
  const r = (rv.RangeVar as Node | undefined) ?? rv;
  return [r.catalogname, r.schemaname, r.relname]
    .filter((p) => typeof p === 'string' && p !== '')
    .join('.')
    .toLowerCase();
}

function unique(list: string[]): string[] {
  return [...new Set(list.filter((x) => x !== ''))];
}
