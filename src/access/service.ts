/**
 * Access requests, approvals, grants and revocation: the one place that applies the pure decisions of
 * policy/access.ts to the store, keeps pending requests' expiry timers, and announces what happened
 * on `events`. The HTTP API and the session service are thin callers.
 *
 * Time comes from the injected Clock (tests advance a ManualClock; nothing here sleeps).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { Identity } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import {
  accessPolicyFor,
  approverGroupsFor,
  decideApproval,
  decideDeny,
  decideRequest,
  decideRevoke,
  inAnyGroup,
  type AccessReason,
  type PolicyRule,
} from '../policy/access.js';
import type { Store } from '../store/store.js';
import type { TokenUse } from '../config/types.js';
import { AccessEvents, type AccessEvent } from './events.js';
import { mintGrantToken, type GrantToken } from './grant-tokens.js';
import { AmbiguousIdError, type AccessRepository, type AccessRequest, type GrantRecord, type RequestState } from './repository.js';

export type AccessErrorKind = 'not_found' | 'forbidden' | 'conflict' | 'invalid';

/** A refusal the caller can show as is: the kind maps to an HTTP status, reasons are stable codes. */
export class AccessError extends Error {
  constructor(
    readonly kind: AccessErrorKind,
    message: string,
    readonly reasons: string[] = [],
  ) {
    super(message);
    this.name = 'AccessError';
  }
}

export interface AccessServiceOptions {
  repo: AccessRepository;
  store: Store;
  policies: readonly PolicyRule[];
  /** Names of the configured connections. */
  connections: readonly string[];
  clock: Clock;
  log: Logger;
  /** Default lifetime of a token minted under a grant. */
  tokenTtlMs: number;
  /** How many sessions a token minted for `connection` may open (default: `grant`, until it expires). */
  tokenUse?: (connection: string) => TokenUse;
  /** Administrators may revoke any grant and see every request (supplied by the identity module). */
  isAdmin?: (identity: Identity) => boolean;
}

export interface RequestInput {
  connection: string;
  durationMs: number;
  reason: string;
  breakGlass?: boolean;
}

export interface RequestOutcome {
  request: AccessRequest;
  grant: GrantRecord | null;
  reasons: string[];
  message: string;
}

export type ConnectionAccess =
  { state: 'granted'; grantId: string; until: number } | { state: 'pending'; requestId: string; expiresAt: number } | { state: 'none' };

export interface ConnectionView {
  name: string;
  access: ConnectionAccess;
  /** The rules a request from this identity would be decided by (absent when none applies). */
  policy?: {
    name: string;
    approval: 'auto' | 'required';
    approvers: string[];
    approvals: number;
    maxDurationMs: number;
    breakGlass: boolean;
  };
}

export class AccessService {
  readonly events: AccessEvents;
  private readonly repo: AccessRepository;
  private readonly clock: Clock;
  private readonly log: Logger;
  private isAdminFn: (identity: Identity) => boolean;
  /** Expiry timers of pending requests, by request id. */
  private readonly expiryTimers = new Map<string, () => void>();
  /** Escalation timers of pending requests whose policy names `escalate`, by request id. */
  private readonly escalationTimers = new Map<string, () => void>();
  /** Revocation subscribers by grant id (live sessions). */
  private readonly revocationListeners = new Map<string, Set<(grant: GrantRecord) => void>>();
  private closed = false;

  constructor(private readonly options: AccessServiceOptions) {
    this.repo = options.repo;
    this.clock = options.clock;
    this.log = options.log;
    this.isAdminFn = options.isAdmin ?? (() => false);
    this.events = new AccessEvents((err, event) => this.log.error({ err, event: event.type }, 'access event listener failed'));
    this.events.on((e) => {
      if (e.type === 'grant.revoked') this.notifyRevoked(e.grant);
    });
  }

