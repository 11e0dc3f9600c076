/**
 * The gateway rotates its own backend password: `jitgate credentials rotate CONNECTION` and
 * `credentials.rotate.every` on a connection. After the first rotation nobody knows the password
 * the gateway logs in with; it exists only in the gateway's secret store.
 *
 * One rotation, with no moment where a session fails:
 *   1. a new random password is staged in the secret store beside the current one (a crash from
 *      here on never loses a password the backend may hold), and offered to backend logins as the
 *      other password of the pair (core/backend-password.ts: a refused login retries with it);
 *   2. the backend is told (backend-passwords.ts), logged in with the current password;
 *   3. the staged password becomes the stored one and the one every new backend login uses;
 *   4. Redis only: the old password, valid beside the new one until now, is removed.
 * Sessions already connected keep their backend connections. A failure before 3 leaves the old
 * password in place when the backend still takes it; when the backend cannot be reached to tell,
 * both stay staged and offered until the next rotation or start settles it. Failures are audited
 * (`credentials.rotate.failed`), counted and logged. Success is audited as `credentials.rotated`
 * (Redis: with `oldPasswordRemoved: false` if step 4 failed). No secret is in either.
 *
 * Only a `secret:NAME` password can be rotated: `env:` and `file:` are written by someone else.
 * Several gateway instances on one store: a store lease keeps two from rotating one connection at
 * once, and the others pick the new password up from the store the first time the backend refuses
 * the one they hold (core/backend-password.ts asks `target.reload`).
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditAppender } from '../../audit/log.js';
import type { ConnectionConfig } from '../../config/types.js';
import type { Clock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import { tryParseSecretRef } from '../../core/secret-ref.js';
import type { BackendTarget, Protocol } from '../../core/types.js';
import type { Logger } from '../../obs/log.js';
import type { SecretStore } from '../secret-store.js';
import { backendPasswords, type BackendPasswords } from './backend-passwords.js';
import { mysqlNativeHash, newBackendPassword, redisPasswordHash } from './password-forms.js';
import { privilegeWarnings } from './privileges.js';
import { RotationRepository } from './repository.js';

/** How long one instance may hold a connection's rotation before another may take it over. */
const LEASE_MS = 5 * 60_000;
/** After a failed scheduled rotation, the next try (never later than the schedule itself). */
const RETRY_AFTER_FAILURE_MS = 10 * 60_000;
/** A scheduled rotation that found another one running looks again this much later. */
const BUSY_RETRY_MS = 60_000;

export type RotationRefusal = 'unknown_connection' | 'not_rotatable' | 'busy' | 'failed';

/** Why a rotation did not happen; `kind` says whether anything was tried. The message names no secret. */
export class RotationError extends Error {
  constructor(
    readonly kind: RotationRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'RotationError';
  }
}

export interface RotationResult {
  connection: string;
  rotatedAt: number;
  nextRotationAt: number | null;
}

export interface CredentialStatus {
  connection: string;
  protocol: Protocol;
  backendUser: string;
  /** `static`: every session logs in as the stored user; `ephemeral`: a role or user per session. */
  mode: 'static' | 'ephemeral';
  /** How the gateway logs in, in words. */
  login: string;
  /** Where the password comes from: `{ kind: 'secret', name }`, `env`, `file`, or null (none). */
  password: { kind: string; name: string } | null;
  /** Whether `credentials rotate` works here, and why not. */
  rotatable: boolean;
  notRotatableBecause?: string;
  rotateEveryMs: number | null;
  lastRotatedAt: number | null;
  nextRotationAt: number | null;
  lastFailure: { at: number; reason: string } | null;
  /** More privilege than the sessions need, in words; `error` when it could not be read. */
  privileges: { checked: boolean; warnings: string[]; error?: string };
}

