/**
 * Ephemeral credentials for one PostgreSQL connection: each session gets a role of its own, made at
 * session start and dropped at session end, so no person or agent ever holds a standing database
 * login, and what a session did is attributable to one role.
 *
 * Fail closed: if the role cannot be recorded or created, the session does not start. Dropping is
 * best effort at session end; what fails stays recorded and the janitor (sweep) retries it.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../../core/errors.js';
import type { BackendLease, BackendTarget } from '../../core/types.js';
import type { Logger } from '../../obs/log.js';
import { BackendQueryError } from '../../protocols/postgres/admin-client.js';
import type { BackendCredentials, SessionCredentialRequest } from '../backend-credentials.js';
import { MaybeCreatedError, PostgresRoleAdmin, type ListedRole, type RoleAdmin } from './pg-roles.js';
import type { EphemeralRoleRepository } from './repository.js';
import { formatMark, parseMark, roleNameFor, scramPasswordVerifier } from './role-sql.js';

export interface EphemeralSettings {
  /** Roles the session role becomes a member of; its privileges are theirs and no more. */
  roles: readonly string[];
  rolePrefix: string;
}

export interface EphemeralCredentialsOptions {
  /** The connection's stored credential; it must be allowed to CREATE ROLE. */
  admin: BackendTarget;
  settings: EphemeralSettings;
  repository: EphemeralRoleRepository;
  /** This deployment's id (EphemeralRoleRepository.gatewayId), written into each role's comment. */
  gatewayId: string;
  now: () => number;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Ids of sessions the state store still counts as live (their roles are not the janitor's). */
  liveSessions?: () => Promise<ReadonlySet<string>>;
  roleAdmin?: RoleAdmin;
}

export interface SweepResult {
  dropped: string[];
  failed: string[];
  /** Roles with jitgate's mark from another deployment (or another connection): left alone. */
  foreign: string[];
}

export class EphemeralCredentials implements BackendCredentials {
  readonly connection: string;
  private readonly admin: RoleAdmin;
  /** Roles by session id, from just before creation until the drop attempt at release is over. */
  private readonly held = new Map<string, string>();
  private readonly releasing = new Set<Promise<unknown>>();
  private sweeping: Promise<SweepResult> | undefined;
  private closed = false;

  constructor(private readonly options: EphemeralCredentialsOptions) {
    this.connection = options.admin.connection;
    this.admin = options.roleAdmin ?? new PostgresRoleAdmin(options.admin);
  }

  /** Number of roles currently held by live sessions. */
  get active(): number {
    return this.held.size;
  }

  async createFor(request: SessionCredentialRequest): Promise<BackendLease> {
    const { sessionId, user, validUntil } = request;
    const { repository, settings, log } = this.options;
    if (this.closed) throw new GatewayError('shutting_down', 'the jitgate gateway is shutting down');
    const name = roleNameFor(settings.rolePrefix, sessionId);
    const context = { connection: this.connection, session: sessionId, user, role: name };
    this.held.set(sessionId, name);
    try {
      repository.recordCreating({ connection: this.connection, name, sessionId, user, validUntil, createdAt: this.options.now() });
    } catch (err) {
      this.held.delete(sessionId);
      log.error({ ...context, err }, 'cannot record the ephemeral role; refusing the session');
      throw new GatewayError('store_unavailable', 'jitgate cannot record this session right now; try again later');
    }

    const password = randomBytes(32).toString('base64url');
    try {
      await this.admin.create({
        name,
        passwordVerifier: scramPasswordVerifier(password),
        password,
        validUntil,
        memberOf: settings.roles,
        comment: formatMark({ gateway: this.options.gatewayId, connection: this.connection, session: sessionId, user }),
      });
    } catch (err) {
      log.warn({ ...context, ...describeFailure(err) }, 'cannot create the ephemeral role; refusing the session');
      if (err instanceof MaybeCreatedError) {
        // The role may exist after all: remove it now rather than leave it to the next sweep.
        await this.drop(sessionId, name);
      } else {
        this.forget(sessionId, name, 'not created');
      }
      throw creationError(err, this.connection);
    }
    log.info({ ...context, validUntil: new Date(validUntil).toISOString() }, 'ephemeral role created');

    let released = false;
    return {
      target: { ...this.options.admin, user: name, password },
      release: () => {
        if (released) return;
        released = true;
        const done = this.drop(sessionId, name);
        this.releasing.add(done);
        void done.finally(() => this.releasing.delete(done));
      },
    };
  }

