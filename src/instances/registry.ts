/**
 * This gateway process as one instance among several sharing a store. Each process start gets a
 * random id and a row with a heartbeat; every session row names the instance serving it. Why: a
 * starting gateway used to close every open session as crashed, including those another live
 * gateway was serving. Now an instance closes only what dead instances left:
 *
 *  - at start, sessions no instance row owns (rows from before instances, or of an instance that
 *    stopped cleanly but whose end rows never got in) and those of instances found lost, as
 *    `gateway_crashed` (a restart, as before);
 *  - while running, every HEARTBEAT_EVERY_MS, those of an instance found lost, as `instance_lost`.
 *
 * An instance is lost when its heartbeat is older than LOST_AFTER_MS, or at once when it ran on
 * this host (same hostname and PID namespace) and its pid is gone. Claiming one is a single
 * conditional update in the store (InstanceRepository.claimLost), so of several survivors exactly
 * one closes its sessions, audits `instance.lost` and recovers its recordings; its row is removed
 * when that is done. A claimant that dies half-way leaves the row marked lost, and another
 * instance claims it again once that mark is LOST_AFTER_MS old.
 */
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AuditAppender } from '../audit/log.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import type { InstanceRepository, InstanceRow } from '../store/store.js';

/** How often an instance writes its heartbeat and looks for lost ones. */
export const HEARTBEAT_EVERY_MS = 5_000;
/** A heartbeat older than this means the instance is gone (several missed beats, a slow disk allowed for). */
export const LOST_AFTER_MS = 20_000;

/** An instance another one found lost, and the sessions it closed of it. */
export interface LostInstance {
  instance: InstanceRow;
  sessions: string[];
  reason: 'gateway_crashed' | 'instance_lost';
}

export interface InstanceRegistryOptions {
  repo: InstanceRepository;
  clock: Clock;
  log: Logger;
  heartbeatEveryMs?: number;
  lostAfterMs?: number;
  /** This process as others see it (default: hostname, pid and PID namespace of this process). */
  self?: { hostname: string; pid: number; pidNamespace: string | null };
  /** Whether a pid on this host is running (default: signal 0). */
  pidAlive?: (pid: number) => boolean;
  /** Where a claimed instance is audited (`instance.lost`). */
  audit: AuditAppender;
  /** Recovers the recordings of a claimed instance's sessions (RecordingService.recoverOrphans). */
  recover(lost: LostInstance): void | Promise<void>;
  /**
   * Another instance declared this one lost and closed its sessions in the store (and recovered
   * their recordings): the sessions it still serves must end here too (ProtocolRegistry.killAll).
   */
  declaredLost(): void;
}

export class InstanceRegistry {
  readonly id = randomUUID();
  readonly self: { hostname: string; pid: number; pidNamespace: string | null };
  private readonly every: number;
  private readonly lostAfter: number;
  private cancelTick: (() => void) | undefined;
  private running = false;

  constructor(private readonly o: InstanceRegistryOptions) {
    this.self = o.self ?? { hostname: hostname(), pid: process.pid, pidNamespace: pidNamespace() };
    this.every = o.heartbeatEveryMs ?? HEARTBEAT_EVERY_MS;
    this.lostAfter = o.lostAfterMs ?? LOST_AFTER_MS;
  }

  /** The first 8 characters of the id, as the CLI and the console show it. */
  get shortId(): string {
    return shortInstance(this.id);
  }

  /**
   * Registers this instance, then closes what dead instances left (see the module comment) and
   * starts the heartbeat. Lost instances are audited and their recordings recovered here; the
   * recordings of the `unowned` sessions it closed are the caller's to recover (main.ts). Store
   * errors are thrown: a gateway that cannot register does not start.
   */
  async start(): Promise<{ unowned: string[]; lost: LostInstance[] }> {
    const now = this.o.clock.now();
    await this.o.repo.register({ id: this.id, ...this.self, startedAt: now, heartbeatAt: now });
    this.running = true;
    const lost = await this.claim('gateway_crashed');
    for (const l of lost) await this.settle(l);
    const unowned = await this.o.repo.closeUnownedSessions(now, 'gateway_crashed');
    if (unowned.length > 0) this.o.log.warn({ sessions: unowned.length }, 'closed sessions left open by an earlier gateway process');
    this.schedule();
    return { unowned, lost };
  }