export interface CredentialRotationOptions {
  connections: readonly ConnectionConfig[];
  /** The resolved targets every backend login reads; a rotation updates their password in place. */
  targets: ReadonlyMap<string, BackendTarget>;
  secrets: SecretStore;
  database: Database.Database;
  clock: Clock;
  log: Logger;
  audit: AuditAppender;
  registry?: Registry;
  /** Per protocol, how the backend is told (tests replace one to make it fail). */
  backendPasswords?: (protocol: Protocol) => BackendPasswords;
}

export class CredentialRotation {
  private readonly repo: RotationRepository;
  private readonly owner = randomUUID();
  private readonly timers = new Map<string, () => void>();
  private readonly inProgress = new Set<string>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly passwordsFor: (protocol: Protocol) => BackendPasswords;
  private readonly rotations?: Counter<'connection' | 'outcome'>;
  private readonly lastRotated?: Gauge<'connection'>;
  private stopped = false;

  constructor(private readonly o: CredentialRotationOptions) {
    this.repo = new RotationRepository(o.database);
    this.passwordsFor = o.backendPasswords ?? backendPasswords;
    for (const c of o.connections) {
      const name = this.secretName(c);
      const target = o.targets.get(c.name);
      if (name !== undefined && target) target.reload = () => this.reload(c.name, name, target);
    }
    if (o.registry) {
      this.rotations = new Counter({
        name: 'jitgate_credential_rotations_total',
        help: "Rotations of the gateway's own backend password, by connection and outcome (rotated, failed)",
        labelNames: ['connection', 'outcome'],
        registers: [o.registry],
      });
      this.lastRotated = new Gauge({
        name: 'jitgate_credential_last_rotated_timestamp_seconds',
        help: 'When the gateway last rotated its backend password on the connection (Unix time)',
        labelNames: ['connection'],
        registers: [o.registry],
      });
      for (const c of o.connections) {
        const at = this.repo.get(c.name).lastRotatedAt;
        if (at !== null) this.lastRotated.set({ connection: c.name }, at / 1000);
      }
    }
  }

  /** Settles rotations a crash interrupted, then keeps each connection's schedule. */
  async start(): Promise<void> {
    for (const c of this.o.connections) {
      const name = this.secretName(c);
      const target = this.o.targets.get(c.name);
      const staged = name !== undefined && target ? await this.o.secrets.staged(name) : undefined;
      if (name !== undefined && target && staged !== undefined) {
        // Until settled, logins try both passwords; a rotation due now waits (busy) until it is.
        target.otherPassword = staged;
        this.inProgress.add(c.name);
        void this.track(
          this.settle(c, name, target)
            .catch((err: unknown) =>
              this.o.log.error({ connection: c.name, err: reasonOf(err) }, 'could not settle an interrupted credential rotation'),
            )
            .finally(() => this.inProgress.delete(c.name)),
        );
      }
      if (c.rotation) this.schedule(c);
    }
  }

  /** Stops the schedule and waits for a rotation in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }

  /** Rotates now. `by` is who asked (an admin, or `gateway` for the schedule). Throws a RotationError. */
  rotate(connection: string, by: string, opts: { scheduled?: boolean } = {}): Promise<RotationResult> {
    return this.track(this.rotateNow(connection, by, opts.scheduled ?? false));
  }

  async status(): Promise<CredentialStatus[]> {
    return Promise.all(this.o.connections.map((c) => this.statusOf(c)));
  }

