/**
 * Lineage over the raw PostgreSQL parse tree: for each statement, where every output column's data
 * comes from (source columns as `schema.table.column`), where data flows that the user could read
 * back later without masking (INSERT ... SELECT, UPDATE SET, CREATE TABLE AS, side-effect functions,
 * COPY to a file), and what cannot be followed at all (DO blocks, user-defined functions, builtins
 * that run SQL given as text).
 *
 * Pure: a parse tree and a catalog snapshot in, a plan out. The policy (./session.ts) decides which
 * sources are masked. The walk over-approximates on purpose: an ambiguous name takes the union of
 * everything it could mean, and anything unknown becomes a source starting with `?`, which policy
 * treats as masked. Over-reporting can only mask more, never leak.
 */
import { parseSync } from 'libpg-query';
import { asArray, only, sval, type Node } from '../sql/pg-ast.js';

/** Where one output column's values come from. */
export interface ColumnOrigin {
  /** `schema.table.column`, or `?what` for something lineage cannot follow. */
  sources: readonly string[];
  /** Computed from its sources (expression, aggregate, whole row) rather than a plain copy of one. */
  derived: boolean;
}

export interface CatalogColumn {
  attnum: number;
  name: string;
}

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, v view, m materialized view, f foreign, p partitioned. */
  kind: string;
  columns: CatalogColumn[];
  /** View definition (pg_get_viewdef) for v and m. */
  definition?: string;
  /** Parents of a partition or inheritance child: its rows are theirs, so their masks apply. */
  parents?: number[];
}

/** What the gateway knows about one database: its user relations and functions. */
export interface Catalog {
  relations: Map<number, CatalogRelation>;
  /** Lower-cased relation name -> relations of that name in any user schema. */
  byName: Map<string, CatalogRelation[]>;
  /** User-defined function names, lower-cased, both `name` and `schema.name`. */
  userFunctions: Set<string>;
  /**
   * Builtin functions without side effects (every overload immutable or stable), lower-cased: the
   * only functions data from masked columns may be handed to (an allow-list, read from pg_proc).
   */
  pureFunctions: Set<string>;
  /** Operators defined outside pg_catalog: user code behind an operator symbol. */
  userOperators: Set<string>;
}

export function buildCatalog(
  relations: CatalogRelation[],
  userFunctions: Iterable<string>,
  builtins: { pureFunctions: Iterable<string>; userOperators?: Iterable<string> },
): Catalog {
  const byOid = new Map<number, CatalogRelation>();
  const byName = new Map<string, CatalogRelation[]>();
  for (const r of relations) {
    byOid.set(r.oid, r);
    const key = r.name.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), r]);
  }
  return {
    relations: byOid,
    byName,
    userFunctions: new Set([...userFunctions].map((f) => f.toLowerCase())),
    pureFunctions: new Set([...builtins.pureFunctions].map((f) => f.toLowerCase())),
    userOperators: new Set(builtins.userOperators ?? []),
  };
}

export interface CopyOptions {
  format: 'text' | 'csv' | 'binary';
  delimiter: string;
  quote: string;
  escape: string;
  header: boolean;
  null: string;
}

export interface Flow {
  source: string;
  /** What the data would flow into, e.g. `INSERT INTO audit_copy`. */
  into: string;
}

export interface Refusal {
  reason: 'masking_unprovable' | 'masking_copy';
  message: string;
}

/** One statement's plan. */
export interface StatementLineage {
  /**
   * Output columns in order, or null when the statement returns no rows, or 'unknown' when the
   * shape cannot be predicted (then each column is judged by RowDescription and `fallback`).
   */
  outputs: ColumnOrigin[] | null | 'unknown';
  /** Output column names as the statement gives them, where lineage knows them (for people: policy test). */
  names?: string[];
  /** Union of everything the statement reads: used for columns lineage cannot place. */
  fallback: ColumnOrigin;
  /** Every source column the statement reads anywhere (WHERE included): errors may echo them. */
  reads: string[];
  flows: Flow[];
  refusals: Refusal[];
  copy?: CopyOptions & { toClient: boolean };
  /**
   * What this plan says depends on catalog facts that change under a running session: it expands
   * a view's definition, or names a relation the catalog does not know (created since it was read).
   * Such a statement is analysed again on a freshly validated catalog before it runs.
   */
  catalogSensitive: boolean;
  /** DECLARE CURSOR / SQL PREPARE: the name and the outputs a later FETCH / EXECUTE returns. */
  defines?: { kind: 'cursor' | 'prepared'; name: string; outputs: ColumnOrigin[] | 'unknown' };
}

/** Session state lineage needs: cursors and SQL prepared statements defined earlier. */
export interface LineageSession {
  cursors: Map<string, ColumnOrigin[] | 'unknown'>;
  prepared: Map<string, ColumnOrigin[] | 'unknown'>;
}

export type LineageResult = { ok: true; statements: StatementLineage[] } | { ok: false; error: string };

const CLEAN: ColumnOrigin = Object.freeze({ sources: Object.freeze([]) as readonly string[], derived: false });

/** Builtins that run SQL handed to them as text: what they read cannot be followed. */
const SQL_TEXT_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'ts_stat',
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_fetch',
  'dblink_send_query',
  'crosstab',
  // Logical decoding output and raw file reads carry row values past any lineage.
  'pg_logical_slot_get_changes',
  'pg_logical_slot_peek_changes',
  'pg_logical_slot_get_binary_changes',
  'pg_logical_slot_peek_binary_changes',
  'pg_read_file',
  'pg_read_binary_file',
  'lo_import',
]);
/**
 * Builtins pg_proc calls immutable or stable that still must not receive masked data: they hand
 * their argument to something outside the statement (a server file, another session's view).
 */
