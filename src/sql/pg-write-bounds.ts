/**
 * Whether an UPDATE, DELETE or MERGE is bounded: does its condition pick rows of the target, or
 * could it touch every row? Read from the parse tree, conservatively: `WHERE true`, `WHERE 1 = 1`,
 * `WHERE id = id`, `WHERE x OR true`, a condition on other relations only, or a bare join to another
 * relation (`t.id = s.id`, which matches every row when s is t again) bound nothing. A condition
 * that compares a target column with a value, or a join together with a filter on the joined
 * relation, is a bound. Sub-queries are taken as values (their own columns are theirs).
 */
import { asArray, only, sval, type Node } from './pg-ast.js';

/**
 * What a condition does to the target's rows:
 * - true: holds for every row; false: for none;
 * - constant: does not depend on the target's rows (all or nothing);
 * - join: only relates target rows to other relations' rows; filter: only filters other relations;
 * - row: picks target rows.
 */
type Bound = 'true' | 'false' | 'constant' | 'join' | 'filter' | 'row';

export interface WriteTarget {
  /** Names a column of the target can be qualified with: relation name, schema.name, alias. */
  names: Set<string>;
  /** Other relations are in scope (FROM, USING, MERGE source): an unqualified column may be theirs. */
  others: boolean;
}

export function targetOf(relation: Node, others: boolean): WriteTarget {
  const rv = ((relation.RangeVar as Node | undefined) ?? relation) as Node;
  const names = new Set<string>();
  const alias = (rv.alias as Node | undefined)?.aliasname;
  if (typeof alias === 'string') names.add(alias.toLowerCase());
  else if (typeof rv.relname === 'string') {
    names.add(rv.relname.toLowerCase());
    if (typeof rv.schemaname === 'string') names.add(`${rv.schemaname}.${rv.relname}`.toLowerCase());
  }
  return { names, others };
}

/** True when the condition (a WHERE, or undefined for none) may let the write touch every row. */
export function unbounded(condition: unknown, target: WriteTarget): boolean {
  const b = condition === undefined || condition === null ? 'true' : boundOf(condition, target);
  return b !== 'row' && b !== 'false';
}

const REFLEXIVE = new Set(['=', '<=', '>=', '~~', '~~*']);

function boundOf(node: unknown, target: WriteTarget): Bound {
  if (!node || typeof node !== 'object') return 'constant';
  const [type, body] = only(node as Node);
  switch (type) {
    case 'A_Const':
      if (body.boolval) return (body.boolval as Node).boolval === true ? 'true' : 'false';
      if (body.isnull) return 'false';
      return 'constant';
    case 'BoolExpr': {
      const args = asArray(body.args).map((a) => boundOf(a, target));
      if (body.boolop === 'AND_EXPR') return andOf(args);
      if (body.boolop === 'OR_EXPR') return orOf(args);
      return notOf(args[0] ?? 'constant');
    }
    case 'TypeCast':
      return boundOf(body.arg, target);
    case 'BooleanTest': {
      const inner = boundOf(body.arg, target);
      const positive = body.booltesttype === 'IS_TRUE' || body.booltesttype === 'IS_NOT_FALSE';
      return positive ? inner : notOf(inner);
    }
    case 'CurrentOfExpr':
      return 'row';
    case 'A_Expr':
      return comparisonOf(body, target);
    default:
      return dependence(node, target);
  }
}

function andOf(args: Bound[]): Bound {
  if (args.includes('false')) return 'false';
  if (args.includes('row')) return 'row';
  if (args.includes('join') && args.includes('filter')) return 'row';
  if (args.every((a) => a === 'true')) return 'true';
  if (args.includes('join')) return 'join';
  if (args.includes('filter')) return 'filter';
  return 'constant';
}

function orOf(args: Bound[]): Bound {
  const live = args.filter((a) => a !== 'false');
  if (live.length === 0) return 'false';
  if (live.includes('true')) return 'true';
  if (live.every((a) => a === 'row')) return 'row';
  return 'constant';
}

function notOf(b: Bound): Bound {
  if (b === 'true') return 'false';
  if (b === 'false') return 'true';
  if (b === 'row' || b === 'filter') return b;
  return 'constant';
}

function comparisonOf(body: Node, target: WriteTarget): Bound {
  const op = sval(asArray(body.name).at(-1));
  const left = dependence(body.lexpr, target);
  const right = dependence(body.rexpr, target);
  if (left === 'row' && right === 'row') {
    const reflexive = (body.kind === 'AEXPR_OP' && REFLEXIVE.has(op)) || body.kind === 'AEXPR_NOT_DISTINCT';
    return reflexive && sameExpression(body.lexpr, body.rexpr) ? 'true' : 'row';
  }
  if (left === 'row' || right === 'row') return left === 'filter' || right === 'filter' ? 'join' : 'row';
  if (left === 'filter' || right === 'filter') return 'filter';
  return 'constant';
}

/**
 * Which rows an expression depends on: the target's ('row'), only other relations' ('filter') or
 * none ('constant'). Columns inside sub-queries count only when qualified with the target's name.
 */
function dependence(node: unknown, target: WriteTarget): Bound {
  let found: Bound = 'constant';
  const visit = (n: unknown, inSubquery: boolean): void => {
    if (found === 'row') return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x, inSubquery);
      return;
    }
    if (!n || typeof n !== 'object') return;
    for (const [key, value] of Object.entries(n as Node)) {
      if (key === 'ColumnRef') {
        const fields = asArray((value as Node).fields).map((f) => sval(f).toLowerCase());
        const qualifier = fields.length > 1 ? fields.slice(0, -1).join('.') : undefined;
        if (qualifier !== undefined && (target.names.has(qualifier) || target.names.has(fields.slice(-3, -1).join('.')))) found = 'row';
        else if (qualifier === undefined && !inSubquery && !target.others) found = 'row';
        else if (!inSubquery) found = 'filter';
      } else if (key === 'CurrentOfExpr') {
        found = 'row';
      } else if (key === 'SubLink' && value && typeof value === 'object') {
        // `x IN (SELECT ...)`: x is the outer statement's, the sub-query's columns are its own.
        visit((value as Node).testexpr, inSubquery);
        visit((value as Node).subselect, true);
      } else {
        visit(value, inSubquery);
      }
    }
  };
  visit(node, false);
  return found;
}

function sameExpression(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, dropLocation) === JSON.stringify(b, dropLocation);
}

function dropLocation(key: string, value: unknown): unknown {
  return key === 'location' ? undefined : value;
}

/**
 * A MERGE's WHEN clauses that update or delete target rows without a bound: a matched-row action
 * with no condition of its own over a source that is not a VALUES list, and every action on rows
 * the source does not match.
 */
export function mergeUnbounded(merge: Node): boolean {
  const target = targetOf(merge.relation as Node, true);
  const valuesSource = isValuesList(merge.sourceRelation);
  for (const c of asArray(merge.mergeWhenClauses)) {
    const clause = ((c as Node).MergeWhenClause ?? c) as Node;
    if (clause.commandType !== 'CMD_UPDATE' && clause.commandType !== 'CMD_DELETE') continue;
    const ownBound = clause.condition !== undefined && !unbounded(clause.condition, target);
    if (ownBound) continue;
    if (clause.matchKind === 'MERGE_WHEN_MATCHED' && valuesSource) continue;
    return true;
  }
  return false;
}

function isValuesList(source: unknown): boolean {
  const sub = (source as Node | undefined)?.RangeSubselect as Node | undefined;
  const select = (sub?.subquery as Node | undefined)?.SelectStmt as Node | undefined;
  return asArray(select?.valuesLists).length > 0;
}