  /** Expire what expired while the gateway was down, and arm timers for the rest. */
  async start(): Promise<void> {
    const now = this.clock.now();
    let expired = 0;
    for (const r of await this.repo.pendingRequests()) {
      if (r.expiresAt <= now) {
        if (await this.expire(r.id)) expired++;
      } else {
        this.armExpiry(r);
        this.armEscalation(r);
      }
    }
    if (expired > 0) this.log.info({ requests: expired }, 'expired access requests left pending while the gateway was down');
  }

  close(): void {
    this.closed = true;
    for (const cancel of [...this.expiryTimers.values(), ...this.escalationTimers.values()]) cancel();
    this.expiryTimers.clear();
    this.escalationTimers.clear();
    this.revocationListeners.clear();
  }

  /** Replaces the admin check given at construction: a test seam (tests decide who is an admin). */
  setAdminCheck(fn: (identity: Identity) => boolean): void {
    this.isAdminFn = fn;
  }

  isAdmin(identity: Identity): boolean {
    try {
      return this.isAdminFn(identity);
    } catch (err) {
      // Fail closed: an admin check that cannot decide grants nothing.
      this.log.error({ err }, 'admin check failed');
      return false;
    }
  }

  // -- requests ---------------------------------------------------------------------------------

  async requestAccess(who: Identity, input: RequestInput): Promise<RequestOutcome> {
    const now = this.clock.now();
    const reason = input.reason.trim();
    const decision = decideRequest({
      policies: this.options.policies,
      connections: this.options.connections,
      who,
      connection: input.connection,
      durationMs: input.durationMs,
      reason,
      breakGlass: input.breakGlass ?? false,
    });
    if (decision.effect === 'deny') {
      this.log.info({ user: who.user, connection: input.connection, reasons: decision.reasons }, 'access request refused by policy');
      const kind = decision.reasons.includes('unknown_connection')
        ? 'not_found'
        : decision.reasons.includes('no_matching_policy')
          ? 'forbidden'
          : 'invalid';
      throw new AccessError(kind, decision.message, decision.reasons);
    }
    const rules = decision.rules;
    const base = {
      id: randomUUID(),
      user: who.user,
      groups: [...who.groups],
      connection: input.connection,
      reason,
      durationMs: Math.floor(input.durationMs),
      breakGlass: decision.breakGlass,
      policy: decision.policy,
      approverGroups: [...rules.approvers],
      approvalsRequired: rules.approvals,
      breakGlassAllowed: rules.breakGlass,
      reasons: [...decision.reasons],
      createdAt: now,
      expiresAt: now + rules.pendingExpiryMs,
    };

    if (decision.effect === 'pending') {
      const duplicate = (await this.repo.listRequests({ user: who.user, state: 'pending' })).find(
        (r) => r.connection === input.connection && r.expiresAt > now,
      );
      if (duplicate) {
        throw new AccessError('conflict', `you already have a pending request ${short(duplicate.id)} for "${input.connection}"`, [
          'request_pending',
        ]);
      }
      const escalate = rules.escalate;
      const request = await this.repo.transaction(async () => {
        await this.repo.insertRequest({ ...base, state: 'pending' });
        if (escalate) await this.repo.setEscalation(base.id, now + escalate.afterMs, escalate.to);
        return (await this.repo.getRequest(base.id))!;
      });
      this.armExpiry(request);
      this.armEscalation(request);
      this.log.info({ request: request.id, user: who.user, connection: input.connection, policy: decision.policy }, 'access requested');
      this.events.emit({ type: 'request.created', at: now, request });
      return { request, grant: null, reasons: decision.reasons, message: decision.message };
    }

    // Granted at once: by policy (auto) or break-glass self-approval.
    const grant = this.newGrant(base, now, decision.breakGlass ? [who.user] : []);
    const request = await this.repo.transaction(async () => {
      await this.repo.insertRequest({ ...base, state: 'pending' });
      if (decision.breakGlass) await this.repo.insertApproval(base.id, { approver: who.user, comment: reason, at: now, breakGlass: true });
      await this.repo.insertGrant(grant);
      await this.repo.decideRequest(base.id, {
        state: 'granted',
        decidedAt: now,
        decidedBy: decision.breakGlass ? who.user : null,
        decisionReason: decision.message,
        grantId: grant.id,
        reasons: decision.reasons,
      });
      return (await this.repo.getRequest(base.id))!;
    });
    this.announceGrant(request, grant, now, { created: true });
    return { request, grant, reasons: decision.reasons, message: decision.message };
  }