const LEAKY_PURE_FUNCTIONS = new Set(['pg_stat_file', 'pg_ls_dir', 'pg_read_file', 'pg_read_binary_file', 'lo_get', 'loread']);
/** Aggregates whose result says nothing about the values: `count(email)` is not masked. */
const VALUE_FREE_FUNCTIONS = new Set(['count', 'pg_catalog.count']);
/** System relations that hold copies of column values (planner statistics). */
const VALUE_HOLDING_SYSTEM = new Set(['pg_stats', 'pg_statistic', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data']);
/** DDL that creates code which could later read masked tables out of the gateway's sight. */
const CODE_DDL = new Set([
  'CreatePublicationStmt',
  'AlterPublicationStmt',
  'CreateSubscriptionStmt',
  'CreateForeignTableStmt',
  'CreateForeignServerStmt',
  'CreateUserMappingStmt',
  'ImportForeignSchemaStmt',
  'CreateFdwStmt',
  'CreateFunctionStmt',
  'CreateTrigStmt',
  'RuleStmt',
  'CreateEventTrigStmt',
  'DefineStmt',
  'CreateCastStmt',
  'CreateExtensionStmt',
  'CreatePLangStmt',
  'CreateTransformStmt',
  'CreateConversionStmt',
  'AlterFunctionStmt',
  'AlterExtensionStmt',
  'AlterExtensionContentsStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
]);

/** Parses and analyses a query string (one plan per statement). */
export function lineageOf(sql: string, catalog: Catalog, session: LineageSession): LineageResult {
  // Nothing but blanks and comments: PostgreSQL answers EmptyQueryResponse (pgjdbc's isValid()).
  if (isBlank(sql)) return { ok: true, statements: [] };
  let tree: { stmts?: Array<{ stmt?: Node }> };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  const out: StatementLineage[] = [];
  // Tables created earlier in the same string are known to the statements after them.
  let known = catalog;
  for (const raw of tree.stmts ?? []) {
    if (!raw.stmt) continue;
    const plan = new Analyser(known, session).statement(raw.stmt);
    const made = createdTable(raw.stmt);
    if (made) known = withRelation(known, made);
    // Later statements of the same string see the cursors and prepared statements defined before.
    // A name defined again is merged, not replaced: the backend refuses a duplicate and keeps the
    // first, or the first failed; either way what runs later is one of the two.
    if (plan.defines) {
      const map = plan.defines.kind === 'cursor' ? session.cursors : session.prepared;
      const known = map.get(plan.defines.name);
      map.set(plan.defines.name, known ? mergeOutputs(known, plan.defines.outputs) : plan.defines.outputs);
    }
    out.push(plan);
  }
  return { ok: true, statements: out };
}

let createdOid = 0;

/**
 * The table a plain CREATE TABLE (column definitions only) makes, as a catalog relation with an
 * OID no backend uses (negative); undefined for anything whose columns are not all spelled out.
 */
function createdTable(stmt: Node): CatalogRelation | undefined {
  const [type, body] = only(stmt);
  if (type !== 'CreateStmt' || body.inhRelations || body.ofTypename || body.partbound) return undefined;
  const rv = (body.relation ?? {}) as Node;
  const columns = asArray(body.tableElts)
    .map((e) => ((e as Node).ColumnDef as Node | undefined)?.colname)
    .filter((n): n is string => typeof n === 'string')
    .map((name, i) => ({ attnum: i + 1, name }));
  const schema = rv.relpersistence === 't' ? 'pg_temp' : String(rv.schemaname ?? 'public');
  return { oid: --createdOid, schema, name: String(rv.relname ?? ''), kind: 'r', columns };
}

/** A catalog that also knows `r` (same-named relations stay: a name may mean either). */
function withRelation(catalog: Catalog, r: CatalogRelation): Catalog {
  const byName = new Map(catalog.byName);
  const key = r.name.toLowerCase();
  byName.set(key, [r, ...(byName.get(key) ?? [])]);
  const relations = new Map(catalog.relations);
  relations.set(r.oid, r);
  return { ...catalog, relations, byName };
}

/** Whether a query string holds only whitespace, semicolons and (nested) comments. */
export function isBlank(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === ';' || /\s/.test(ch)) i++;
    else if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      let depth = 1;
      i += 2;
      while (i < sql.length && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      }
      // An unterminated comment is a syntax error for the server: not blank.
      if (depth > 0) return false;
    } else return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

interface Output {
  name: string;
  origin: ColumnOrigin;
}

/** A FROM item in scope: its name and columns; `unknown` when its columns cannot be listed. */
interface Item {
  alias: string;
  columns: Output[];
  /** For items whose columns are not known by name: the origin of any column asked for. */
  unknown?: ColumnOrigin;
}

interface Scope {
  items: Item[];
  ctes: Map<string, Output[] | 'unknown'>;
  parent?: Scope;
}

type Shape = Output[] | 'unknown';

class Analyser {
  private readonly reads = new Set<string>();
  private readonly flows: Flow[] = [];
  private readonly refusals: Refusal[] = [];
  private readonly all = new Set<string>();
  private sensitive = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly session: LineageSession,
    private readonly viewDepth = 0,
  ) {}

  statement(stmt: Node): StatementLineage {
    const [type, body] = only(stmt);
    const root: Scope = { items: [], ctes: new Map() };
    let outputs: StatementLineage['outputs'] = null;
    let copy: StatementLineage['copy'];
    let defines: StatementLineage['defines'];
    let names: string[] | undefined;
    switch (type) {
      case 'SelectStmt': {
        const shape = this.select(body, root);
        if (body.intoClause) {
          this.flowAll(shape, `SELECT INTO ${relName(((body.intoClause as Node).rel as Node) ?? {})}`);
        } else {
          outputs = toOrigins(shape);
          names = namesOf(shape);
        }
        break;
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const shape = this.write(type, body, root);
        outputs = shape === null ? null : toOrigins(shape);
        names = shape === null ? undefined : namesOf(shape);
        break;
      }
      case 'CopyStmt': {
        // COPY FROM a program or server file can read anything (other tables' files included).
        if (body.is_from && (body.is_program || body.filename)) {
          this.refuse('masking_unprovable', "COPY FROM a program or a server file could read masked data out of the gateway's sight");
        }
        const r = this.copy(body, root);
        if (r.toClient && !body.is_from) {
          outputs = toOrigins(r.shape);
          names = namesOf(r.shape);
          copy = { ...copyOptions(body), toClient: true };
        } else if (!body.is_from) this.flowAll(r.shape, body.is_program ? 'COPY TO PROGRAM' : 'COPY TO a file');
        break;
      }
      case 'CreateTableAsStmt':
        this.flowAll(
          this.query(body.query as Node, root),
          `CREATE ${String(body.objtype ?? '')
            .replace('OBJECT_', '')
            .toLowerCase()
            .replace('_', ' ')} ${relName(((body.into as Node)?.rel as Node) ?? {})}`,
        );
        break;
      case 'ViewStmt':
        this.flowAll(this.query(body.query as Node, root), `CREATE VIEW ${relName(body.view as Node)}`);
        break;
      case 'ExplainStmt':
        // The plan text holds no row values; an ANALYZEd statement still runs, so its flows count.
        this.statementInto(body.query as Node);
        outputs = [CLEAN];
        break;
      case 'DeclareCursorStmt': {
        const shape = this.query(body.query as Node, root);
        defines = {
          kind: 'cursor',
          name: String(body.portalname ?? ''),
          outputs: shape === 'unknown' ? 'unknown' : shape.map((o) => o.origin),
        };
        break;
      }
      case 'FetchStmt': {
        if (body.ismove) break;
        const known = this.session.cursors.get(String(body.portalname ?? ''));
        outputs = known ?? 'unknown';
        // Columns lineage cannot place fall back to everything the cursor may read: unknown = masked.
        if (!known || known === 'unknown') this.note(`?cursor ${String(body.portalname ?? '')}`);
        else for (const o of known) o.sources.forEach((s) => this.note(s));
        break;
      }
      case 'PrepareStmt': {
        const inner = new Analyser(this.catalog, this.session, this.viewDepth).statement(body.query as Node);
        this.absorb(inner);
        defines = { kind: 'prepared', name: String(body.name ?? ''), outputs: inner.outputs === null ? [] : inner.outputs };
        break;
      }
      case 'ExecuteStmt': {
        const known = this.session.prepared.get(String(body.name ?? ''));
        outputs = known ?? 'unknown';
        if (!known || known === 'unknown') this.note(`?prepared ${String(body.name ?? '')}`);
        else for (const o of known) o.sources.forEach((s) => this.note(s));
        // A parameter can go anywhere the prepared statement puts it: into a table, a function with
        // a side effect, or straight back out as a clear column (`prepare p as select $1`).
        for (const p of asArray(body.params)) this.flowExpr(p as Node, root, `EXECUTE ${String(body.name ?? '')}`);
        break;
      }
      case 'DoStmt':
        this.refuse('masking_unprovable', "a DO block could read masked data out of the gateway's sight");
        break;
      case 'CallStmt':
        this.refuse('masking_unprovable', "a procedure could read masked data out of the gateway's sight");
        break;
      case 'AlterTableStmt':
      case 'AlterObjectSchemaStmt':
      case 'RenameStmt': {
        // Renaming or moving a table (or its schema) would let rules written for the old names miss it.
        const rel = body.relation as Node | undefined;
        const moved = rel ? this.lookup(rel) : [];
        if (type === 'RenameStmt' && body.renameType === 'OBJECT_SCHEMA') {
          const schema = String(body.subname ?? '');
          for (const r of this.catalog.relations.values()) if (r.schema === schema) moved.push(r);
        }
        // A child's columns carry its parents' sources: detaching it (NO INHERIT) is caught too.
        for (const r of moved)
          for (const c of this.relationColumns(r))
            for (const src of c.origin.sources) this.flows.push({ source: src, into: `ALTER ${r.name}` });
        break;
      }
      default:
        if (CODE_DDL.has(type))
          this.refuse(
            'masking_unprovable',
            'creating functions, triggers, rules, extensions, publications or foreign tables is not allowed where data is masked',
          );
        // Other statements (CREATE INDEX, CLUSTER, VACUUM, REINDEX, ...) read the relations they
        // name whole: their errors can quote any value (`Key (secret)=(...) is duplicated`).
        this.noteRelations(body, 0);
        break;
    }
    return {
      outputs,
      fallback: { sources: [...this.all], derived: true },
      reads: [...this.reads],
      flows: this.flows,
      refusals: this.refusals,
      catalogSensitive: this.sensitive,
      ...(names ? { names } : {}),
      ...(copy ? { copy } : {}),
      ...(defines ? { defines } : {}),
    };
  }

  /** Every column of every relation named anywhere in a statement counts as read. */
  private noteRelations(node: unknown, depth: number): void {
    if (!node || typeof node !== 'object' || depth > 64) return;
    if (Array.isArray(node)) {
      for (const n of node) this.noteRelations(n, depth + 1);
      return;
    }
    // A RangeVar, wrapped or embedded as a field (`relation: { relname, ... }`).
    const rv = ((node as Node).RangeVar ?? (typeof (node as Node).relname === 'string' ? node : undefined)) as Node | undefined;
    if (rv) {
      for (const r of this.lookup(rv)) for (const c of this.relationColumns(r)) c.origin.sources.forEach((src) => this.note(src));
      return;
    }
    for (const v of Object.values(node)) this.noteRelations(v, depth + 1);
  }

  /** EXPLAIN's statement: only its flows and refusals matter. */
  private statementInto(stmt: Node | undefined): void {
    if (!stmt) return;
    this.absorb(new Analyser(this.catalog, this.session, this.viewDepth).statement(stmt));
  }

  private absorb(inner: StatementLineage): void {
    if (inner.catalogSensitive) this.sensitive = true;
    this.flows.push(...inner.flows);
    this.refusals.push(...inner.refusals);
    for (const s of inner.reads) this.note(s);
  }

  private refuse(reason: Refusal['reason'], message: string): void {
    this.refusals.push({ reason, message });
  }

  private note(source: string): void {
    this.reads.add(source);
    this.all.add(source);
  }

  private flowAll(shape: Shape, into: string): void {
    if (shape === 'unknown') {
      this.flows.push({ source: '?unknown columns', into });
      return;
    }
    for (const o of shape) for (const s of o.origin.sources) this.flows.push({ source: s, into });
  }

  // -------------------------------------------------------------------------------------------
  // queries

  /** Any query node (SelectStmt, or a DML with RETURNING inside a CTE). */
  private query(node: Node | undefined, scope: Scope): Shape {
    if (!node) return [];
    const [type, body] = only(node);
    if (type === 'SelectStmt') return this.select(body, scope);
    if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
      const out = this.write(type, body, scope);
      return out ?? [];
    }
    return 'unknown';
  }

  private withClause(body: Node, scope: Scope): Scope {
    const w = body.withClause as Node | undefined;
    if (!w) return scope;
    const inner: Scope = { items: [], ctes: new Map(), parent: scope };
    for (const c of asArray(w.ctes)) {
      const cte = ((c as Node).CommonTableExpr ?? c) as Node;
      const name = String(cte.ctename ?? '').toLowerCase();
      const aliases = asArray(cte.aliascolnames).map(sval);
      // A recursive CTE refers to itself: start from nothing known, widen until nothing changes.
      let shape: Shape;
      if (w.recursive) {
        inner.ctes.set(name, 'unknown');
        // The non-recursive term (left of the UNION) first, then widen with the whole query.
        const q = ((cte.ctequery as Node)?.SelectStmt ?? {}) as Node;
        const seed =
          q.op && q.op !== 'SETOP_NONE' ? { SelectStmt: ((q.larg as Node)?.SelectStmt ?? q.larg) as Node } : (cte.ctequery as Node);
        shape = this.query(seed, inner);
        for (let i = 0; i < 4 && shape !== 'unknown'; i++) {
          inner.ctes.set(name, renamed(shape, aliases));
          const next = this.query(cte.ctequery as Node, inner);
          if (next === 'unknown') {
            shape = 'unknown';
            break;
          }
          const merged = mergeShapes(shape, next);
          if (sameShape(merged, shape)) break;
          shape = merged;
        }
      } else shape = this.query(cte.ctequery as Node, inner);
      inner.ctes.set(name, shape === 'unknown' ? 'unknown' : renamed(shape, aliases));
    }
    return inner;
  }

  private select(body: Node, outer: Scope): Shape {
    const scope0 = this.withClause(body, outer);
    if (body.op && body.op !== 'SETOP_NONE') {
      const l = this.select(((body.larg as Node)?.SelectStmt ?? body.larg ?? {}) as Node, scope0);
      const r = this.select(((body.rarg as Node)?.SelectStmt ?? body.rarg ?? {}) as Node, scope0);
      if (l === 'unknown' || r === 'unknown' || l.length !== r.length) return 'unknown';
      return l.map((o, i) => ({ name: o.name, origin: union([o.origin, r[i]!.origin], false) }));
    }
    if (body.valuesLists) {
      const rows = asArray(body.valuesLists).map((row) => asArray(((row as Node).List as Node)?.items ?? row));
      const width = rows[0]?.length ?? 0;
      const cols: Output[] = [];
      for (let i = 0; i < width; i++) {
        cols.push({
          name: `column${i + 1}`,
          origin: union(
            rows.map((r) => this.expr(r[i] as Node, scope0)),
            false,
          ),
        });
      }
      return cols;
    }
    const scope: Scope = { items: [], ctes: new Map(), parent: scope0 };
    for (const f of asArray(body.fromClause)) scope.items.push(...this.fromItem(f as Node, scope));
    // Everything that only filters or orders still reads: errors there can echo values.
    for (const key of [
      'whereClause',
      'havingClause',
      'groupClause',
      'sortClause',
      'distinctClause',
      'windowClause',
      'limitCount',
      'limitOffset',
    ]) {
      this.exprs(body[key], scope);
    }
    const out: Output[] = [];
    let unknownShape = false;
    for (const t of asArray(body.targetList)) {
      const rt = ((t as Node).ResTarget ?? t) as Node;
      const val = rt.val as Node | undefined;
      const ref = val?.ColumnRef as Node | undefined;
      const fields = ref ? asArray(ref.fields) : [];
      if (ref && fields.length > 0 && (fields[fields.length - 1] as Node).A_Star) {
        const star = this.star(fields.slice(0, -1).map(sval), scope);
        if (star === 'unknown') unknownShape = true;
        else out.push(...star);
        continue;
      }
      out.push({ name: (rt.name as string | undefined) ?? outputName(val), origin: this.expr(val, scope) });
    }
    return unknownShape ? 'unknown' : out;
  }

  private star(qualifier: string[], scope: Scope): Shape {
    const items = qualifier.length === 0 ? scope.items : this.findItems(qualifier, scope);
    if (qualifier.length > 0 && items.length === 0) {
      this.note(`?relation ${qualifier.join('.')}`);
      return 'unknown';
    }
    const out: Output[] = [];
    let unknown = false;
    for (const item of items) {
      if (item.unknown) {
        unknown = true;
        item.unknown.sources.forEach((s) => this.note(s));
      }
      for (const c of item.columns) {
        c.origin.sources.forEach((s) => this.note(s));
        out.push(c);
      }
    }
    return unknown ? 'unknown' : out;
  }

  private fromItem(node: Node, scope: Scope): Item[] {
    const [type, body] = only(node);
    switch (type) {
      case 'RangeVar':
        return [this.relationItem(body, scope)];
      case 'JoinExpr': {
        const items = [...this.fromItem(body.larg as Node, scope), ...this.fromItem(body.rarg as Node, scope)];
        const inner: Scope = { ...scope, items: [...scope.items, ...items] };
        this.exprs(body.quals, inner);
        const alias = body.alias as Node | undefined;
        if (alias) {
          const columns = items.flatMap((i) => i.columns);
          const unknowns = items.filter((i) => i.unknown).map((i) => i.unknown!);
          return [
            {
              alias: String(alias.aliasname).toLowerCase(),
              columns: renamed(columns, asArray(alias.colnames).map(sval)),
              ...(unknowns.length ? { unknown: union(unknowns, true) } : {}),
            },
          ];
        }
        return items;
      }
      case 'RangeSubselect': {
        const shape = this.query(body.subquery as Node, { items: [], ctes: new Map(), parent: scope });
        const alias = (body.alias as Node | undefined) ?? {};
        const name = String(alias.aliasname ?? '').toLowerCase();
        if (shape === 'unknown') return [{ alias: name, columns: [], unknown: this.fallbackOrigin() }];
        return [{ alias: name, columns: renamed(shape, asArray(alias.colnames).map(sval)) }];
      }
      case 'RangeFunction': {
        const inner: Scope = { items: [], ctes: new Map(), parent: scope };
        const origins: ColumnOrigin[] = [];
        let name = '';
        for (const f of asArray(body.functions)) {
          const items = asArray(((f as Node).List as Node)?.items ?? f);
          const call = items[0] as Node | undefined;
          origins.push(this.expr(call, inner));
          const fc = call?.FuncCall as Node | undefined;
          if (fc && !name) name = asArray(fc.funcname).map(sval).pop() ?? '';
        }
        const alias = body.alias as Node | undefined;
        return [{ alias: String(alias?.aliasname ?? name).toLowerCase(), columns: [], unknown: union(origins, true) }];
      }
      case 'RangeTableSample':
        // TABLESAMPLE reads its relation like any FROM item (the alias is on the relation).
        return this.fromItem(body.relation as Node, scope);
      case 'RangeTableFunc':
      case 'JsonTable': {
        const origin = this.expr(body as unknown as Node, { items: [], ctes: new Map(), parent: scope });
        const alias = body.alias as Node | undefined;
        return [{ alias: String(alias?.aliasname ?? '').toLowerCase(), columns: [], unknown: union([origin], true) }];
      }
      default: {
        this.note(`?from ${type}`);
        return [{ alias: '', columns: [], unknown: { sources: [`?from ${type}`], derived: true } }];
      }
    }
  }

  /** A builtin without side effects (unqualified, or qualified with a system schema). */
  private isPure(name: string): boolean {
    const parts = name.split('.');
    const bare = parts[parts.length - 1]!;
    if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog' && parts[0] !== 'information_schema')) return false;
    return this.catalog.pureFunctions.has(bare) && !LEAKY_PURE_FUNCTIONS.has(bare);
  }

  private fallbackOrigin(): ColumnOrigin {
    return { sources: ['?unknown columns'], derived: true };
  }

  private relationItem(rv: Node, scope: Scope): Item {
    const name = String(rv.relname ?? '');
    const schema = rv.schemaname as string | undefined;
    const alias = String((rv.alias as Node | undefined)?.aliasname ?? name).toLowerCase();
    const colAliases = asArray((rv.alias as Node | undefined)?.colnames).map(sval);
    if (!schema) {
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const cte = s.ctes.get(name.toLowerCase());
        if (cte === 'unknown') return { alias, columns: [], unknown: this.fallbackOrigin() };
        if (cte) return { alias, columns: renamed(cte, colAliases) };
      }
    }
    const rels = this.lookup(rv);
    if (rels.some((r) => r.definition !== undefined)) this.sensitive = true;
    if (rels.length === 0) {
      const sys = schema === 'pg_catalog' || schema === 'information_schema' || (!schema && name.startsWith('pg_'));
      if (sys && !VALUE_HOLDING_SYSTEM.has(name.toLowerCase())) return { alias, columns: [], unknown: CLEAN };
      this.sensitive = true;
      const what = sys ? `?statistics ${name}` : `?relation ${schema ? `${schema}.` : ''}${name}`;
      return { alias, columns: [], unknown: { sources: [what], derived: false } };
    }
    // Unqualified and present in several schemas: any of them, column by column.
    const columns: Output[] = [];
    const names = new Map<string, ColumnOrigin[]>();
    const order: string[] = [];
    for (const r of rels) {
      this.relationColumns(r).forEach((c) => {
        if (!names.has(c.name)) {
          names.set(c.name, []);
          order.push(c.name);
        }
        names.get(c.name)!.push(c.origin);
      });
    }
    for (const n of order) columns.push({ name: n, origin: union(names.get(n)!, false) });
    // Same-named relations of different shapes: a star cannot be expanded position by position.
    const ambiguous = rels.length > 1 && !sameColumns(rels);
    return {
      alias,
      columns: renamed(columns, colAliases),
      ...(ambiguous
        ? {
            unknown: union(
              columns.map((c) => c.origin),
              true,
            ),
          }
        : {}),
    };
  }

  /** Relations a RangeVar may name: exact when qualified, any user schema when not. */
  private lookup(rv: Node): CatalogRelation[] {
    const name = String(rv.relname ?? '').toLowerCase();
    const schema = (rv.schemaname as string | undefined)?.toLowerCase();
    const all = this.catalog.byName.get(name) ?? [];
    if (!schema) return all;
    // `pg_temp` is the session's own temporary schema (pg_temp_N): any of them, over-approximating.
    if (schema === 'pg_temp') return all.filter((r) => /^pg_temp_\d+$/.test(r.schema));
    return all.filter((r) => r.schema.toLowerCase() === schema);
  }

  /** A relation's columns with their origins; a view's follow its definition. */
  relationColumns(r: CatalogRelation): Output[] {
    const own = (c: CatalogColumn): string => `${r.schema}.${r.name}.${c.name}`;
    if (!r.definition)
      return r.columns.map((c) => ({
        name: c.name,
        origin: { sources: [own(c), ...ancestorSources(r, c.name, this.catalog)], derived: false },
      }));
    const shape = viewShape(r, this.catalog, this.viewDepth);
    return r.columns.map((c, i) => {
      const o =
        shape === 'unknown'
          ? { sources: ['?view ' + r.name], derived: true }
          : (shape[i] ?? { sources: ['?view ' + r.name], derived: true });
      return { name: c.name, origin: { sources: [own(c), ...o.sources], derived: o.derived } };
    });
  }

  // -------------------------------------------------------------------------------------------
  // writes

  private write(type: string, body: Node, outer: Scope): Shape | null {
    const scope0 = this.withClause(body, outer);
    const target = body.relation as Node;
    const targetName = relName(target);
    const targetItem = this.relationItem(target, { items: [], ctes: new Map() });
    // Triggers on the target see whole rows and may echo them in notices or errors.
    for (const c of targetItem.columns) c.origin.sources.forEach((src) => this.note(src));
    targetItem.unknown?.sources.forEach((src) => this.note(src));
    const scope: Scope = { items: [targetItem], ctes: new Map(), parent: scope0 };
    const into = `${type.replace('Stmt', '').toUpperCase()} ${targetName}`;
    if (type === 'InsertStmt') {
      if (body.selectStmt) this.flowAll(this.query(body.selectStmt as Node, scope0), `INSERT INTO ${targetName}`);
      const oc = body.onConflictClause as Node | undefined;
      if (oc) {
        const excluded: Item = { ...targetItem, alias: 'excluded' };
        const s: Scope = { items: [targetItem, excluded], ctes: new Map(), parent: scope0 };
        this.flowExprs(oc.targetList, s, into);
        this.exprs(oc.whereClause, s);
      }
    } else if (type === 'UpdateStmt') {
      for (const f of asArray(body.fromClause)) scope.items.push(...this.fromItem(f as Node, scope));
      this.flowExprs(body.targetList, scope, into);
      this.exprs(body.whereClause, scope);
    } else if (type === 'DeleteStmt') {
      for (const f of asArray(body.usingClause)) scope.items.push(...this.fromItem(f as Node, scope));
      this.exprs(body.whereClause, scope);
    } else if (type === 'MergeStmt') {
      scope.items.push(...this.fromItem(body.sourceRelation as Node, scope));
      this.exprs(body.joinCondition, scope);
      for (const w of asArray(body.mergeWhenClauses)) {
        const mw = ((w as Node).MergeWhenClause ?? w) as Node;
        this.exprs(mw.condition, scope);
        this.flowExprs(mw.targetList, scope, into);
        for (const v of asArray(mw.values)) this.flowExpr(v as Node, scope, into);
      }
    }
    const returning = asArray(body.returningList ?? (body.returningClause as Node | undefined)?.exprs);
    if (returning.length === 0) return null;
    return this.select({ targetList: returning }, scope);
  }

  private flowExprs(list: unknown, scope: Scope, into: string): void {
    for (const t of asArray(list)) {
      const rt = ((t as Node).ResTarget ?? t) as Node;
      this.flowExpr(rt.val as Node, scope, into);
    }
  }

  private flowExpr(node: Node | undefined, scope: Scope, into: string): void {
    for (const s of this.expr(node, scope).sources) this.flows.push({ source: s, into });
  }

  private copy(body: Node, scope: Scope): { shape: Shape; toClient: boolean } {
    const toClient = !body.filename && !body.is_program;
    if (body.query) return { shape: this.query(body.query as Node, scope), toClient };
    if (!body.relation) return { shape: [], toClient };
    const item = this.relationItem(body.relation as Node, scope);
    const wanted = asArray(body.attlist).map(sval);
    if (wanted.length === 0) return { shape: item.unknown ? 'unknown' : item.columns, toClient };
    return {
      shape: wanted.map((w) => ({
        name: w,
        origin: item.columns.find((c) => c.name === w)?.origin ?? item.unknown ?? this.fallbackOrigin(),
      })),
      toClient,
    };
  }

  // -------------------------------------------------------------------------------------------
  // expressions

  private exprs(list: unknown, scope: Scope): void {
    if (Array.isArray(list)) for (const n of list) this.expr(n as Node, scope);
    else if (list && typeof list === 'object') this.expr(list as Node, scope);
  }

  /** Lineage of one expression; records what it reads. */
  private expr(node: Node | undefined, scope: Scope): ColumnOrigin {
    if (!node || typeof node !== 'object') return CLEAN;
    if (Array.isArray(node))
      return union(
        node.map((n) => this.expr(n as Node, scope)),
        true,
      );
    // A struct embedded without its node type (a window's OVER, XMLTABLE's fields, a type name):
    // every field is part of the expression, not only the first.
    const keys = Object.keys(node);
    if (keys.length !== 1 || !/^[A-Z]/.test(keys[0]!)) {
      return union(
        Object.values(node)
          .filter((v) => v && typeof v === 'object')
          .map((v) => this.expr(v as Node, scope)),
        true,
      );
    }
    const [type, body] = only(node);
    switch (type) {
      case 'ColumnRef':
        return this.columnRef(asArray(body.fields), scope);
      case 'ResTarget':
        return this.expr(body.val as Node, scope);
      case 'TypeCast':
        // A cast keeps the value (a text cast of an email is still the email).
        return this.expr(body.arg as Node, scope);
      case 'SubLink': {
        const shape = this.query(body.subselect as Node, { items: [], ctes: new Map(), parent: scope });
        const test = body.testexpr ? this.expr(body.testexpr as Node, scope) : CLEAN;
        const inner =
          shape === 'unknown'
            ? this.fallbackOrigin()
            : union(
                shape.map((o) => o.origin),
                shape.length !== 1,
              );
        if (body.subLinkType === 'EXISTS_SUBLINK') return CLEAN;
        if (body.subLinkType === 'EXPR_SUBLINK' || body.subLinkType === 'ARRAY_SUBLINK')
          return union([inner, test], body.subLinkType === 'ARRAY_SUBLINK');
        return union([inner, test], true);
      }
      case 'FuncCall': {
        const name = asArray(body.funcname).map(sval).join('.').toLowerCase();
        const bare = name.split('.').pop() ?? name;
        const args = union(
          [
            this.expr(body.args as unknown as Node, scope),
            this.expr(body.agg_order as unknown as Node, scope),
            this.expr(body.agg_filter as Node, scope),
            this.expr(body.over as Node, scope),
          ],
          true,
        );
        if (SQL_TEXT_FUNCTIONS.has(bare))
          this.refuse('masking_unprovable', `${name}() runs SQL given as text, which masking cannot follow`);
        if (this.catalog.userFunctions.has(name) || (!name.includes('.') && this.catalog.userFunctions.has(bare))) {
          this.refuse('masking_unprovable', `${name}() is a user-defined function and could read masked data out of the gateway's sight`);
          this.note(`?function ${name}`);
          return { sources: [`?function ${name}`, ...args.sources], derived: true };
        }
        // A function with a side effect (anything not known pure) could store what it is given
        // where it can be read back unmasked: setval, advisory locks, replication origins, ...
        if (args.sources.length > 0 && !this.isPure(name)) {
          for (const s of args.sources) this.flows.push({ source: s, into: `${name}()` });
        }
        if (VALUE_FREE_FUNCTIONS.has(name) && !body.over) return CLEAN;
        return args;
      }
      case 'A_Const':
      case 'ParamRef':
        return CLEAN;
      case 'SelectStmt':
        return union(toList(this.select(body, scope)), true);
      case 'A_Expr': {
        const op = asArray(body.name).map(sval).pop() ?? '';
        if (this.catalog.userOperators.has(op)) {
          this.refuse('masking_unprovable', `operator ${op} is user-defined and could read masked data out of the gateway's sight`);
        }
        return union([this.expr(body.lexpr as Node, scope), this.expr(body.rexpr as Node, scope)], true);
      }
      default: {
        // Operators, CASE, COALESCE, ROW(...), arrays, indirection: computed from whatever is inside.
        const parts: ColumnOrigin[] = [];
        for (const v of Object.values(body)) {
          if (v && typeof v === 'object') parts.push(this.expr(v as Node, scope));
        }
        return union(parts, true);
      }
    }
  }

  private columnRef(fields: unknown[], scope: Scope): ColumnOrigin {
    const names = fields.map((f) => ((f as Node).A_Star ? '*' : sval(f)));
    if (names[names.length - 1] === '*') {
      const star = this.star(names.slice(0, -1), scope);
      return star === 'unknown'
        ? this.fallbackOrigin()
        : union(
            star.map((o) => o.origin),
            true,
          );
    }
    const found = this.resolve(names, scope);
    found.sources.forEach((s) => this.note(s));
    return found;
  }

  private resolve(names: string[], scope: Scope): ColumnOrigin {
    const col = names[names.length - 1]!;
    const qualifier = names.slice(0, -1);
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const items = qualifier.length === 0 ? s.items : s.items.filter((i) => matchesQualifier(i, qualifier));
      const hits: ColumnOrigin[] = [];
      for (const item of items) {
        const c = item.columns.filter((x) => x.name === col);
        if (c.length) hits.push(...c.map((x) => x.origin));
        else if (item.unknown) hits.push(item.unknown);
      }
      if (hits.length) return union(hits, false);
    }
    // `u` alone: a whole-row reference; `u.email` where u is a composite column: its field.
    if (qualifier.length === 0) {
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const item = s.items.find((i) => i.alias === col.toLowerCase());
        if (item) return union([...item.columns.map((c) => c.origin), ...(item.unknown ? [item.unknown] : [])], true);
      }
    } else {
      // Not a FROM item: a field of a composite column, e.g. `(addr).street` written `addr.street`.
      const whole = this.resolve(qualifier, scope);
      return whole.sources.length ? { sources: whole.sources, derived: true } : CLEAN;
    }
    return { sources: [`?name ${names.join('.')}`], derived: true };
  }

  private findItems(qualifier: string[], scope: Scope): Item[] {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const items = s.items.filter((i) => matchesQualifier(i, qualifier));
      if (items.length) return items;
    }
    return [];
  }
}

