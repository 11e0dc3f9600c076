/**
 * The catalog masking resolves names and OIDs against: every user relation (tables, views,
 * materialized views, foreign and partitioned tables, sequences, temporary tables of any session)
 * with its columns and view definitions, the user-defined functions and operators, and which
 * builtin functions are pure (no side effect). Read through a gateway-held administrative
 * connection per backend connection (the stored credential, never the session's), so a session's
 * own connection never carries gateway queries that could fail inside the user's transaction.
 *
 * Never stale: every load is answered by a catalog validated by a query that started after the
 * load was asked for. Validation is a cheap fingerprint of the system catalogs masking reads (row
 * counts and transaction ids, which every DDL changes); the full catalog is read again only when it
 * differs. Loads asked for while a validation runs share the next one, so however many sessions
 * ask, at most one fingerprint query is in flight per backend.
 *
 * The administrative connection is checked before use and opened again when it has died (a backend
 * restart): a query that fails because the connection is gone is retried once on a fresh one.
 */
import type { BackendTarget } from '../core/types.js';
import { AdminConnection, BackendQueryError, type StatementResult } from '../protocols/postgres/admin-client.js';
import { buildCatalog, type Catalog, type CatalogRelation } from './lineage.js';

const RELATIONS_SQL = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relkind IN ('v','m') THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition,
       coalesce(string_agg(a.attnum::text || ':' || a.attname, E'\\x01' ORDER BY a.attnum), '') AS columns,
       (SELECT string_agg(i.inhparent::int8::text, ',') FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS parents
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r','v','m','f','p','S')
  AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
GROUP BY c.oid, n.nspname, c.relname, c.relkind`;

const FUNCTIONS_SQL = `
SELECT DISTINCT n.nspname AS schema, p.proname AS name
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog','information_schema')`;

/** Builtins every overload of which is immutable or stable: the only ones masked data may reach. */
const PURE_SQL = `
SELECT p.proname AS name
FROM pg_catalog.pg_proc p
WHERE p.pronamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
GROUP BY p.proname
HAVING bool_and(p.provolatile IN ('i','s'))`;

/**
 * Operators outside pg_catalog are user code (their functions could do anything). Those spelled
 * like a builtin (an extension's `=` for its type) are left out: refusing every `=` would refuse
 * everything; extensions' functions called by name are refused as user functions.
 */
const OPERATORS_SQL = `
SELECT DISTINCT o.oprname AS name FROM pg_catalog.pg_operator o
WHERE o.oprnamespace <> 'pg_catalog'::regnamespace
  AND o.oprname NOT IN (SELECT b.oprname FROM pg_catalog.pg_operator b WHERE b.oprnamespace = 'pg_catalog'::regnamespace)`;

/**
 * Changes with every DDL that masking cares about: a row added, removed or rewritten in any of these
 * catalogs changes its count or the sum of its rows' xmin. (Statistics updates are in place and do
 * not change xmin, so ANALYZE and VACUUM do not cause a re-read.)
 */
const FINGERPRINT_SQL = `SELECT concat_ws('/', ${[
  'pg_class',
  'pg_attribute',
  'pg_rewrite',
  'pg_namespace',
  'pg_proc',
  'pg_inherits',
  'pg_operator',
]
  .map((t) => `(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM pg_catalog.${t})`)
  .join(', ')}) AS fingerprint`;

/** Reads and validates the catalog of one backend connection. */
export class CatalogSource {
  private conn: Promise<AdminConnection> | undefined;
  private current: { fingerprint: string; catalog: Catalog; validatedAt: number } | undefined;
  /** The validation running now (started before anyone waiting for `next` asked). */
  private running: Promise<Catalog> | undefined;
  /** The validation that starts when `running` ends, shared by everyone who asked meanwhile. */
  private next: Promise<Catalog> | undefined;

  constructor(
    private readonly target: BackendTarget,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The catalog, validated by a read that started after this call; with `maxAgeMs`, the last one
   * if its validation started at most that long ago (sessions share it instead of each asking).
   */
  load(maxAgeMs?: number): Promise<Catalog> {
    const current = this.current;
    if (maxAgeMs !== undefined && current && this.now() - current.validatedAt <= maxAgeMs) return Promise.resolve(current.catalog);
    if (!this.running) return this.start();
    this.next ??= this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  private start(): Promise<Catalog> {
    this.next = undefined;
    const run = this.validate();
    this.running = run;
    const done = (): void => {
      if (this.running === run) this.running = undefined;
    };
    run.then(done, done);
    return run;
  }

  private async validate(): Promise<Catalog> {
    const validatedAt = this.now();
    const [fp] = await this.query(FINGERPRINT_SQL);
    const fingerprint = fp!.rows[0]?.fingerprint ?? '';
    if (this.current?.fingerprint === fingerprint) {
      this.current.validatedAt = validatedAt;
      return this.current.catalog;
    }
    const [rels, funcs, pure, ops] = await this.query(`${RELATIONS_SQL};${FUNCTIONS_SQL};${PURE_SQL};${OPERATORS_SQL}`);
    const catalog = catalogFromRows(rels!.rows, funcs!.rows, pure!.rows, ops!.rows);
    this.current = { fingerprint, catalog, validatedAt };
    return catalog;
  }

  /**
   * Runs SQL on the administrative connection; when the connection turns out to be dead (the
   * backend restarted or closed it), once more on a fresh one. Errors the backend reports for the
   * query itself are not retried.
   */
  private async query(sql: string): Promise<StatementResult[]> {
    for (let attempt = 0; ; attempt++) {
      const conn = this.connection();
      try {
        return await (await conn).query(sql);
      } catch (err) {
        if (this.conn === conn) this.conn = undefined;
        conn.then((c) => c.close()).catch(() => undefined);
        if (err instanceof BackendQueryError && !isConnectionLost(err)) throw err;
        if (attempt >= 1) throw err;
      }
    }
  }

  private connection(): Promise<AdminConnection> {
    const open = (): Promise<AdminConnection> =>
      AdminConnection.open(this.target, { applicationName: 'jitgate masking catalog', queryTimeoutMs: 15_000 });
    const conn = this.conn;
    if (!conn) return (this.conn = open());
    // A connection known dead (closed by the backend since its last use) is replaced before use.
    return (this.conn = conn.then((c) => (c.alive ? c : (c.close().catch(() => undefined), open()))));
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.then((c) => c.close()).catch(() => undefined);
  }
}

/** Server-side errors that mean the session is gone (admin shutdown, crash), not a bad query. */
function isConnectionLost(err: BackendQueryError): boolean {
  return err.sqlstate.startsWith('57P') || err.sqlstate.startsWith('08');
}

type Row = Record<string, string | null>;

export function catalogFromRows(rels: Row[], funcs: Row[], pure: Row[], operators: Row[] = []): Catalog {
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
  return buildCatalog(relations, functions, {
    pureFunctions: pure.map((p) => p.name!),
    userOperators: operators.map((o) => o.name!),
  });
}
