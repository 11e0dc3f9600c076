/**
 * Runs the ephemeral-role sweeps: once at gateway start (roles left by a crash or a kill -9) and then
 * every `intervalMs` on the injected Clock (roles whose drop failed at session end, e.g. while the
 * backend was down). A pass never overlaps the previous one: the next is armed when one finishes.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../obs/log.js';

export interface Sweepable {
  readonly connection: string;
  sweep(): Promise<unknown>;
}

export const DEFAULT_JANITOR_INTERVAL_MS = 5 * 60_000;

export class Janitor {
  private cancel: (() => void) | undefined;
  private stopped = false;
  /** The pass in progress or the last one finished; resolves, never rejects. */
  lastPass: Promise<void> = Promise.resolve();

  constructor(
    private readonly targets: readonly Sweepable[],
    private readonly clock: Clock,
    private readonly log: Pick<Logger, 'warn'>,
    private readonly intervalMs = DEFAULT_JANITOR_INTERVAL_MS,
  ) {}

  /** Starts the first pass now and schedules the rest; returns the first pass. */
  start(): Promise<void> {
    return this.pass();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }

  private pass(): Promise<void> {
    this.cancel = undefined;
    this.lastPass = (async () => {
      for (const t of this.targets) {
        if (this.stopped) return;
        try {
          await t.sweep();
        } catch (err) {
          this.log.warn({ connection: t.connection, err }, 'janitor pass failed');
        }
      }
    })().finally(() => {
      if (!this.stopped) this.cancel = this.clock.at(this.clock.now() + this.intervalMs, () => void this.pass());
    });
    return this.lastPass;
  }
}