  async approve(who: Identity, requestId: string, options: { comment?: string; breakGlass?: boolean } = {}): Promise<RequestOutcome> {
    const now = this.clock.now();
    const comment = options.comment?.trim() || null;
    const result = await this.repo.transaction(async () => {
      const request = await this.requireVisibleRequest(who, requestId);
      const decision = decideApproval({
        request: { ...request, approvedBy: request.approvals.map((a) => a.approver) },
        approver: who,
        now,
        breakGlass: options.breakGlass ?? false,
        comment: comment ?? '',
      });
      if (decision.effect === 'refuse') return { refused: decision, request };
      await this.repo.insertApproval(request.id, { approver: who.user, comment, at: now, breakGlass: decision.breakGlass });
      let grant: GrantRecord | null = null;
      if (decision.final) {
        const approvedBy = [...request.approvals.map((a) => a.approver), who.user];
        grant = this.newGrant({ ...request, breakGlass: decision.breakGlass }, now, approvedBy);
        await this.repo.insertGrant(grant);
        await this.repo.decideRequest(request.id, {
          state: 'granted',
          decidedAt: now,
          decidedBy: who.user,
          decisionReason: comment,
          grantId: grant.id,
          reasons: [...request.reasons, ...decision.reasons],
        });
      } else {
        await this.repo.setReasons(request.id, [...request.reasons, ...decision.reasons]);
      }
      return { decision, grant, request: (await this.repo.getRequest(request.id))! };
    });
    if ('refused' in result && result.refused) {
      if (result.refused.reasons.includes('request_expired')) await this.expire(result.request.id);
      const kind = result.refused.reasons.some((r) => r === 'request_not_pending' || r === 'request_expired' || r === 'already_approved')
        ? 'conflict'
        : 'forbidden';
      this.log.info({ request: result.request.id, user: who.user, reasons: result.refused.reasons }, 'approval refused');
      throw new AccessError(kind, result.refused.message, result.refused.reasons);
    }
    const { decision, grant, request } = result as {
      decision: ReturnType<typeof decideApproval>;
      grant: GrantRecord | null;
      request: AccessRequest;
    };
    this.log.info({ request: request.id, approver: who.user, final: decision.final }, 'access request approved');
    this.events.emit({ type: 'request.approved', at: now, request, approver: who.user, comment, final: decision.final });
    if (grant) {
      this.cancelExpiry(request.id);
      this.announceGrant(request, grant, now, { created: false });
    }
    return { request, grant, reasons: decision.reasons, message: decision.message };
  }

