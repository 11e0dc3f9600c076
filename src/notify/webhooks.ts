/**
 * Webhook notifications of access events: each request, approval, denial, revocation, break-glass
 * use (and pending expiry) is POSTed to the configured webhooks.
 *
 * - JSON body (or Slack-compatible `{"text": ...}`), signed with HMAC-SHA256 when the webhook has a
 *   secret: `X-Jitgate-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>` with the unix
 *   timestamp (seconds) in `X-Jitgate-Timestamp`, so a receiver can reject replays. verifySignature
 *   below is the receiver's side.
 * - Retried with exponential backoff (network errors, timeouts, 5xx, 408, 429) up to maxAttempts;
 *   other 4xx are final. Backoff waits run on the injected Clock.
 * - Never blocks: `notify` only queues; delivery runs in the background, bounded in count, so a slow
 *   or dead receiver costs neither the API call nor the data path. What cannot be delivered is logged.
 * - With an outbox (./outbox.ts, the state store), deliveries not yet done outlive the process: what
 *   waited on backoff or was cut off at shutdown is sent at the next start (`resume`).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AccessEvent, AccessEvents } from '../access/events.js';
import type { AccessRequest, GrantRecord } from '../access/repository.js';
import type { NotificationEventKind, WebhookConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { Logger } from '../obs/log.js';
import type { DeliveryOutbox } from './outbox.js';

/** A webhook with its secret resolved (never logged). */
export type WebhookTarget = Omit<WebhookConfig, 'secret'> & { secret?: string };

export interface NotifierOptions {
  webhooks: WebhookTarget[];
  clock: Clock;
  log: Logger;
  /** At most this many deliveries queued or retrying at once; more are dropped and logged. */
  maxPending?: number;
  fetch?: typeof fetch;
  /** Keeps deliveries not yet done across restarts (default: memory only, lost at shutdown). */
  outbox?: DeliveryOutbox;
}

export const SIGNATURE_HEADER = 'x-jitgate-signature';
export const TIMESTAMP_HEADER = 'x-jitgate-timestamp';
const MAX_BACKOFF_MS = 10 * 60_000;

/** Which notification kind an access event is, if it is one at all. */
export function kindOf(event: AccessEvent): NotificationEventKind | undefined {
  switch (event.type) {
    case 'request.created':
      return 'request';
    case 'request.approved':
      return 'approval';
    case 'request.denied':
    case 'request.withdrawn':
      return 'denial';
    case 'grant.revoked':
      return 'revocation';
    case 'break_glass.used':
      return 'break_glass';
    case 'request.expired':
      return 'expiry';
    case 'request.escalated':
      return 'escalation';
    case 'grant.created':
      return undefined; // told by the request or approval that made it
  }
}

