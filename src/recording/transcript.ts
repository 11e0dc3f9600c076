/**
 * A recording as a transcript that reads like the psql session did: each statement after a
 * `connection=>` prompt, results as psql's aligned tables with their `(N rows)` footer, command
 * tags, `ERROR:`/`NOTICE:` lines, and the gateway's own part (decisions, holds and approvals,
 * truncation, kills) as `--` comment lines. Streaming: feed events as they come (replay --follow).
 */
import type {
  BindData,
  ColumnsData,
  CompleteData,
  CopyData,
  ResultData,
  DecisionData,
  HeldDecisionData,
  KillData,
  MessageData,
  RowsData,
  SessionEndData,
  SessionStartData,
  StatementData,
} from './events.js';
import type { RecordedEvent } from './file-recorder.js';
import { alignedTable, rowsFooter, type TableColumn } from './psql-table.js';
import { MYSQL_CONTINUATION, mysqlComplete, mysqlMessage, mysqlPrompt, mysqlTable } from './mysql-transcript.js';
import { redisComplete, redisMessage, redisPrompt } from './redis-transcript.js';

/** Command tags psql prints after a result table (DML with RETURNING). */
const TAG_AFTER_TABLE = /^(INSERT|UPDATE|DELETE|MERGE)\b/;

export interface TranscriptOptions {
  /** Format a timestamp (default: ISO 8601 UTC). */
  time?: (ms: number) => string;
}

export class Transcript {
  private prompt = '=> ';
  private table: { columns: TableColumn[]; rows: Array<Array<string | null>> } | null = null;
  private readonly time: (ms: number) => string;
  private start: number | undefined;
  /** The result in progress is COPY TO STDOUT output. */
  private copyOut = false;
  /** Statement texts by number, to label Binds of prepared statements. */
  private readonly statements = new Map<number, string>();
  /** A MySQL session: printed as the mysql client prints (./mysql-transcript.ts). */
  private mysql = false;
  /** A Redis session: printed as redis-cli prints (./redis-transcript.ts). */
  private redis = false;

  constructor(options: TranscriptOptions = {}) {
    this.time = options.time ?? ((ms) => new Date(ms).toISOString());
  }

  /** The text this event adds to the transcript ('' for none). */
  push(event: RecordedEvent): string {
    const d = event.data;
    switch (event.type) {
      case 'session_start':
        return this.sessionStart(d as unknown as SessionStartData, event.at);
      case 'statement':
        return this.statement(d as unknown as StatementData);
      case 'decision': {
        const h = d as unknown as HeldDecisionData;
        return `-- jitgate: statement ${h.n} ${verdict(h.decision)} after ${seconds(h.waitedMs)}${reasonsOf(h.decision)}\n`;
      }
      case 'bind':
        return this.bind(d as unknown as BindData);
      case 'columns':
        this.table = { columns: (d as unknown as ColumnsData).columns, rows: [] };
        return '';
      case 'rows':
        if (this.table) this.table.rows.push(...(d as unknown as RowsData).rows);
        return '';
      case 'copy':
        // psql writes COPY TO STDOUT data as it comes, and no command tag after it.
        this.copyOut = true;
        return (d as unknown as CopyData).data.join('');
      case 'complete':
        return this.complete(d as unknown as CompleteData);
      case 'result': {
        const r = d as unknown as ResultData;
        this.table = { columns: r.columns, rows: r.rows };
        return this.complete({ tag: r.tag, rows: r.count, ...(r.truncated ? { truncated: r.truncated } : {}) });
      }
      case 'error':
      case 'notice':
        if (event.type === 'error') this.copyOut = false;
        return this.flushTable() + this.message(d as unknown as MessageData & { rows?: number; truncated?: CompleteData['truncated'] });
      case 'ready':
        return this.flushTable();
      case 'kill': {
        const k = d as unknown as KillData;
        return `-- jitgate: session ended by ${k.by}: ${k.reason}\n`;
      }
      case 'session_end': {
        const e = d as unknown as SessionEndData;
        const took = this.start === undefined ? '' : ` after ${seconds(event.at - this.start)}`;
        return `${this.flushTable()}-- session ended${took} (${e.reason}): ${e.statements} statement${e.statements === 1 ? '' : 's'}, ${e.rowsRecorded} row${e.rowsRecorded === 1 ? '' : 's'} recorded\n`;
      }
      case 'recorder':
        return `-- jitgate: ${String(d.note)}\n`;
      default:
        return '';
    }
  }

  /** Whatever is still buffered (a result cut off by the end of the recording). */
  finish(): string {
    return this.flushTable();
  }

