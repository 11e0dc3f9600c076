/**
 * Builds PendingDecisions (types.ts). A statement may wait for the gateway first (masking reading
 * its catalog) and only then turn out to need a person, so whether and when it is held is told to
 * listeners as it happens instead of being a property fixed when the promise is made.
 */
import type { Decision, HoldInfo, PendingDecision } from './types.js';

export interface PendingDecisionControl {
  pending: PendingDecision;
  /** The statement now waits for a person: tells every listener, now and later. Once only. */
  held(hold: HoldInfo): void;
}

export function pendingDecision(decision: Promise<Decision>): PendingDecisionControl {
  let hold: HoldInfo | undefined;
  const listeners: Array<(hold: HoldInfo) => void> = [];
  const pending = Object.assign(decision, {
    onHold(listener: (hold: HoldInfo) => void): void {
      if (hold) listener(hold);
      else listeners.push(listener);
    },
  });
  return {
    pending,
    held(h: HoldInfo): void {
      if (hold) return;
      hold = h;
      for (const listener of listeners.splice(0)) listener(h);
    },
  };
}

/** A pending decision that another one's holds are passed through to (a wrapper's `.then`). */
export function relayHolds(from: PendingDecision, to: Promise<Decision>): PendingDecision {
  const control = pendingDecision(to);
  from.onHold(control.held);
  return control.pending;
}
