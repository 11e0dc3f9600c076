/**
 * Cancel keys shared through the store (core/protocol-engine.ts SharedCancelKeys): which instance
 * handed out each key, and the cancels that reached another instance, which the serving instance
 * takes at its next catch-up and carries out (checking the secret itself, as the server would).
 * Store trouble never stands in a session's way: a key that cannot be recorded is this instance's
 * own, a cancel that cannot be passed on is dropped, as a lost cancel packet would be. A MySQL KILL
 * names an id, not a secret: the owner is checked here against the session holding the id.
 */
import type { SharedCancelKeys } from '../core/protocol-engine.js';
import type { Protocol } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { InstanceRepository } from '../store/store.js';

export class CancelKeys {
  constructor(
    private readonly o: {
      repo: InstanceRepository;
      self: string;
      clock: { now(): number };
      log: Logger;
      /** Carries out a cancel passed on to this instance (ProtocolRegistry.cancelQuery). */
      cancelHere(protocol: Protocol, pid: number, secret: number): void;
    },
  ) {}

  /** The keys of one protocol's listener. */
  of(protocol: Protocol): SharedCancelKeys {
    const { repo, self, log } = this.o;
    return {
      claim: async (pid, sessionId) => {
        try {
          return await repo.claimCancelKey({ protocol, pid, instanceId: self, sessionId });
        } catch (err) {
          log.warn({ err, session: sessionId }, 'cannot share a cancel key with other gateway instances');
          return true;
        }
      },
      release: (pid) => {
        repo.releaseCancelKey(protocol, pid, self).catch((err: unknown) => log.warn({ err }, 'cannot drop a shared cancel key'));
      },
      passOnKill: async (pid, requester, queryOnly) => {
        // Store trouble here is the KILL's failure (the client gets an error), not a lost packet.
        const holder = await repo.cancelKeyHolder(protocol, pid);
        if (!holder || holder.user === null || holder.instanceId === self) return 'unknown';
        if (holder.user !== requester) return 'not_owner';
        const requestedAt = this.o.clock.now();
        const asked = queryOnly
          ? await repo.requestCancel({ protocol, pid, secret: 0, requestedAt })
          : await repo.requestKill({
              sessionId: holder.sessionId,
              instanceId: holder.instanceId,
              by: requester,
              reason: 'KILL CONNECTION',
              requestedAt,
            });
        if (!asked) return 'unknown';
        log.info({ protocol, pid, instance: holder.instanceId, queryOnly }, 'passed a KILL on to the gateway instance serving its session');
        return 'passed';
      },
      passOn: (pid, secret) => {
        repo.requestCancel({ protocol, pid, secret, requestedAt: this.o.clock.now() }).then(
          (passed) => passed && log.info({ protocol, pid }, 'passed a cancel on to the gateway instance serving its session'),
          (err: unknown) => log.warn({ err }, 'cannot pass a cancel on to another gateway instance'),
        );
      },
    };
  }

  /** Carries out the cancels other instances passed on to this one. */
  async catchUp(): Promise<void> {
    for (const c of await this.o.repo.takeCancels(this.o.self)) this.o.cancelHere(c.protocol as Protocol, c.pid, c.secret);
  }
}