/** The same-named columns of a relation's parents, grandparents, ... (partitions, inheritance). */
function ancestorSources(r: CatalogRelation, column: string, catalog: Catalog, depth = 0): string[] {
  if (!r.parents || depth > 32) return [];
  const out: string[] = [];
  for (const oid of r.parents) {
    const p = catalog.relations.get(oid);
    if (!p) {
      out.push(`?parent ${oid}`);
      continue;
    }
    if (p.columns.some((c) => c.name === column)) out.push(`${p.schema}.${p.name}.${column}`);
    out.push(...ancestorSources(p, column, catalog, depth + 1));
  }
  return out;
}

/** Origins of a catalog relation's columns, in catalog order (a view's follow its definition). */
export function relationOrigins(r: CatalogRelation, catalog: Catalog): ColumnOrigin[] {
  return new Analyser(catalog, { cursors: new Map(), prepared: new Map() }).relationColumns(r).map((c) => c.origin);
}

/** A view's output columns, from its definition (memoised per catalog; views over views nest). */
const viewCache = new WeakMap<Catalog, Map<number, ColumnOrigin[] | 'unknown'>>();

function viewShape(r: CatalogRelation, catalog: Catalog, depth: number): ColumnOrigin[] | 'unknown' {
  let memo = viewCache.get(catalog);
  if (!memo) viewCache.set(catalog, (memo = new Map()));
  const hit = memo.get(r.oid);
  if (hit) return hit;
  if (depth > 16) return 'unknown';
  memo.set(r.oid, 'unknown'); // a cycle resolves to unknown (masked), never to clean
  let result: ColumnOrigin[] | 'unknown' = 'unknown';
  try {
    const tree = parseSync(r.definition!) as { stmts?: Array<{ stmt?: Node }> };
    const stmt = tree.stmts?.[0]?.stmt;
    if (stmt) {
      const plan = new Analyser(catalog, { cursors: new Map(), prepared: new Map() }, depth + 1).statement(stmt);
      if (Array.isArray(plan.outputs)) result = plan.outputs;
    }
  } catch {
    result = 'unknown';
  }
  memo.set(r.oid, result);
  return result;
}

