/**
 * Signs the audit chain's head every `intervalMs` on the injected Clock (and once more at shutdown),
 * so at most one interval of entries is protected by the hash chain alone.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import type { AuditLog } from './log.js';
import type { AuditSigner } from './signing.js';

export class CheckpointJob {
  private cancel: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly o: { audit: AuditLog; signer: AuditSigner; clock: Clock; intervalMs: number; log: Logger },
  ) {}

  start(): void {
    this.arm();
  }

  /** Signs now (if there is anything new); never throws. */
  runOnce(): void {
    try {
      const entry = this.o.audit.checkpoint(this.o.signer);
      if (entry) this.o.log.debug({ upTo: entry.seq - 1 }, 'audit checkpoint signed');
    } catch (err) {
      this.o.log.error({ err }, 'cannot sign an audit checkpoint');
    }
  }

  /** Stops the timer and signs the head one last time. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel?.();
    this.runOnce();
  }

  private arm(): void {
    if (this.stopped) return;
    this.cancel = this.o.clock.at(this.o.clock.now() + this.o.intervalMs, () => {
      this.runOnce();
      this.arm();
    });
  }
}