  private async rotateNow(connection: string, by: string, scheduled: boolean): Promise<RotationResult> {
    const c = this.o.connections.find((x) => x.name === connection);
    const target = this.o.targets.get(connection);
    if (!c || !target) throw new RotationError('unknown_connection', `connection "${connection}" does not exist`);
    const why = this.notRotatable(c);
    if (why !== undefined) throw new RotationError('not_rotatable', `connection "${connection}": ${why}`);
    const name = this.secretName(c)!;
    if (this.stopped) throw new RotationError('busy', 'the gateway is shutting down');
    const now = this.o.clock.now();
    if (this.inProgress.has(connection) || !this.repo.tryLease(connection, this.owner, now, now + LEASE_MS)) {
      throw new RotationError('busy', `connection "${connection}": a rotation is already running (this or another gateway instance)`);
    }
    this.inProgress.add(connection);
    const passwords = this.passwordsFor(c.type);
    const old = target.password!;
    let next: string | undefined;
    /** What the backend accepts if this fails: the old password, or (backend unreachable) not known. */
    let stillValid: 'old' | 'unknown' = 'old';
    try {
      if ((await this.o.secrets.staged(name)) !== undefined) {
        await this.settle(c, name, target);
        if ((await this.o.secrets.staged(name)) !== undefined) {
          stillValid = 'unknown';
          throw new RotationError(
            'failed',
            'an earlier rotation is not settled yet: the backend accepted neither password; try again when it is reachable',
          );
        }
      }
      const current = target.password!;
      next = newBackendPassword();
      await this.o.secrets.stage(name, next);
      target.otherPassword = next;
      try {
        await passwords.change(target, next);
      } catch (err) {
        // A connection lost after the statement was sent: whether the backend took it decides.
        if (!(await passwords.logsIn(target, next))) {
          if (await passwords.logsIn(target, current)) {
            // The backend kept the old password: so does the gateway.
            await this.o.secrets.discardStaged(name);
            target.otherPassword = undefined;
          } else {
            // Neither logs in now (backend unreachable): keep both, logins try both, and the next
            // rotation or start settles it.
            stillValid = 'unknown';
          }
          throw err;
        }
      }
      await this.o.secrets.promote(name);
      target.password = next;
      target.otherPassword = current;
      let retireFailure: string | undefined;
      try {
        await passwords.retire(target, current);
      } catch (err) {
        retireFailure = `the old password could not be removed from the backend and is still valid there: ${scrub(reasonOf(err), [current, next])}`;
      } finally {
        target.otherPassword = undefined;
      }
      const at = this.o.clock.now();
      this.repo.recordRotated(connection, at);
      this.rotations?.inc({ connection, outcome: 'rotated' });
      this.lastRotated?.set({ connection }, at / 1000);
      await this.o.audit.append({
        type: 'credentials.rotated',
        actor: by,
        subject: connection,
        data: {
          connection,
          protocol: c.type,
          backendUser: c.user,
          secret: `secret:${name}`,
          scheduled,
          ...(retireFailure ? { oldPasswordRemoved: false, reason: retireFailure } : {}),
        },
      });
      if (retireFailure) {
        this.repo.recordFailure(connection, at, retireFailure);
        this.o.log.warn(
          { connection, backendUser: c.user, reason: retireFailure },
          "rotated the gateway's backend password, but the old one is still valid",
        );
      } else {
        this.o.log.info({ connection, backendUser: c.user, by, scheduled }, "rotated the gateway's backend password");
      }
      return { connection, rotatedAt: at, nextRotationAt: c.rotation ? at + c.rotation.everyMs : null };
    } catch (err) {
      const reason = scrub(reasonOf(err), [old, next]);
      const at = this.o.clock.now();
      this.repo.recordFailure(connection, at, reason);
      this.rotations?.inc({ connection, outcome: 'failed' });
      await this.o.audit.append({
        type: 'credentials.rotate.failed',
        actor: by,
        subject: connection,
        data: { connection, protocol: c.type, backendUser: c.user, secret: `secret:${name}`, scheduled, reason, stillValid },
      });
      this.o.log.error({ connection, backendUser: c.user, by, scheduled, reason }, "could not rotate the gateway's backend password");
      throw err instanceof RotationError ? err : new RotationError('failed', `connection "${connection}": ${reason}`);
    } finally {
      this.inProgress.delete(connection);
      this.repo.releaseLease(connection, this.owner);
    }
  }

