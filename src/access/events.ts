/**
 * What happens to access, as events: notifications, live-session enforcement and (later) the audit
 * log subscribe here. Listeners run synchronously in emit order; one that throws is reported and
 * skipped, so a broken subscriber never fails the API call or the decision that emitted the event.
 */
import type { AccessRequest, GrantRecord } from './repository.js';

export type AccessEvent =
  | { type: 'request.created'; at: number; request: AccessRequest }
  | { type: 'request.approved'; at: number; request: AccessRequest; approver: string; comment: string | null; final: boolean }
  | { type: 'request.denied'; at: number; request: AccessRequest; by: string; reason: string }
  | { type: 'request.withdrawn'; at: number; request: AccessRequest; reason: string }
  | { type: 'request.expired'; at: number; request: AccessRequest }
  /** Waited past the policy's `escalate.after`: `to` may now approve too, and people are reminded. */
  | { type: 'request.escalated'; at: number; request: AccessRequest; to: string[]; waitedMs: number }
  | { type: 'grant.created'; at: number; grant: GrantRecord; request: AccessRequest | null }
  | { type: 'grant.revoked'; at: number; grant: GrantRecord; by: string; reason: string | null }
  | { type: 'break_glass.used'; at: number; request: AccessRequest; grant: GrantRecord };

export type AccessEventType = AccessEvent['type'];

/**
 * Synchronous publish/subscribe for one kind of event (access here; statement reviews use it too).
 * A listener that throws is reported to `onListenerError` and skipped.
 */
export class EventBus<E extends { type: string }> {
  private listeners: Array<(event: E) => void> = [];

  constructor(private readonly onListenerError: (err: unknown, event: E) => void = () => undefined) {}

  /** Subscribe; returns the unsubscribe function. */
  on(listener: (event: E) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(event: E): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }
}

export class AccessEvents extends EventBus<AccessEvent> {}

/** Where events can be listened to: one bus, or several as one. */
export type EventSource<E> = { on(listener: (event: E) => void): () => void };

/** Several buses listened to as one (this instance's events and those made through others). */
export function allOf<E>(...buses: ReadonlyArray<EventSource<E>>): EventSource<E> {
  return {
    on(listener) {
      const offs = buses.map((bus) => bus.on(listener));
      return () => offs.forEach((off) => off());
    },
  };
}