  async deny(who: Identity, requestId: string, reason: string): Promise<RequestOutcome> {
    const now = this.clock.now();
    const result = await this.repo.transaction(async () => {
      const request = await this.requireVisibleRequest(who, requestId);
      const decision = decideDeny({ request: { ...request, approvedBy: [] }, actor: who, isAdmin: this.isAdmin(who), reason, now });
      if (decision.effect === 'refuse') return { decision, request };
      await this.repo.decideRequest(request.id, {
        state: decision.effect === 'withdraw' ? 'withdrawn' : 'denied',
        decidedAt: now,
        decidedBy: who.user,
        decisionReason: reason.trim(),
        grantId: null,
        reasons: [...request.reasons, ...decision.reasons],
      });
      return { decision, request: (await this.repo.getRequest(request.id))! };
    });
    const { decision, request } = result;
    if (decision.effect === 'refuse') {
      if (decision.reasons.includes('request_expired')) await this.expire(request.id);
      const kind = decision.reasons.includes('deny_reason_required')
        ? 'invalid'
        : decision.reasons.includes('not_allowed_to_deny')
          ? 'forbidden'
          : 'conflict';
      throw new AccessError(kind, decision.message, decision.reasons);
    }
    this.cancelExpiry(request.id);
    if (decision.effect === 'withdraw') {
      this.log.info({ request: request.id, user: who.user }, 'access request withdrawn');
      this.events.emit({ type: 'request.withdrawn', at: now, request, reason: reason.trim() });
    } else {
      this.log.info({ request: request.id, by: who.user }, 'access request denied');
      this.events.emit({ type: 'request.denied', at: now, request, by: who.user, reason: reason.trim() });
    }
    return { request, grant: null, reasons: decision.reasons, message: decision.message };
  }

  /** A request the caller may see: their own, one they may approve, or any for an admin. */
  getRequest(who: Identity, requestId: string): Promise<AccessRequest> {
    return this.requireVisibleRequest(who, requestId);
  }

  async listRequests(
    who: Identity,
    filter: { state?: RequestState } = {},
  ): Promise<{ mine: AccessRequest[]; approvable: AccessRequest[] }> {
    const mine = await this.repo.listRequests({ user: who.user, ...(filter.state ? { state: filter.state } : {}), limit: 100 });
    const approvable = (await this.repo.listRequests({ state: filter.state ?? 'pending', limit: 500 }))
      .filter((r) => r.user !== who.user && inAnyGroup(who, r.approverGroups))
      .slice(0, 100);
    return { mine, approvable };
  }

  // -- grants -----------------------------------------------------------------------------------

  async revoke(who: Identity, grantId: string, reason?: string): Promise<GrantRecord> {
    const now = this.clock.now();
    const why = reason?.trim() || null;
    const result = await this.repo.transaction(async () => {
      const grant = await this.findGrant(grantId);
      if (!grant || !(await this.maySeeGrant(who, grant))) throw new AccessError('not_found', `no grant ${grantId}`, ['grant_not_found']);
      const approverGroups = await this.approverGroupsOf(grant);
      const decision = decideRevoke({ grant, actor: who, isAdmin: this.isAdmin(who), approverGroups, now });
      if (decision.effect === 'refuse') return { decision, grant };
      await this.repo.revokeGrant(grant.id, now, who.user, why ?? '');
      return { decision, grant: (await this.repo.getGrant(grant.id))! };
    });
    if (result.decision.effect === 'refuse') {
      const kind = result.decision.reasons.includes('grant_not_active') ? 'conflict' : 'forbidden';
      throw new AccessError(kind, result.decision.message, result.decision.reasons);
    }
    const grant = result.grant;
    this.log.warn(
      { grant: grant.id, user: grant.user, connection: grant.connection, by: who.user, reasons: result.decision.reasons },
      'access grant revoked',
    );
    this.events.emit({ type: 'grant.revoked', at: now, grant, by: who.user, reason: why });
    return grant;
  }

  /** Grants the caller holds (active), and active grants of others they may revoke. */
  async listGrants(who: Identity, filter: { includeEnded?: boolean } = {}): Promise<{ mine: GrantRecord[]; others: GrantRecord[] }> {
    const now = this.clock.now();
    const activeAt = filter.includeEnded ? undefined : now;
    const mine = await this.repo.listGrants({ user: who.user, ...(activeAt !== undefined ? { activeAt } : {}), limit: 100 });
    const admin = this.isAdmin(who);
    const others: GrantRecord[] = [];
    for (const g of await this.repo.listGrants({ ...(activeAt !== undefined ? { activeAt } : {}), limit: 500 })) {
      if (others.length === 100) break;
      if (g.user !== who.user && (admin || inAnyGroup(who, await this.approverGroupsOf(g)))) others.push(g);
    }
    return { mine, others };
  }

