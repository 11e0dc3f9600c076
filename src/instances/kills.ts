/**
 * `jitgate kill` and the API's kill, whichever instance they reach. A session served here ends at
 * once. One that another instance serves is asked of that instance through the store, and it ends
 * the session at its next catch-up (StoreCatchUp), auditing the kill and noting it in the
 * recording as for a kill made there.
 */
import type { Logger } from '../obs/log.js';
import type { InstanceRepository } from '../store/store.js';

export type KillOutcome = 'killed' | 'requested' | 'not_live';

export class SessionKills {
  constructor(
    private readonly o: {
      repo: InstanceRepository;
      /** This instance's id. */
      self: string;
      clock: { now(): number };
      log: Logger;
      /** Ends a session this instance serves (RecordingService.kill: audited, noted, ended). */
      killHere(sessionId: string, by: string, reason: string): 'killed' | 'not_live';
    },
  ) {}

  /** Ends the session here, or asks the instance serving it to. */
  async kill(session: { id: string; instanceId: string | null }, by: string, reason: string): Promise<KillOutcome> {
    if (this.o.killHere(session.id, by, reason) === 'killed') return 'killed';
    if (session.instanceId === null || session.instanceId === this.o.self) return 'not_live';
    const asked = await this.o.repo.requestKill({
      sessionId: session.id,
      instanceId: session.instanceId,
      by,
      reason,
      requestedAt: this.o.clock.now(),
    });
    if (asked)
      this.o.log.info({ session: session.id, instance: session.instanceId, by }, 'asked another gateway instance to end a session');
    return asked ? 'requested' : 'not_live';
  }

  /** Carries out the kills other instances asked of this one. */
  async catchUp(): Promise<void> {
    for (const k of await this.o.repo.takeKills(this.o.self)) {
      if (this.o.killHere(k.sessionId, k.by, k.reason) === 'not_live')
        this.o.log.info({ session: k.sessionId, by: k.by }, 'a kill asked by another gateway instance found the session already ended');
    }
  }
}