  /** Looks for lost instances now (the heartbeat does this on its own); returns those this instance claimed. */
  async sweep(): Promise<LostInstance[]> {
    const lost = await this.claim('instance_lost');
    for (const l of lost) await this.settle(l);
    return lost;
  }

  /** Stops heart-beating and sweeping, leaving the row: what a killed process leaves (tests). */
  halt(): void {
    this.running = false;
    this.cancelTick?.();
    this.cancelTick = undefined;
  }

  /** A clean shutdown: the row goes, so nobody takes this instance for lost. */
  async close(): Promise<void> {
    if (!this.running) return;
    this.halt();
    try {
      await this.o.repo.remove(this.id);
    } catch (err) {
      this.o.log.warn({ err, instance: this.id }, 'cannot remove this instance from the store; others will find it lost');
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.cancelTick = this.o.clock.at(this.o.clock.now() + this.every, () => {
      // The next beat is scheduled once this one is done: a slow store never stacks them up.
      void this.tick().finally(() => this.schedule());
    });
  }

  private async tick(): Promise<void> {
    const now = this.o.clock.now();
    try {
      if (!(await this.o.repo.heartbeat(this.id, now))) {
        // Another instance took this one for lost (a pause longer than LOST_AFTER_MS, or the store
        // unreachable that long) and closed its sessions in the store; come back so it is not again.
        this.o.log.error({ instance: this.id }, 'this instance was declared lost by another; its open sessions were closed in the store');
        await this.o.repo.register({ id: this.id, ...this.self, startedAt: now, heartbeatAt: now });
        this.o.declaredLost();
      }
    } catch (err) {
      this.o.log.warn({ err, instance: this.id }, 'cannot write this instance heartbeat');
      return;
    }
    try {
      await this.sweep();
    } catch (err) {
      this.o.log.warn({ err }, 'cannot look for lost gateway instances');
    }
  }

  /** Claims every other instance that is lost; each claim also closed its open sessions as `reason`. */
  private async claim(reason: LostInstance['reason']): Promise<LostInstance[]> {
    const now = this.o.clock.now();
    const lost: LostInstance[] = [];
    for (const row of await this.o.repo.list()) {
      if (row.id === this.id || !this.isLost(row, now)) continue;
      const sessions = await this.o.repo.claimLost(row, this.id, now, reason);
      if (!sessions) continue;
      this.o.log.warn(
        { instance: row.id, hostname: row.hostname, pid: row.pid, lastHeartbeatAt: row.heartbeatAt, sessions: sessions.length, reason },
        'closed the sessions of a lost gateway instance',
      );
      lost.push({ instance: row, sessions, reason });
    }
    return lost;
  }

  private isLost(row: InstanceRow, now: number): boolean {
    // Marked lost by a claimant that has not finished in all that time: it died too.
    if (row.lostAt !== null) return row.lostAt <= now - this.lostAfter;
    if (row.heartbeatAt <= now - this.lostAfter) return true;
    const sameHost = row.hostname === this.self.hostname && row.pidNamespace === this.self.pidNamespace;
    // Another gateway in this very process (tests) is alive as long as its heartbeat is.
    if (!sameHost || row.pid === this.self.pid) return false;
    return !(this.o.pidAlive ?? pidAlive)(row.pid);
  }

  /** Audits a claimed instance, recovers its recordings, then drops its row. */
  private async settle(lost: LostInstance): Promise<void> {
    const { instance, sessions, reason } = lost;
    await this.o.audit.append({
      type: 'instance.lost',
      actor: 'gateway',
      subject: instance.id,
      data: {
        instance: instance.id,
        hostname: instance.hostname,
        pid: instance.pid,
        startedAt: instance.startedAt,
        lastHeartbeatAt: instance.heartbeatAt,
        reason,
        sessions,
        by: this.id,
      },
    });
    try {
      await this.o.recover(lost);
    } catch (err) {
      // The row stays marked lost: another instance claims it again later and retries.
      this.o.log.error({ err, instance: instance.id }, 'cannot recover the recordings of a lost gateway instance');
      return;
    }
    await this.o.repo.remove(instance.id);
  }
}

/** An instance id as the CLI and the console show it. */
export function shortInstance(id: string): string {
  return id.slice(0, 8);
}

/** True when a process with this pid exists (EPERM: it does, owned by someone else). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Linux: the PID namespace this process sees (containers have their own); null elsewhere. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}