  /** The caller's active grant on a connection that lasts longest, if any. */
  async activeGrant(user: string, connection: string): Promise<GrantRecord | undefined> {
    const now = this.clock.now();
    return (await this.repo.listGrants({ user, activeAt: now, limit: 500 }))
      .filter((g) => g.connection === connection)
      .sort((a, b) => b.expiresAt - a.expiresAt)[0];
  }

  /** A token for the caller's active grant on `connection`, living min(default ttl, grant end). */
  async mintToken(who: Identity, connection: string): Promise<GrantToken & { grant: GrantRecord; issuedAt: number }> {
    if (!this.options.connections.includes(connection)) {
      throw new AccessError('not_found', `connection "${connection}" does not exist`, ['unknown_connection']);
    }
    const grant = await this.activeGrant(who.user, connection);
    if (!grant) {
      throw new AccessError('forbidden', `you have no active access grant for "${connection}": run \`jitgate request ${connection}\``, [
        'no_active_grant',
      ]);
    }
    const now = this.clock.now();
    const use = this.options.tokenUse?.(connection) ?? 'grant';
    const minted = await mintGrantToken(this.options.store, this.repo, grant, this.options.tokenTtlMs, now, use);
    this.log.info(
      { user: who.user, connection, grant: grant.id, tokenId: minted.id, expiresAt: minted.expiresAt, use },
      'access token minted under grant',
    );
    return { ...minted, grant, issuedAt: now };
  }

  /** The grant a data session's token rests on (undefined: none, the session must not start). */
  grantForToken(tokenId: string): Promise<GrantRecord | undefined> {
    return this.repo.grantForToken(tokenId);
  }

  /**
   * Grants revoked through another gateway instance (StoreCatchUp calls this): those this
   * instance's sessions rest on are read from the store, and a revoked one ends them here too.
   */
  async catchUpRevocations(): Promise<void> {
    for (const id of [...this.revocationListeners.keys()]) {
      const grant = await this.repo.getGrant(id);
      if (grant && grant.revokedAt !== null) this.notifyRevoked(grant);
    }
  }

  /** Tells a grant's revocation listeners, once: they are dropped as they are told. */
  private notifyRevoked(grant: GrantRecord): void {
    const listeners = this.revocationListeners.get(grant.id);
    if (!listeners) return;
    this.revocationListeners.delete(grant.id);
    for (const fn of listeners) fn(grant);
  }

  /** Called once if the grant is revoked; returns the unsubscribe function. */
  onRevoked(grantId: string, fn: (grant: GrantRecord) => void): () => void {
    let set = this.revocationListeners.get(grantId);
    if (!set) this.revocationListeners.set(grantId, (set = new Set()));
    set.add(fn);
    return () => {
      const s = this.revocationListeners.get(grantId);
      s?.delete(fn);
      if (s?.size === 0) this.revocationListeners.delete(grantId);
    };
  }