function matchesQualifier(item: Item, qualifier: string[]): boolean {
  return item.alias === qualifier[qualifier.length - 1]!.toLowerCase();
}

function sameColumns(rels: CatalogRelation[]): boolean {
  const first = rels[0]!.columns.map((c) => c.name).join(',');
  return rels.every((r) => r.columns.map((c) => c.name).join(',') === first);
}

export function union(origins: ColumnOrigin[], derived: boolean): ColumnOrigin {
  const sources = new Set<string>();
  let anyDerived = derived;
  for (const o of origins) {
    for (const s of o.sources) sources.add(s);
    if (o.derived && o.sources.length) anyDerived = true;
  }
  if (sources.size === 0) return CLEAN;
  return { sources: [...sources], derived: anyDerived };
}

function mergeOutputs(a: ColumnOrigin[] | 'unknown', b: ColumnOrigin[] | 'unknown'): ColumnOrigin[] | 'unknown' {
  if (a === 'unknown' || b === 'unknown' || a.length !== b.length) return 'unknown';
  return a.map((o, i) => union([o, b[i]!], o.derived || b[i]!.derived));
}

function toOrigins(shape: Shape): ColumnOrigin[] | 'unknown' {
  return shape === 'unknown' ? 'unknown' : shape.map((o) => o.origin);
}

