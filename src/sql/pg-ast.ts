/** Reading libpg-query's JSON parse trees: shared by statement analysis and masking lineage. */

/** A parse-tree node: `{ NodeType: { ...fields } }` or the fields themselves. */
export type Node = Record<string, unknown>;

/** The single key of a wrapped node and its fields (`{ SelectStmt: {...} }` -> ['SelectStmt', {...}]). */
export function only(node: Node): [string, Node] {
  const key = Object.keys(node)[0] ?? '';
  return [key, (node[key] as Node) ?? {}];
}

/** The text of a `{ String: { sval } }` node ('' for anything else). */
export function sval(n: unknown): string {
  const s = (n as Node | undefined)?.String as Node | undefined;
  return typeof s?.sval === 'string' ? s.sval : '';
}

/** A list field, or an empty list when it is absent. */
export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
