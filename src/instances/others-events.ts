/**
 * Access and review events made through other gateway instances (or by admin commands on a gateway
 * host), for this instance's console streams: a browser connected here hears of a request made, or
 * a statement held, on any instance. The shared audit log is where every instance already writes
 * them, in one order; each catch-up round reads the entries after the last one seen, skips those
 * this instance appended (its own events reached its streams directly), and re-emits the rest as
 * events with the request, grant or review as the store holds it now.
 *
 * These buses are for display only: nothing that acts on an event (audit, webhooks, enforcement)
 * listens here, so an event is never acted on twice. The console re-reads what it shows when an
 * event arrives, so one missed or late costs a refresh, never a wrong screen.
 */
import type { AccessEvent } from '../access/events.js';
import { AccessEvents } from '../access/events.js';
import type { AccessRequest, GrantRecord } from '../access/repository.js';
import type { AuditEntry } from '../audit/chain.js';
import type { AuditLog } from '../audit/log.js';
import { ReviewEvents, type ReviewEvent } from '../review/events.js';
import type { Review } from '../review/repository.js';
import type { CatchUpReader } from './catch-up.js';

/** Entries read per round at most: a burst elsewhere is shown over a few rounds, never in one long pause. */
const MAX_ENTRIES_PER_ROUND = 1_000;

export interface EventSources {
  request(id: string): Promise<AccessRequest | undefined>;
  grant(id: string): Promise<GrantRecord | undefined>;
  review(id: string): Review | undefined;
}

export class EventsFromOthers implements CatchUpReader {
  readonly name = 'live events';
  readonly access = new AccessEvents();
  readonly reviews = new ReviewEvents();
  private lastSeq: number;
  /** Entries this instance appended and the reader has not passed yet. */
  private readonly own = new Set<number>();
  private readonly stopWatching: () => void;

  private constructor(
    private readonly audit: AuditLog,
    private readonly sources: EventSources,
    head: number,
  ) {
    // What others appended before this instance started is not news: reading starts after the head.
    this.lastSeq = head;
    this.stopWatching = audit.onAppend((e) => this.own.add(e.seq));
  }

  static async open(audit: AuditLog, sources: EventSources): Promise<EventsFromOthers> {
    return new EventsFromOthers(audit, sources, (await audit.head())?.seq ?? 0);
  }

  async catchUp(): Promise<void> {
    let read = 0;
    for await (const entry of this.audit.entries({ seq: this.lastSeq + 1 })) {
      this.lastSeq = entry.seq;
      if (!this.own.delete(entry.seq)) await this.emit(entry);
      if (++read >= MAX_ENTRIES_PER_ROUND) break;
    }
  }

  stop(): void {
    this.stopWatching();
  }

  private async emit(entry: AuditEntry): Promise<void> {
    const [module] = entry.type.split('.', 1);
    if (module === 'access') {
      const event = await this.accessEvent(entry);
      if (event) this.access.emit(event);
    } else if (module === 'review') {
      const event = this.reviewEvent(entry);
      if (event) this.reviews.emit(event);
    }
  }

  /** The access event an `access.*` entry records (see access/audit.ts), or undefined for one it cannot tell. */
  private async accessEvent(e: AuditEntry): Promise<AccessEvent | undefined> {
    const d = e.data;
    const subject = e.subject ?? '';
    const at = e.at;
    switch (e.type.slice('access.'.length)) {
      case 'request.created': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.created', at, request };
      }
      case 'request.expired': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.expired', at, request };
      }
      case 'request.approved': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.approved', at, request, approver: e.actor, comment: text(d.comment), final: d.final === true };
      }
      case 'request.denied': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.denied', at, request, by: e.actor, reason: text(d.reason) ?? '' };
      }
      case 'request.withdrawn': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.withdrawn', at, request, reason: text(d.reason) ?? '' };
      }
      case 'request.escalated': {
        const request = await this.sources.request(subject);
        return request && { type: 'request.escalated', at, request, to: texts(d.to), waitedMs: Number(d.waitedMs) || 0 };
      }
      case 'grant.created': {
        const grant = await this.sources.grant(subject);
        return (
          grant && {
            type: 'grant.created',
            at,
            grant,
            request: grant.requestId ? ((await this.sources.request(grant.requestId)) ?? null) : null,
          }
        );
      }
      case 'grant.revoked': {
        const grant = await this.sources.grant(subject);
        return grant && { type: 'grant.revoked', at, grant, by: e.actor, reason: text(d.reason) };
      }
      case 'break_glass.used': {
        const grant = await this.sources.grant(subject);
        const request = grant?.requestId ? await this.sources.request(grant.requestId) : undefined;
        return grant && request && { type: 'break_glass.used', at, grant, request };
      }
      default:
        return undefined;
    }
  }

  /** The review event a `review.*` entry records (see review/audit.ts). */
  private reviewEvent(e: AuditEntry): ReviewEvent | undefined {
    const review = this.sources.review(e.subject ?? '');
    if (!review) return undefined;
    const d = e.data;
    const at = e.at;
    switch (e.type) {
      case 'review.created':
      case 'review.expired':
        return { type: e.type, at, review };
      case 'review.approved':
        return { type: 'review.approved', at, review, approver: e.actor, comment: text(d.comment), final: d.final === true };
      case 'review.denied':
        return { type: 'review.denied', at, review, by: e.actor, comment: text(d.comment) };
      case 'review.escalated':
        return { type: 'review.escalated', at, review, to: texts(d.to), waitedMs: Number(d.waitedMs) || 0 };
      case 'review.withdrawn':
        return { type: 'review.withdrawn', at, review, by: e.actor === 'gateway' ? null : e.actor, reason: text(d.reason) ?? '' };
      default:
        return undefined;
    }
  }
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const texts = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