  /**
   * Another gateway instance sharing the store rotated (or is rotating) this password: take what the
   * store holds now. Called by a backend login the backend refused; true when anything changed.
   */
  private async reload(connection: string, name: string, target: BackendTarget): Promise<boolean> {
    // This instance's own rotation keeps the target and the store in step.
    if (this.inProgress.has(connection)) return false;
    let current: string | undefined;
    let staged: string | undefined;
    try {
      current = await this.o.secrets.get(name);
      staged = await this.o.secrets.staged(name);
    } catch (err) {
      this.o.log.error({ connection, err: reasonOf(err) }, 'could not read the backend password again from the secret store');
      return false;
    }
    if (current === undefined) return false;
    const other = staged !== undefined && staged !== current ? staged : undefined;
    if (current === target.password && other === target.otherPassword) return false;
    target.password = current;
    target.otherPassword = other;
    this.o.log.info({ connection }, 'picked up a backend password another gateway instance rotated');
    return true;
  }

  /** A rotation a crash interrupted: the staged password wins if the backend takes it. */
  private async settle(c: ConnectionConfig, name: string, target: BackendTarget): Promise<void> {
    const staged = await this.o.secrets.staged(name);
    if (staged === undefined) return;
    const passwords = this.passwordsFor(c.type);
    if (staged === target.password) {
      await this.o.secrets.discardStaged(name);
    } else if (await passwords.logsIn(target, staged)) {
      const old = target.password;
      await this.o.secrets.promote(name);
      target.password = staged;
      if (old !== undefined)
        await passwords
          .retire(target, old)
          .catch((err: unknown) =>
            this.o.log.warn({ connection: c.name, err: reasonOf(err) }, 'could not remove the old backend password'),
          );
      const at = this.o.clock.now();
      this.repo.recordRotated(c.name, at);
      this.lastRotated?.set({ connection: c.name }, at / 1000);
      await this.o.audit.append({
        type: 'credentials.rotated',
        actor: 'gateway',
        subject: c.name,
        data: { connection: c.name, protocol: c.type, backendUser: c.user, secret: `secret:${name}`, recovered: true },
      });
    } else if (target.password !== undefined && (await passwords.logsIn(target, target.password))) {
      await this.o.secrets.discardStaged(name);
    } else {
      this.o.log.warn(
        { connection: c.name },
        'an interrupted credential rotation stays unsettled: the backend accepts neither password now',
      );
      return;
    }
    target.otherPassword = undefined;
  }

  private schedule(c: ConnectionConfig, notBefore = 0): void {
    if (this.stopped || !c.rotation) return;
    const due = Math.max(this.nextDue(c) ?? this.o.clock.now(), notBefore);
    this.timers.get(c.name)?.();
    this.timers.set(
      c.name,
      this.o.clock.at(due, () => {
        this.timers.delete(c.name);
        // Another instance sharing the store may have rotated since this timer was set.
        if ((this.nextDue(c) ?? Infinity) > this.o.clock.now()) return this.schedule(c);
        void this.rotate(c.name, 'gateway', { scheduled: true }).then(
          () => this.schedule(c),
          (err: unknown) => this.schedule(c, err instanceof RotationError && err.kind === 'busy' ? this.o.clock.now() + BUSY_RETRY_MS : 0),
        );
      }),
    );
  }

  /** When the schedule rotates next: `every` after the last rotation (now, if never), later after a failure. */
  private nextDue(c: ConnectionConfig): number | null {
    if (!c.rotation) return null;
    const row = this.repo.get(c.name);
    let due = row.lastRotatedAt === null ? this.o.clock.now() : row.lastRotatedAt + c.rotation.everyMs;
    if (row.lastFailureAt !== null && (row.lastRotatedAt === null || row.lastFailureAt > row.lastRotatedAt)) {
      due = Math.max(due, row.lastFailureAt + Math.min(c.rotation.everyMs, RETRY_AFTER_FAILURE_MS));
    }
    return due;
  }