function namesOf(shape: Shape): string[] | undefined {
  return shape === 'unknown' ? undefined : shape.map((o) => o.name);
}

function toList(shape: Shape): ColumnOrigin[] {
  return shape === 'unknown' ? [{ sources: ['?unknown columns'], derived: true }] : shape.map((o) => o.origin);
}

function renamed(cols: Output[], aliases: string[]): Output[] {
  if (aliases.length === 0) return cols;
  return cols.map((c, i) => ({ name: aliases[i] ?? c.name, origin: c.origin }));
}

function mergeShapes(a: Output[], b: Output[]): Shape {
  if (a.length !== b.length) return 'unknown';
  return a.map((o, i) => ({ name: o.name, origin: union([o.origin, b[i]!.origin], false) }));
}

function sameShape(a: Shape, b: Shape): boolean {
  if (a === 'unknown' || b === 'unknown') return a === b;
  return a.every((o, i) => o.origin.sources.length === b[i]!.origin.sources.length && o.origin.derived === b[i]!.origin.derived);
}

function outputName(val: Node | undefined): string {
  if (!val) return '?column?';
  const [type, body] = only(val);
  if (type === 'ColumnRef') return asArray(body.fields).map(sval).pop() ?? '?column?';
  if (type === 'FuncCall') return asArray(body.funcname).map(sval).pop() ?? '?column?';
  if (type === 'TypeCast') return outputName(body.arg as Node);
  return '?column?';
}