  private sessionStart(s: SessionStartData, at: number): string {
    this.start = at;
    this.prompt = `${s.connection}=> `;
    this.mysql = s.protocol === 'mysql';
    if (this.mysql) this.prompt = mysqlPrompt(s.connection);
    this.redis = s.protocol === 'redis';
    if (this.redis) this.prompt = redisPrompt(s.connection);
    const lines = [
      `-- session ${s.session}: ${s.user}${s.groups.length ? ` (${s.groups.join(', ')})` : ''} on ${s.connection}` +
        `${s.applicationName ? ` with ${s.applicationName}` : ''} from ${s.clientAddress}, ${this.time(at)}`,
    ];
    const g = s.grant;
    if (g) {
      const how = g.breakGlass
        ? 'break-glass'
        : g.approvedBy.length
          ? `approved by ${g.approvedBy.join(', ')}`
          : g.issuedBy
            ? `issued by ${g.issuedBy}`
            : `granted by policy${g.policy ? ` ${g.policy}` : ''}`;
      lines.push(`-- access grant ${g.id} (${how}; reason: ${JSON.stringify(g.reason)}; until ${this.time(g.expiresAt)})`);
    } else {
      lines.push(`-- access token ${s.tokenId} (grant not recorded)`);
    }
    return lines.map((l) => l + '\n').join('');
  }

  private statement(s: StatementData): string {
    this.statements.set(s.n, s.text);
    const lines = s.text.split('\n');
    const cont = this.mysql ? MYSQL_CONTINUATION : this.redis ? this.prompt : this.prompt.replace(/=> $/, '-> ');
    let out = this.flushTable() + lines.map((l, i) => (i === 0 ? this.prompt : cont) + l).join('\n') + '\n';
    if (s.textBytes !== undefined) out += `-- jitgate: statement cut to its first bytes (${s.textBytes} bytes in all)\n`;
    if (s.held) out += `-- jitgate: statement ${s.n} held for approval${heldBy(s.decision)}\n`;
    else if (s.decision && s.decision.effect !== 'allow')
      out += `-- jitgate: statement ${s.n} ${verdict(s.decision)}${reasonsOf(s.decision)}\n`;
    return out;
  }

  private bind(b: BindData): string {
    const params = b.params.map((p, i) => `$${i + 1} = ${p === null ? 'NULL' : `'${p.replace(/'/g, "''")}'`}`).join(', ');
    const what = b.n !== undefined ? `statement ${b.n}` : b.statement ? `prepared statement ${b.statement}` : 'unnamed statement';
    const cut = b.cut?.length ? ` (cut: ${b.cut.map(([i, n]) => `$${i + 1} had ${n} bytes`).join(', ')})` : '';
    return `-- bind ${what}${b.params.length ? `: ${params}` : ' (no parameters)'}${cut}\n`;
  }

  private complete(c: CompleteData): string {
    if (this.mysql || this.redis) {
      const table = this.table;
      this.table = null;
      return this.redis ? redisComplete(c, table) : mysqlComplete(c, table);
    }
    if (this.copyOut) {
      this.copyOut = false;
      return c.truncated ? `-- jitgate: ${c.rows - c.truncated.recorded} more lines not recorded (limit per ${c.truncated.cap})\n` : '';
    }
    if (!this.table) return `${c.tag}\n`;
    const { columns, rows } = this.table;
    this.table = null;
    let out = alignedTable(columns, rows);
    if (c.truncated) {
      out += `-- jitgate: ${c.rows - c.truncated.recorded} more row${c.rows - c.truncated.recorded === 1 ? '' : 's'} not recorded (limit per ${c.truncated.cap})\n`;
    }
    out += rowsFooter(c.rows) + '\n';
    if (TAG_AFTER_TABLE.test(c.tag)) out += `${c.tag}\n`;
    return out;
  }

  private message(m: MessageData & { rows?: number; truncated?: CompleteData['truncated'] }): string {
    if (this.mysql) return mysqlMessage(m);
    if (this.redis) return redisMessage(m);
    return `${m.severity}:  ${m.message}\n`;
  }

  /** A table whose result ended without a CommandComplete (error mid-result, end of recording). */
  private flushTable(): string {
    if (!this.table) return '';
    const { columns, rows } = this.table;
    this.table = null;
    return (
      (this.mysql ? mysqlTable(columns, rows) : alignedTable(columns, rows)) +
      `-- jitgate: result incomplete (${rows.length} row${rows.length === 1 ? '' : 's'} recorded)\n`
    );
  }
}

function verdict(d: DecisionData): string {
  return d.effect === 'allow' ? 'approved' : d.effect === 'deny' ? 'refused' : 'held';
}

function reasonsOf(d: DecisionData): string {
  const parts: string[] = [];
  if (d.reasons.length) parts.push(d.reasons.join(', '));
  if (d.rule) parts.push(`rule ${d.rule}`);
  if (typeof d.approvedBy === 'string' || Array.isArray(d.approvedBy)) parts.push(`by ${[d.approvedBy].flat().join(', ')}`);
  if (d.message && d.effect !== 'allow') parts.push(d.message);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

/** ` (review 1a2b3c4d, rule prod-writes: write_statement)` for a statement review's hold. */
function heldBy(d: DecisionData | undefined): string {
  if (!d || typeof d.reviewId !== 'string') return '';
  return ` (review ${d.reviewId.slice(0, 8)}${d.rule ? `, rule ${d.rule}` : ''}${d.reasons.length ? `: ${d.reasons.join(', ')}` : ''})`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
}

/** The whole transcript of a list of events. */
export function renderTranscript(events: RecordedEvent[], options?: TranscriptOptions): string {
  const t = new Transcript(options);
  return events.map((e) => t.push(e)).join('') + t.finish();
}