  /**
   * The janitor's pass: drops every role of this connection that belongs to no live session, found
   * either in the store (recorded, never marked dropped) or on the backend (our prefix and our mark).
   * A role without jitgate's mark, or with another deployment's, is never touched.
   */
  sweep(): Promise<SweepResult> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /** Resolves once the drops started so far have finished (successfully or not). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.releasing]);
  }

  /**
   * Stops new sessions and waits (bounded) until every role this process made has been dealt with:
   * sessions still in their handshake when the listener closed release theirs a moment later, and the
   * store must outlive those drops. Whatever is left at the deadline is the janitor's on next start.
   */
  async close(timeoutMs = 15_000): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + timeoutMs;
    while ((this.held.size > 0 || this.sweeping) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async sweepOnce(): Promise<SweepResult> {
    const { repository, settings, gatewayId, log } = this.options;
    const result: SweepResult = { dropped: [], failed: [], foreign: [] };
    const live = (await this.options.liveSessions?.()) ?? new Set<string>();
    const isLive = (session: string) => this.isHeld(session) || live.has(session);
    const candidates = new Map<string, string>();
    for (const row of repository.pending(this.connection)) {
      if (!isLive(row.sessionId)) candidates.set(row.name, row.sessionId);
    }
    let listed: ListedRole[];
    try {
      listed = await this.admin.list(settings.rolePrefix);
    } catch (err) {
      log.warn({ connection: this.connection, ...describeFailure(err) }, 'janitor cannot list roles on the backend');
      listed = [];
    }
    for (const role of listed) {
      const mark = parseMark(role.comment);
      if (!mark) continue; // a look-alike name, not ours
      if (mark.gateway !== gatewayId || mark.connection !== this.connection) {
        result.foreign.push(role.name);
        continue;
      }
      if (!isLive(mark.session)) candidates.set(role.name, mark.session);
    }
    for (const [name, session] of candidates) {
      // A session may have started using the name since the list was made.
      if (isLive(session)) continue;
      this.held.set(session, name);
      const ok = await this.drop(session, name);
      (ok ? result.dropped : result.failed).push(name);
    }
    if (result.dropped.length > 0 || result.failed.length > 0) {
      log.info({ connection: this.connection, ...result }, 'janitor swept leftover ephemeral roles');
    }
    return result;
  }

  /** Removes the role if it is this session's; true when it is gone. Never throws. */
  private async drop(sessionId: string, name: string): Promise<boolean> {
    const { repository, log } = this.options;
    const context = { connection: this.connection, session: sessionId, role: name };
    try {
      const outcome = await this.admin.remove(name, (comment) => this.isMarkOf(comment, sessionId));
      if (outcome === 'not_ours') {
        log.warn(context, "a role with this name exists but is not marked as this session's; leaving it alone");
        this.forget(sessionId, name, "a role with this name exists without this session's mark; left alone");
      } else {
        if (outcome === 'dropped') log.info(context, 'ephemeral role dropped');
        this.forget(sessionId, name, null);
      }
      return true;
    } catch (err) {
      log.warn({ ...context, ...describeFailure(err) }, 'cannot drop the ephemeral role; the janitor will retry');
      try {
        repository.recordDropFailure(this.connection, name, describeFailure(err).reason);
      } catch (storeErr) {
        log.error({ ...context, err: storeErr }, 'cannot record the failed drop');
      }
      this.held.delete(sessionId);
      return false;
    }
  }

  private forget(sessionId: string, name: string, note: string | null): void {
    this.held.delete(sessionId);
    try {
      this.options.repository.markDropped(this.connection, name, this.options.now(), note);
    } catch (err) {
      this.options.log.error({ connection: this.connection, role: name, err }, 'cannot record the dropped role');
    }
  }

  private isHeld(sessionId: string): boolean {
    return this.held.has(sessionId);
  }

  private isMarkOf(comment: string | null, sessionId: string): boolean {
    const mark = parseMark(comment);
    return mark?.gateway === this.options.gatewayId && mark.connection === this.connection && mark.session === sessionId;
  }
}

/** What went wrong, for logs: the backend's own SQLSTATE and message, never the statement. */
function describeFailure(err: unknown): { reason: string; sqlstate?: string } {
  if (err instanceof BackendQueryError) return { reason: err.message, sqlstate: err.sqlstate };
  if (err instanceof GatewayError) return { reason: err.detail ? `${err.message}: ${err.detail}` : err.message };
  return { reason: err instanceof Error ? err.message : String(err) };
}

/** The client's view: why the session could not get a database user, without backend internals. */
function creationError(err: unknown, connection: string): GatewayError {
  const message = `could not create a database user for this session on connection "${connection}"`;
  if (err instanceof BackendQueryError) {
    const reason =
      err.sqlstate === '42704'
        ? 'a role this connection grants (credentials.roles) does not exist on the backend'
        : err.sqlstate === '42501'
          ? "the gateway's backend user is not allowed to create roles or to grant the configured roles"
          : err.sqlstate === '42710'
            ? "a role with this session's name already exists on the backend"
            : `the backend refused (SQLSTATE ${err.sqlstate || 'unknown'})`;
    return new GatewayError('credential_unavailable', message, reason);
  }
  // A connect failure is already phrased for clients (and names no credential).
  if (err instanceof GatewayError && err.code === 'backend_unavailable' && err.detail) return err;
  return new GatewayError('backend_unavailable', message, 'the backend did not complete the request');
}
