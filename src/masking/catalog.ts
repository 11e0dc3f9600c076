/**
 * The catalog masking resolves names and OIDs against: every user relation (tables, views,
 * materialized views, foreign and partitioned tables) with its columns and view definitions, and the
 * user-defined functions. Read through a gateway-held administrative connection per backend
 * connection (the stored credential, never the session's): one catalog query at session start,
 * shared by sessions starting at the same moment, so a session's own connection never carries
 * gateway queries that could fail inside the user's transaction or show up in its results.
 */
import type { BackendTarget } from '../core/types.js';
import { AdminConnection } from '../protocols/postgres/admin-client.js';
import { buildCatalog, type Catalog, type CatalogRelation } from './lineage.js';

const RELATIONS_SQL = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relkind IN ('v','m') THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition,
       coalesce(string_agg(a.attnum::text || ':' || a.attname, E'\\x01' ORDER BY a.attnum), '') AS columns,
       (SELECT string_agg(i.inhparent::int8::text, ',') FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS parents
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r','v','m','f','p')
  AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
GROUP BY c.oid, n.nspname, c.relname, c.relkind`;

const FUNCTIONS_SQL = `
SELECT DISTINCT n.nspname AS schema, p.proname AS name
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog','information_schema')`;

/** Reads catalogs of one backend connection; loads requested within `maxAgeMs` share one result. */
export class CatalogSource {
  private conn: Promise<AdminConnection> | undefined;
  private last: { at: number; catalog: Promise<Catalog> } | undefined;

  constructor(
    private readonly target: BackendTarget,
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  load(): Promise<Catalog> {
    const at = this.now();
    if (this.last && at - this.last.at <= this.maxAgeMs) return this.last.catalog;
    const catalog = this.read();
    this.last = { at, catalog };
    catalog.catch(() => {
      if (this.last?.catalog === catalog) this.last = undefined;
    });
    return catalog;
  }

  private async read(): Promise<Catalog> {
    this.conn ??= AdminConnection.open(this.target, { applicationName: 'jitgate masking catalog', queryTimeoutMs: 15_000 });
    let conn: AdminConnection;
    try {
      conn = await this.conn;
      const [rels] = await conn.query(RELATIONS_SQL);
      const [funcs] = await conn.query(FUNCTIONS_SQL);
      return catalogFromRows(rels!.rows, funcs!.rows);
    } catch (err) {
      // A broken connection is opened afresh next time.
      const stale = this.conn;
      this.conn = undefined;
      stale?.then((c) => c.close()).catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.then((c) => c.close()).catch(() => undefined);
  }
}

export function catalogFromRows(rels: Array<Record<string, string | null>>, funcs: Array<Record<string, string | null>>): Catalog {
  const relations: CatalogRelation[] = rels.map((r) => ({
    oid: Number(r.oid),
    schema: r.schema!,
    name: r.name!,
    kind: r.kind!,
    columns: (r.columns ?? '')
      .split('\x01')
      .filter((x) => x !== '')
      .map((x) => {
        const colon = x.indexOf(':');
        return { attnum: Number(x.slice(0, colon)), name: x.slice(colon + 1) };
      }),
    ...(r.definition ? { definition: r.definition } : {}),
    ...(r.parents ? { parents: r.parents.split(',').map(Number) } : {}),
  }));
  const functions = funcs.flatMap((f) => [f.name!, `${f.schema}.${f.name}`]);
  return buildCatalog(relations, functions);
}
