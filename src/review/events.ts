/**
 * What happens to statement reviews, as events: webhooks (./notify.ts), the audit log (./audit.ts)
 * and live views (the HTTP long-poll, the web console) subscribe here. Same mechanism as access
 * events: synchronous, a listener that throws is reported and skipped.
 */
import { EventBus } from '../access/events.js';
import type { Review } from './repository.js';

export type ReviewEvent =
  | { type: 'review.created'; at: number; review: Review }
  /** One approval; `final` when it was the last one needed and the statement now runs. */
  | { type: 'review.approved'; at: number; review: Review; approver: string; comment: string | null; final: boolean }
  | { type: 'review.denied'; at: number; review: Review; by: string; comment: string | null }
  | { type: 'review.expired'; at: number; review: Review }
  /** Still waiting at the rule's `escalate.after`: `to` joined the approvers; a reminder goes out. */
  | { type: 'review.escalated'; at: number; review: Review; to: string[]; waitedMs: number }
  /** The author cancelled or withdrew it, or the session ended (`by` null: the gateway closed it). */
  | { type: 'review.withdrawn'; at: number; review: Review; by: string | null; reason: string };

export type ReviewEventType = ReviewEvent['type'];

export class ReviewEvents extends EventBus<ReviewEvent> {}