function copyOptions(body: Node): CopyOptions {
  const o: CopyOptions = { format: 'text', delimiter: '\t', quote: '"', escape: '"', header: false, null: '\\N' };
  let delimiterSet = false;
  let nullSet = false;
  let escapeSet = false;
  for (const d of asArray(body.options)) {
    const e = ((d as Node).DefElem ?? d) as Node;
    const name = String(e.defname);
    const arg = e.arg as Node | undefined;
    const value = arg ? sval(arg) || String((arg.Integer as Node)?.ival ?? (arg.Boolean as Node)?.boolval ?? '') : 'true';
    if (name === 'format') o.format = value.toLowerCase() as CopyOptions['format'];
    else if (name === 'delimiter') {
      o.delimiter = value;
      delimiterSet = true;
    } else if (name === 'null') {
      o.null = value;
      nullSet = true;
    } else if (name === 'quote') o.quote = value;
    else if (name === 'escape') {
      o.escape = value;
      escapeSet = true;
    } else if (name === 'header') o.header = !['false', 'off', '0'].includes(value.toLowerCase());
    else if (name === 'csv') o.format = 'csv';
    else if (name === 'binary') o.format = 'binary';
  }
  if (o.format === 'csv') {
    if (!delimiterSet) o.delimiter = ',';
    if (!nullSet) o.null = '';
    if (!escapeSet) o.escape = o.quote;
  }
  return o;
}

function relName(rv: Node): string {
  const r = ((rv.RangeVar as Node | undefined) ?? rv) as Node;
  return [r.schemaname, r.relname].filter((p) => typeof p === 'string' && p !== '').join('.');
}
