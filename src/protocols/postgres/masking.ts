/**
 * Masking on PostgreSQL sessions: the adapter from a session's protocol-neutral MaskingScope to the
 * masker the relay applies. Lineage over PostgreSQL's grammar (masking/session.ts) decides each
 * output column's mask against the backend's catalog; the relay's ResultMasker rewrites rows, COPY
 * data and messages with what this interface answers.
 *
 * The catalog is read through a gateway-held connection per backend connection (the stored
 * credential, never the session's), shared by the sessions of that connection: PostgresCatalogs.
 */
import type { BackendTarget, ColumnMask, MaskingScope, SessionMasking, StatementMaskPlan } from '../../core/types.js';
import { CatalogSource } from '../../masking/catalog.js';
import { MaskingSession } from '../../masking/session.js';
import type { ByteMask } from '../../masking/strategies.js';

/** What the relay's result masker asks of a PostgreSQL session's masking. */
export interface PostgresMasking extends SessionMasking {
  /** One plan per statement of a query string (undefined: unparsable, so every column is masked). */
  plan(text: string): StatementMaskPlan[] | undefined;
  /** The mask of a column the backend attributes to (table OID, attribute number), if any. */
  originMask(tableOid: number, attnum: number): ColumnMask | undefined;
  /** The masked text for one value (null = SQL NULL). */
  maskValue(mask: ColumnMask, value: string): string | null;
  /** The mask applied to a value's bytes, where the strategy has a byte-level form (ASCII values). */
  maskBytes(mask: ColumnMask): ByteMask | undefined;
  /** Content detectors, when enabled: the text with findings replaced, or undefined if none found. */
  scrub?(text: string): string | undefined;
}

/** The catalogs masking reads, one source per backend connection, opened on first use. */
export class PostgresCatalogs {
  private readonly sources = new Map<string, CatalogSource>();

  constructor(private readonly resolveTarget: (connection: string) => BackendTarget | undefined) {}

  /** The masker of one session: its scope's rules over the catalog of its connection. */
  masking(scope: MaskingScope): MaskingSession {
    const connection = scope.connection;
    return new MaskingSession({
      rules: scope.rules,
      detectors: scope.detectors,
      hashKey: scope.hashKey,
      loadCatalog: (maxAgeMs) => {
        const source = this.source(connection);
        return source ? source.load(maxAgeMs) : Promise.reject(new Error(`no backend for connection ${connection}`));
      },
    });
  }

  private source(connection: string): CatalogSource | undefined {
    let source = this.sources.get(connection);
    const target = source ? undefined : this.resolveTarget(connection);
    if (!source && target) this.sources.set(connection, (source = new CatalogSource(target)));
    return source;
  }

  /** Closes the catalog connections (at shutdown). */
  async close(): Promise<void> {
    const sources = [...this.sources.values()];
    this.sources.clear();
    await Promise.all(sources.map((s) => s.close()));
  }
}