  /** Configured connections the caller can see, with their access state. Admins see all. */
  async connectionsFor(who: Identity): Promise<ConnectionView[]> {
    const now = this.clock.now();
    const grants = await this.repo.listGrants({ user: who.user, activeAt: now, limit: 500 });
    const pending = (await this.repo.listRequests({ user: who.user, state: 'pending', limit: 500 })).filter((r) => r.expiresAt > now);
    const admin = this.isAdmin(who);
    const out: ConnectionView[] = [];
    for (const name of this.options.connections) {
      const policy = accessPolicyFor(this.options.policies, who, name);
      const grant = grants.filter((g) => g.connection === name).sort((a, b) => b.expiresAt - a.expiresAt)[0];
      const request = pending.find((r) => r.connection === name);
      if (!policy && !grant && !request && !admin) continue;
      const access: ConnectionAccess = grant
        ? { state: 'granted', grantId: grant.id, until: grant.expiresAt }
        : request
          ? { state: 'pending', requestId: request.id, expiresAt: request.expiresAt }
          : { state: 'none' };
      out.push({
        name,
        access,
        ...(policy
          ? {
              policy: {
                name: policy.name,
                approval: policy.access.approval,
                approvers: policy.access.approvers,
                approvals: policy.access.approvals,
                maxDurationMs: policy.access.maxDurationMs,
                breakGlass: policy.access.breakGlass,
              },
            }
          : {}),
      });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------

  private newGrant(
    r: {
      id: string;
      user: string;
      groups: string[];
      connection: string;
      reason: string;
      durationMs: number;
      breakGlass: boolean;
      policy: string;
    },
    now: number,
    approvedBy: string[],
  ): GrantRecord {
    return {
      id: randomUUID(),
      user: r.user,
      groups: [...r.groups],
      connection: r.connection,
      reason: r.reason,
      requestId: r.id,
      approvedBy,
      breakGlass: r.breakGlass,
      policy: r.policy,
      issuedBy: null,
      createdAt: now,
      expiresAt: now + r.durationMs,
      revokedAt: null,
      revokedBy: null,
      revokeReason: null,
    };
  }

  private announceGrant(request: AccessRequest, grant: GrantRecord, now: number, opts: { created: boolean }): void {
    const fields = {
      request: request.id,
      grant: grant.id,
      user: grant.user,
      connection: grant.connection,
      until: new Date(grant.expiresAt).toISOString(),
    };
    if (grant.breakGlass) {
      // Loud on purpose: break-glass skips the approvers, so it must never pass quietly.
      this.log.warn({ ...fields, reason: grant.reason, breakGlass: true }, 'BREAK-GLASS access granted without approval');
    } else {
      this.log.info({ ...fields, approvedBy: grant.approvedBy }, `access granted for ${formatDuration(grant.expiresAt - grant.createdAt)}`);
    }
    const events: AccessEvent[] = [];
    if (opts.created) events.push({ type: 'request.created', at: now, request });
    events.push({ type: 'grant.created', at: now, grant, request });
    if (grant.breakGlass) events.push({ type: 'break_glass.used', at: now, request, grant });
    for (const e of events) this.events.emit(e);
  }

  private async requireVisibleRequest(who: Identity, idOrPrefix: string): Promise<AccessRequest> {
    let request: AccessRequest | undefined;
    try {
      request = await this.repo.findRequest(idOrPrefix);
    } catch (err) {
      if (err instanceof AmbiguousIdError) throw new AccessError('invalid', err.message, ['ambiguous_id']);
      throw err;
    }
    // Invisible and missing look the same, so ids cannot be probed.
    if (!request || !(request.user === who.user || inAnyGroup(who, request.approverGroups) || this.isAdmin(who))) {
      throw new AccessError('not_found', `no request ${idOrPrefix}`, ['request_not_found']);
    }
    return request;
  }

  private async findGrant(idOrPrefix: string): Promise<GrantRecord | undefined> {
    try {
      return await this.repo.findGrant(idOrPrefix);
    } catch (err) {
      if (err instanceof AmbiguousIdError) throw new AccessError('invalid', err.message, ['ambiguous_id']);
      throw err;
    }
  }

  private async maySeeGrant(who: Identity, grant: GrantRecord): Promise<boolean> {
    return grant.user === who.user || this.isAdmin(who) || inAnyGroup(who, await this.approverGroupsOf(grant));
  }

  /** Approvers of the grant's request (snapshot) and of its connection under the current policies. */
  private async approverGroupsOf(grant: GrantRecord): Promise<string[]> {
    const fromRequest = grant.requestId ? ((await this.repo.getRequest(grant.requestId))?.approverGroups ?? []) : [];
    return [...new Set([...fromRequest, ...approverGroupsFor(this.options.policies, grant.connection)])];
  }

  private armExpiry(request: AccessRequest): void {
    if (this.closed) return;
    this.cancelExpiry(request.id);
    this.expiryTimers.set(
      request.id,
      this.clock.at(request.expiresAt, () => {
        this.expiryTimers.delete(request.id);
        this.expire(request.id).catch((err: unknown) => this.log.error({ err, request: request.id }, 'cannot expire access request'));
      }),
    );
  }

  private cancelExpiry(requestId: string): void {
    this.expiryTimers.get(requestId)?.();
    this.expiryTimers.delete(requestId);
    // A decided or expired request is not escalated either.
    this.escalationTimers.get(requestId)?.();
    this.escalationTimers.delete(requestId);
  }

  private armEscalation(request: AccessRequest): void {
    const e = request.escalation;
    if (this.closed || !e || e.escalatedAt !== null) return;
    this.escalationTimers.get(request.id)?.();
    this.escalationTimers.set(
      request.id,
      this.clock.at(e.at, () => {
        this.escalationTimers.delete(request.id);
        this.escalate(request.id).catch((err: unknown) => this.log.error({ err, request: request.id }, 'cannot escalate access request'));
      }),
    );
  }

  /**
   * A request still pending at its escalation time: its `escalate.to` groups join the approvers (so
   * they may approve), and `request.escalated` reminds everyone (webhooks, audit). Once per request.
   */
  private async escalate(requestId: string): Promise<boolean> {
    const now = this.clock.now();
    const result = await this.repo.transaction(async () => {
      const r = await this.repo.getRequest(requestId);
      const e = r?.escalation;
      if (!r || !e || r.state !== 'pending' || e.escalatedAt !== null || e.at > now || r.expiresAt <= now) return undefined;
      const groups = [...new Set([...r.approverGroups, ...e.to])];
      if (!(await this.repo.markEscalated(r.id, now, groups))) return undefined;
      return { request: (await this.repo.getRequest(r.id))!, to: e.to };
    });
    if (!result) return false;
    const { request, to } = result;
    this.log.warn(
      { request: request.id, user: request.user, connection: request.connection, to, waitedMs: now - request.createdAt },
      'access request escalated: still waiting for approval',
    );
    this.events.emit({ type: 'request.escalated', at: now, request, to, waitedMs: now - request.createdAt });
    return true;
  }

  /** Close a pending request whose time is up; true when it was still pending. */
  private async expire(requestId: string): Promise<boolean> {
    const now = this.clock.now();
    const request = await this.repo.transaction(async () => {
      const r = await this.repo.getRequest(requestId);
      if (!r || r.state !== 'pending' || r.expiresAt > now) return undefined;
      const reasons: AccessReason[] = ['request_expired'];
      await this.repo.decideRequest(r.id, {
        state: 'expired',
        decidedAt: now,
        decidedBy: null,
        decisionReason: 'no decision in time',
        grantId: null,
        reasons: [...r.reasons, ...reasons],
      });
      return (await this.repo.getRequest(r.id))!;
    });
    if (!request) return false;
    this.cancelExpiry(requestId);
    this.log.info({ request: request.id, user: request.user, connection: request.connection }, 'access request expired');
    this.events.emit({ type: 'request.expired', at: now, request });
    return true;
  }
}

/** How people see ids in messages: the first 8 characters (commands accept any unique prefix). */
export function short(id: string): string {
  return id.slice(0, 8);
}

/** Why a grant no longer opens sessions, for the FATAL a client sees. */
export function grantEndedMessage(
  grant: GrantRecord | { id: string; revokedAt: number | null; revokedBy: string | null; revokeReason: string | null; expiresAt: number },
): string {
  if (grant.revokedAt !== null) {
    const by = grant.revokedBy ? ` by ${grant.revokedBy}` : '';
    return `jitgate: access grant ${short(grant.id)} was revoked${by}${grant.revokeReason ? `: ${grant.revokeReason}` : ''}`;
  }
  return `jitgate: access grant ${short(grant.id)} expired at ${new Date(grant.expiresAt).toISOString()}`;
}