  private secretName(c: ConnectionConfig): string | undefined {
    if (c.password === undefined) return undefined;
    const parsed = tryParseSecretRef(c.password);
    return parsed.ok && parsed.ref.kind === 'secret' ? parsed.ref.name : undefined;
  }

  private notRotatable(c: ConnectionConfig): string | undefined {
    if (c.password === undefined) return 'the gateway logs in without a password, so there is none to rotate';
    const parsed = tryParseSecretRef(c.password);
    if (!parsed.ok || parsed.ref.kind !== 'secret') {
      const kind = parsed.ok ? parsed.ref.kind : 'unknown';
      return (
        `the password comes from ${kind === 'env' ? 'an environment variable' : kind === 'file' ? 'a file' : 'a reference'} (${kind}:), which the gateway cannot write; ` +
        'put it in the secret store (jitgate secrets set NAME) and reference it as secret:NAME'
      );
    }
    if (this.o.targets.get(c.name)?.password === undefined) return 'the gateway holds no password for it';
    return undefined;
  }

  private async statusOf(c: ConnectionConfig): Promise<CredentialStatus> {
    const row = this.repo.get(c.name);
    const target = this.o.targets.get(c.name);
    const why = this.notRotatable(c);
    const ephemeral = c.credentials?.mode === 'ephemeral';
    let privileges: CredentialStatus['privileges'];
    try {
      privileges = target
        ? { checked: true, warnings: await privilegeWarnings(target, { ephemeral, rotates: why === undefined }) }
        : { checked: false, warnings: [], error: 'no backend target' };
    } catch (err) {
      privileges = { checked: false, warnings: [], error: scrub(reasonOf(err), [target?.password]) };
    }
    const parsed = c.password === undefined ? undefined : tryParseSecretRef(c.password);
    return {
      connection: c.name,
      protocol: c.type,
      backendUser: c.user,
      mode: ephemeral ? 'ephemeral' : 'static',
      login: loginInWords(c),
      password: parsed?.ok ? { kind: parsed.ref.kind, name: parsed.ref.kind === 'file' ? parsed.ref.path : parsed.ref.name } : null,
      rotatable: why === undefined,
      ...(why !== undefined ? { notRotatableBecause: why } : {}),
      rotateEveryMs: c.rotation?.everyMs ?? null,
      lastRotatedAt: row.lastRotatedAt,
      nextRotationAt: why === undefined ? this.nextDue(c) : null,
      lastFailure: row.lastFailureAt !== null && row.lastFailure !== null ? { at: row.lastFailureAt, reason: row.lastFailure } : null,
      privileges,
    };
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p)).catch(() => undefined);
    return p;
  }
}

function loginInWords(c: ConnectionConfig): string {
  const creds = c.credentials;
  if (creds?.mode === 'ephemeral') {
    return c.type === 'redis'
      ? `as ${c.user}, which creates an ACL user per session (rules ${(creds.acl ?? []).join(' ')}) and deletes it when the session ends`
      : `as ${c.user}, which creates a ${c.type === 'mysql' ? 'user' : 'role'} per session (granted ${creds.roles.join(', ')}) and drops it when the session ends`;
  }
  return `as ${c.user} with the stored password; every session shares this backend user`;
}

/** An error in words for the audit log and the API, without internals of the gateway's own code. */
function reasonOf(err: unknown): string {
  if (err instanceof RotationError) return err.message;
  if (err instanceof GatewayError) return err.detail ? `${err.message}: ${err.detail}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A backend's error may quote the statement: no password, nor a form of one, leaves in a reason. */
function scrub(text: string, passwords: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const p of passwords) {
    if (p === undefined) continue;
    for (const form of [p, redisPasswordHash(p), mysqlNativeHash(p)]) out = out.split(form).join('[redacted]');
  }
  return out;
}
