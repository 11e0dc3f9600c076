/**
 * Signs the audit chain's head every `intervalMs` on the injected Clock, after every
 * `everyEntries` entries appended, and once more at shutdown, so only the entries since the last
 * checkpoint are protected by the hash chain alone. After each checkpoint the signed head goes to
 * the anchor file outside the data directory (./anchor.ts), when one is configured: cutting the
 * log's tail, checkpoints included, then no longer verifies.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { readAnchor, writeAnchor } from './anchor.js';
import { CHECKPOINT_TYPE } from './chain.js';
import type { AuditLog } from './log.js';
import type { AuditSigner } from './signing.js';

export interface CheckpointJobOptions {
  audit: AuditLog;
  signer: AuditSigner;
  clock: Clock;
  intervalMs: number;
  log: Logger;
  /** Sign after this many entries too (default: only on the interval). */
  everyEntries?: number;
  /** Where the signed head is anchored (a path outside the data directory), if anywhere. */
  anchorFile?: string | null;
}

export class CheckpointJob {
  private cancel: (() => void) | undefined;
  private stopped = false;
  private sinceLast = 0;
  private soon = false;
  private unsubscribe: (() => void) | undefined;
  /** The anchor holds a checkpoint the log does not (or cannot be read): left alone from then on. */
  private anchorBroken = false;

  constructor(private readonly o: CheckpointJobOptions) {}

  async start(): Promise<void> {
    // At once: a log cut while the gateway was down is reported now, not at the first checkpoint.
    try {
      await this.anchor();
    } catch (err) {
      this.o.log.error({ err }, 'cannot anchor the audit log');
    }
    const every = this.o.everyEntries;
    if (every !== undefined && every > 0) {
      this.unsubscribe = this.o.audit.onAppend(() => {
        if (++this.sinceLast < every || this.soon) return;
        // Not inside the append that triggered it (the caller may be in a transaction): right after.
        this.soon = true;
        setImmediate(() => {
          this.soon = false;
          if (!this.stopped) void this.runOnce();
        });
      });
    }
    this.arm();
  }

  /** Signs now (if there is anything new) and anchors the signed head; never rejects. */
  async runOnce(): Promise<void> {
    this.sinceLast = 0;
    try {
      const entry = await this.o.audit.checkpoint(this.o.signer);
      if (entry) this.o.log.debug({ upTo: entry.seq - 1 }, 'audit checkpoint signed');
      await this.anchor();
    } catch (err) {
      this.o.log.error({ err }, 'cannot sign an audit checkpoint');
    }
  }

  /** Stops the timer and signs the head one last time. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel?.();
    this.unsubscribe?.();
    await this.runOnce();
  }

  /**
   * Writes the last checkpoint to the anchor file, unless it holds that one already. An anchor the
   * log no longer holds is evidence (the log was cut or replaced): it is never overwritten; an
   * operator who starts over on purpose removes it.
   */
  private async anchor(): Promise<void> {
    const path = this.o.anchorFile;
    if (!path || this.anchorBroken) return;
    const last = await this.o.audit.lastCheckpoint();
    let current;
    try {
      current = readAnchor(path);
    } catch (err) {
      this.anchorBroken = true;
      this.o.log.error({ err, anchor: path }, 'the audit anchor cannot be read; it is left as it is and no longer updated');
      return;
    }
    if (current && !(await this.holds(current))) {
      this.anchorBroken = true;
      this.o.log.error(
        { anchor: path, anchoredSeq: current.seq, head: (await this.o.audit.head())?.seq ?? 0 },
        'the audit log does not hold the checkpoint its anchor holds: entries were removed or replaced (run jitgate audit verify); the anchor is kept as evidence and no longer updated',
      );
      return;
    }
    if (!last || current?.hash === last.hash) return;
    try {
      writeAnchor(path, last);
    } catch (err) {
      this.o.log.error({ err, anchor: path }, 'cannot write the audit anchor');
    }
  }

  private async holds(anchor: { seq: number; hash: string }): Promise<boolean> {
    const e = await this.o.audit.entryAt(anchor.seq);
    return e !== undefined && e.type === CHECKPOINT_TYPE && e.hash === anchor.hash;
  }

  private arm(): void {
    if (this.stopped) return;
    this.cancel = this.o.clock.at(this.o.clock.now() + this.o.intervalMs, () => {
      void this.runOnce().finally(() => this.arm());
    });
  }
}