export function sign(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Receiver side: the signature matches and the timestamp is within `toleranceS` of `nowMs`. */
export function verifySignature(
  secret: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  body: string,
  opts: { nowMs: number; toleranceS?: number },
): boolean {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(opts.nowMs / 1000 - Number(timestamp)) > (opts.toleranceS ?? 300)) return false;
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

interface Delivery {
  id: string;
  webhook: WebhookTarget;
  /** The event's type (header x-jitgate-event, logs). */
  type: string;
  body: string;
  attempt: number;
}

export class WebhookNotifier {
  private readonly doFetch: typeof fetch;
  private readonly maxPending: number;
  private pending = 0;
  private readonly retries = new Map<string, () => void>();
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(private readonly options: NotifierOptions) {
    this.doFetch = options.fetch ?? fetch;
    this.maxPending = options.maxPending ?? 1000;
  }

  /** Subscribe to access events; returns the unsubscribe function. */
  attach(events: AccessEvents): () => void {
    return events.on((e) => this.notify(e));
  }

  /** Queue the event for every webhook that wants it. Never throws, never waits. */
  notify(event: AccessEvent): void {
    const kind = kindOf(event);
    if (!kind) return;
    this.enqueue(kind, event.type, (format, id) => (format === 'slack' ? { text: slackText(event) } : payload(id, kind, event)));
  }

  /**
   * Queue any event (other modules' too, e.g. statement reviews) for the webhooks that want its
   * kind; `body` builds the JSON for a webhook's format and the delivery id. Never throws, never waits.
   */
  enqueue(kind: NotificationEventKind, type: string, body: (format: WebhookTarget['format'], id: string) => unknown): void {
    if (this.closed) return;
    for (const webhook of this.options.webhooks) {
      if (!webhook.events.includes(kind)) continue;
      if (this.pending >= this.maxPending) {
        this.options.log.error({ webhook: webhook.name, event: type }, 'webhook queue full: notification dropped');
        continue;
      }
      const id = randomUUID();
      let text: string;
      try {
        text = JSON.stringify(body(webhook.format, id));
      } catch (err) {
        this.options.log.error({ err, webhook: webhook.name }, 'cannot build webhook payload');
        continue;
      }
      this.pending++;
      const now = this.options.clock.now();
      this.stored(() =>
        this.options.outbox?.save({ id, webhook: webhook.name, type, body: text, attempt: 1, nextAt: now, createdAt: now }),
      );
      void this.attempt({ id, webhook, type, body: text, attempt: 1 });
    }
  }

  /**
   * Send what an earlier process left in the outbox, each at its planned time (or now). Deliveries
   * for a webhook no longer configured are dropped and logged. Call once, at start.
   */
  resume(): number {
    const outbox = this.options.outbox;
    if (!outbox || this.closed) return 0;
    let stored: ReturnType<DeliveryOutbox['pending']>;
    try {
      stored = outbox.pending();
    } catch (err) {
      this.options.log.error({ err }, 'cannot read webhook deliveries left by the last run');
      return 0;
    }
    let resumed = 0;
    for (const d of stored) {
      const webhook = this.options.webhooks.find((w) => w.name === d.webhook);
      if (!webhook) {
        this.options.log.warn(
          { webhook: d.webhook, event: d.type, delivery: d.id },
          'webhook no longer configured: stored delivery dropped',
        );
        this.stored(() => outbox.remove(d.id));
        continue;
      }
      this.pending++;
      resumed++;
      this.schedule({ id: d.id, webhook, type: d.type, body: d.body, attempt: d.attempt }, Math.max(d.nextAt, this.options.clock.now()));
    }
    if (resumed > 0) this.options.log.info({ deliveries: resumed }, 'webhook deliveries left by the last run: sending again');
    return resumed;
  }

  /** Deliveries queued, in flight or waiting to retry. */
  get backlog(): number {
    return this.pending;
  }

  /** Stop: pending retries are kept in the outbox (or, without one, dropped and logged), requests in flight aborted. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retries.size > 0) {
      if (this.options.outbox)
        this.options.log.info({ deliveries: this.retries.size }, 'gateway stopping: webhook retries kept for the next start');
      else this.options.log.warn({ deliveries: this.retries.size }, 'gateway stopping: webhook retries dropped');
    }
    for (const cancel of this.retries.values()) cancel();
    this.retries.clear();
    for (const c of this.inFlight) c.abort();
  }

  private async attempt(d: Delivery): Promise<void> {
    const { webhook } = d;
    const timestamp = String(Math.floor(this.options.clock.now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'jitgate-webhooks',
      'x-jitgate-event': d.type,
      'x-jitgate-delivery': d.id,
      'x-jitgate-attempt': String(d.attempt),
      [TIMESTAMP_HEADER]: timestamp,
    };
    if (webhook.secret) headers[SIGNATURE_HEADER] = sign(webhook.secret, timestamp, d.body);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), webhook.timeoutMs);
    timer.unref();
    this.inFlight.add(controller);
    let outcome: { ok: true } | { ok: false; retry: boolean; why: string };
    try {
      const res = await this.doFetch(webhook.url, { method: 'POST', headers, body: d.body, signal: controller.signal, redirect: 'manual' });
      await res.arrayBuffer().catch(() => undefined);
      outcome = res.ok
        ? { ok: true }
        : { ok: false, retry: res.status >= 500 || res.status === 408 || res.status === 429, why: `HTTP ${res.status}` };
    } catch (err) {
      const why = controller.signal.aborted
        ? this.closed
          ? 'gateway stopping'
          : 'timed out'
        : String((err as Error).cause ?? (err as Error).message);
      outcome = { ok: false, retry: true, why };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }

    const fields = { webhook: webhook.name, event: d.type, delivery: d.id, attempt: d.attempt };
    if (outcome.ok) {
      this.pending--;
      this.stored(() => this.options.outbox?.remove(d.id));
      this.options.log.debug(fields, 'webhook delivered');
      return;
    }
    if (this.closed && outcome.retry && this.options.outbox) {
      // Cut off by shutdown: it stays in the outbox and is sent at the next start.
      this.pending--;
      return;
    }
    if (!outcome.retry || d.attempt >= webhook.maxAttempts || this.closed) {
      this.pending--;
      this.stored(() => this.options.outbox?.remove(d.id));
      this.options.log.error({ ...fields, why: outcome.why }, 'webhook delivery failed for good');
      return;
    }
    const backoff = Math.min(MAX_BACKOFF_MS, webhook.initialBackoffMs * 2 ** (d.attempt - 1));
    const wait = backoff + Math.floor(Math.random() * backoff * 0.1); // jitter: receivers recovering are not hit in lockstep
    this.options.log.warn({ ...fields, why: outcome.why, retryInMs: wait }, 'webhook delivery failed; will retry');
    const next = { ...d, attempt: d.attempt + 1 };
    const at = this.options.clock.now() + wait;
    this.stored(() => this.options.outbox?.reschedule(d.id, next.attempt, at));
    this.schedule(next, at);
  }

  private schedule(d: Delivery, at: number): void {
    const key = `${d.id}:${d.attempt}`;
    this.retries.set(
      key,
      this.options.clock.at(at, () => {
        this.retries.delete(key);
        void this.attempt(d);
      }),
    );
  }

  /** Outbox writes never stop a delivery: a store that cannot take one only costs its restart safety. */
  private stored(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.options.log.error({ err }, 'cannot record a webhook delivery in the state store');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Payloads

function payload(id: string, kind: NotificationEventKind, event: AccessEvent) {
  const base = { id, type: event.type, kind, at: iso(event.at), summary: summary(event) };
  switch (event.type) {
    case 'request.created':
    case 'request.expired':
      return { ...base, request: requestPayload(event.request) };
    case 'request.approved':
      return { ...base, actor: event.approver, comment: event.comment, final: event.final, request: requestPayload(event.request) };
    case 'request.denied':
      return { ...base, actor: event.by, reason: event.reason, request: requestPayload(event.request) };
    case 'request.withdrawn':
      return { ...base, actor: event.request.user, reason: event.reason, request: requestPayload(event.request) };
    case 'request.escalated':
      return { ...base, to: event.to, waitedMs: event.waitedMs, request: requestPayload(event.request) };
    case 'grant.revoked':
      return { ...base, actor: event.by, reason: event.reason, grant: grantPayload(event.grant) };
    case 'break_glass.used':
      return {
        ...base,
        actor: event.request.user,
        reason: event.request.reason,
        request: requestPayload(event.request),
        grant: grantPayload(event.grant),
      };
    case 'grant.created':
      return { ...base, grant: grantPayload(event.grant) };
  }
}

function requestPayload(r: AccessRequest) {
  return {
    id: r.id,
    user: r.user,
    connection: r.connection,
    reason: r.reason,
    durationMs: r.durationMs,
    state: r.state,
    breakGlass: r.breakGlass,
    policy: r.policy,
    approverGroups: r.approverGroups,
    approvalsRequired: r.approvalsRequired,
    approvedBy: r.approvals.map((a) => a.approver),
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    grantId: r.grantId,
  };
}

function grantPayload(g: GrantRecord) {
  return {
    id: g.id,
    user: g.user,
    connection: g.connection,
    reason: g.reason,
    requestId: g.requestId,
    approvedBy: g.approvedBy,
    breakGlass: g.breakGlass,
    createdAt: iso(g.createdAt),
    expiresAt: iso(g.expiresAt),
    revokedAt: g.revokedAt === null ? null : iso(g.revokedAt),
    revokedBy: g.revokedBy,
    revokeReason: g.revokeReason,
  };
}

/** One line for people (Slack text, and `summary` in JSON). */
export function summary(event: AccessEvent): string {
  const short = (id: string) => id.slice(0, 8);
  switch (event.type) {
    case 'request.created': {
      const r = event.request;
      const what = `${r.user} requests access to ${r.connection} for ${formatDuration(r.durationMs)}${r.reason ? `: ${r.reason}` : ''}`;
      if (r.state === 'granted' && r.breakGlass) return `${what} (break-glass, granted without approval)`;
      if (r.state === 'granted') return `${what} (granted by policy ${r.policy})`;
      return `${what} (needs ${r.approvalsRequired} approval${r.approvalsRequired === 1 ? '' : 's'} from ${r.approverGroups.join(' or ')}; request ${short(r.id)})`;
    }
    case 'request.approved': {
      const r = event.request;
      const count = `${r.approvals.length} of ${r.approvalsRequired}`;
      return `${event.approver} approved ${r.user}'s request for ${r.connection} (${count})${event.final ? ': access granted' : ''}`;
    }
    case 'request.denied':
      return `${event.by} denied ${event.request.user}'s request for ${event.request.connection}: ${event.reason}`;
    case 'request.withdrawn':
      return `${event.request.user} withdrew their request for ${event.request.connection}: ${event.reason}`;
    case 'request.expired':
      return `${event.request.user}'s request for ${event.request.connection} expired without a decision`;
    case 'request.escalated': {
      const r = event.request;
      return `REMINDER: ${r.user}'s request for ${r.connection} has waited ${formatDuration(event.waitedMs)} for approval; ${event.to.join(' or ')} may now approve it too (request ${short(r.id)})`;
    }
    case 'grant.revoked':
      return `${event.by} revoked ${event.grant.user}'s access to ${event.grant.connection} (grant ${short(event.grant.id)})${event.reason ? `: ${event.reason}` : ''}`;
    case 'break_glass.used':
      return `BREAK-GLASS: ${event.grant.user} took access to ${event.grant.connection} for ${formatDuration(event.grant.expiresAt - event.grant.createdAt)} without approval: ${event.grant.reason}`;
    case 'grant.created':
      return `${event.grant.user} was granted access to ${event.grant.connection} until ${iso(event.grant.expiresAt)}`;
  }
}

const SLACK_ICON: Record<AccessEvent['type'], string> = {
  'request.created': ':key:',
  'request.approved': ':white_check_mark:',
  'request.denied': ':no_entry:',
  'request.withdrawn': ':leftwards_arrow_with_hook:',
  'request.expired': ':hourglass:',
  'request.escalated': ':alarm_clock:',
  'grant.revoked': ':octagonal_sign:',
  'break_glass.used': ':rotating_light:',
  'grant.created': ':white_check_mark:',
};

/** Slack mrkdwn: &, < and > are control characters and must be escaped in user text. */
export function slackText(event: AccessEvent): string {
  const text = summary(event).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `${SLACK_ICON[event.type]} jitgate: ${text}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
