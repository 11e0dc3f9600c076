/**
 * HTTP API of access requests, approvals, grants and tokens: a thin adapter over AccessService.
 * Every route needs a signed-in caller (`ctx.identity`); refusals come back as
 * `{error, message, reasons}` with 400/403/404/409, reasons being the stable codes of policy/access.ts.
 *
 *   GET  /api/whoami                   identity, groups, admin flag, active grants
 *   GET  /api/connections              connections I can see, with my access state
 *   POST /api/requests                 {connection, duration: "1h", reason, breakGlass?}  -> 201
 *   GET  /api/requests?state=          {mine, approvable}
 *   GET  /api/requests/:id?wait=20     one request; `wait` long-polls (seconds) while it is pending
 *   POST /api/requests/:id/approve     {comment?, breakGlass?}
 *   POST /api/requests/:id/deny        {reason}
 *   GET  /api/grants?all=1             {mine, others}: active grants (all=1: ended ones too)
 *   POST /api/grants/:id/revoke        {reason?}
 *   POST /api/tokens                   {connection} -> a token under my active grant, and where to use it
 */
import type { ServerResponse } from 'node:http';
import { AccessError, type AccessService } from '../access/service.js';
import type { AccessRequest, GrantRecord, RequestState } from '../access/repository.js';
import { tryParseDuration } from '../core/duration.js';
import type { Identity, Protocol } from '../core/types.js';
import { sendJson } from './http.js';
import { HttpError, type RouteContext, type RouteDoc, type Router } from './router.js';
import { LongPolls } from './long-poll.js';

export interface AccessRoutesOptions {
  access: AccessService;
  /** Configured connections with their protocol, for listings. */
  connections: ReadonlyArray<{ name: string; type: Protocol }>;
  /**
   * Where a person connects to a connection of this protocol: the protocol engine's block, keyed by
   * the protocol (`{ postgres: {...} }`), or empty when that protocol's listener is off.
   */
  connectInstructions(protocol: Protocol, session: { connection: string; user: string }): Record<string, unknown>;
}

export interface AccessRoutes {
  /** Answer every waiting long-poll now (shutdown). */
  stop(): void;
}

const STATES: readonly RequestState[] = ['pending', 'granted', 'denied', 'withdrawn', 'expired'];
const STATUS = { not_found: 404, forbidden: 403, conflict: 409, invalid: 400 } as const;

export function registerAccessRoutes(router: Router, options: AccessRoutesOptions): AccessRoutes {
  const { access } = options;
  const polls = new LongPolls();
  const typeOf = new Map(options.connections.map((c) => [c.name, c.type]));

  const route = (method: string, pattern: string, fn: (ctx: RouteContext, who: Identity) => unknown, status = 200, doc?: RouteDoc) =>
    router.add(
      method,
      pattern,
      async (ctx) => {
        try {
          return await fn(ctx, ctx.identity!);
        } catch (err) {
          if (err instanceof AccessError) {
            refuse(ctx.res, STATUS[err.kind], err.reasons[0] ?? err.kind, err.message, err.reasons);
            return undefined;
          }
          throw err;
        }
      },
      { status, ...(doc ? { doc } : {}) },
    );

  route(
    'GET',
    '/api/whoami',
    async (_ctx, who) => ({
      user: who.user,
      groups: who.groups,
      kind: who.kind,
      via: who.via,
      admin: access.isAdmin(who),
      grants: (await access.listGrants(who)).mine.map(grantJson),
    }),
    200,
    { summary: 'Who I am, my groups, admin flag and active grants', roles: ['requester'] },
  );

  route(
    'GET',
    '/api/connections',
    async (_ctx, who) => ({
      connections: (await access.connectionsFor(who)).map((c) => ({
        name: c.name,
        type: typeOf.get(c.name) ?? 'postgres',
        access:
          c.access.state === 'granted'
            ? { state: 'granted', grantId: c.access.grantId, until: iso(c.access.until) }
            : c.access.state === 'pending'
              ? { state: 'pending', requestId: c.access.requestId, expiresAt: iso(c.access.expiresAt) }
              : { state: 'none' },
        ...(c.policy ? { policy: c.policy } : {}),
      })),
    }),
    200,
    { summary: 'Connections I can see, with my access state (none, pending, granted until)', roles: ['requester'] },
  );

  route(
    'POST',
    '/api/requests',
    async (ctx, who) => {
      const body = object(ctx.body);
      const connection = requiredString(body, 'connection');
      const outcome = await access.requestAccess(who, {
        connection,
        durationMs: durationOf(body),
        reason: optionalString(body, 'reason') ?? '',
        breakGlass: optionalBoolean(body, 'breakGlass') ?? false,
      });
      return {
        request: requestJson(outcome.request),
        grant: outcome.grant && grantJson(outcome.grant),
        reasons: outcome.reasons,
        message: outcome.message,
      };
    },
    201,
    {
      summary: 'Request access to a connection',
      roles: ['requester'],
      body: {
        connection: 'string',
        duration: 'string - e.g. 30m, 1h',
        reason: 'string? - why (required by some policies)',
        breakGlass: 'boolean? - emergency access, if the policy allows it',
      },
    },
  );

  route(
    'GET',
    '/api/requests',
    async (ctx, who) => {
      const state = ctx.query.get('state') ?? undefined;
      if (state !== undefined && !(STATES as readonly string[]).includes(state)) {
        throw new HttpError(400, 'invalid_state', `state must be one of ${STATES.join(', ')}`);
      }
      const { mine, approvable } = await access.listRequests(who, state ? { state: state as RequestState } : {});
      return { mine: mine.map(requestJson), approvable: approvable.map(requestJson) };
    },
    200,
    {
      summary: 'My access requests and those I may approve',
      roles: ['requester', 'approver'],
      query: { state: 'string? - pending, granted, denied, withdrawn or expired' },
    },
  );

  route(
    'GET',
    '/api/requests/:id',
    async (ctx, who) => {
      let request = await access.getRequest(who, ctx.params.id!);
      const wait = polls.waitOf(ctx);
      if (request.state === 'pending' && wait > 0) {
        // Wake on anything that happens to this request; the caller re-reads and decides.
        await polls.wait(ctx, wait, (changed) =>
          access.events.on((e) => {
            if ('request' in e && e.request?.id === request.id) changed();
          }),
        );
        request = await access.getRequest(who, request.id);
      }
      return requestJson(request);
    },
    200,
    {
      summary: 'One access request (its requester, approvers, admins)',
      roles: ['owner', 'approver', 'admin'],
      query: { wait: 'integer? - long-poll up to this many seconds while pending' },
    },
  );

  route(
    'POST',
    '/api/requests/:id/approve',
    async (ctx, who) => {
      const body = object(ctx.body ?? {});
      const outcome = await access.approve(who, ctx.params.id!, {
        comment: optionalString(body, 'comment') ?? '',
        breakGlass: optionalBoolean(body, 'breakGlass') ?? false,
      });
      return {
        request: requestJson(outcome.request),
        grant: outcome.grant && grantJson(outcome.grant),
        reasons: outcome.reasons,
        message: outcome.message,
      };
    },
    200,
    { summary: 'Approve an access request (not your own)', roles: ['approver'], body: { comment: 'string?', breakGlass: 'boolean?' } },
  );

  route(
    'POST',
    '/api/requests/:id/deny',
    async (ctx, who) => {
      const body = object(ctx.body ?? {});
      const outcome = await access.deny(who, ctx.params.id!, optionalString(body, 'reason') ?? '');
      return { request: requestJson(outcome.request), reasons: outcome.reasons, message: outcome.message };
    },
    200,
    { summary: 'Deny an access request', roles: ['approver'], body: { reason: 'string?' } },
  );

  route(
    'GET',
    '/api/grants',
    async (ctx, who) => {
      const all = ctx.query.get('all');
      const { mine, others } = await access.listGrants(who, { includeEnded: all === '1' || all === 'true' });
      return { mine: mine.map(grantJson), others: others.map(grantJson) };
    },
    200,
    {
      summary: 'Active grants: mine, and others I may revoke',
      roles: ['requester', 'approver', 'admin'],
      query: { all: 'string? - 1: include ended grants' },
    },
  );

  route(
    'POST',
    '/api/grants/:id/revoke',
    async (ctx, who) => {
      const body = object(ctx.body ?? {});
      return grantJson(await access.revoke(who, ctx.params.id!, optionalString(body, 'reason')));
    },
    200,
    { summary: 'Revoke a grant (its holder, its approvers, admins)', roles: ['owner', 'approver', 'admin'], body: { reason: 'string?' } },
  );

  route(
    'POST',
    '/api/tokens',
    async (ctx, who) => {
      const connection = requiredString(object(ctx.body), 'connection');
      const minted = await access.mintToken(who, connection);
      // Each connection is reached through the listener of its own protocol.
      const protocol = typeOf.get(connection);
      const connect = protocol ? options.connectInstructions(protocol, { connection, user: who.user }) : {};
      return {
        token: minted.token,
        tokenId: minted.id,
        expiresAt: iso(minted.expiresAt),
        /** Lifetime from now, so a client with a skewed clock knows when to ask again. */
        ttlMs: minted.expiresAt - minted.issuedAt,
        user: who.user,
        connection,
        grant: grantJson(minted.grant),
        ...connect,
      };
    },
    201,
    { summary: 'A fresh access token under my active grant, and where to connect', roles: ['requester'], body: { connection: 'string' } },
  );

  return {
    stop: () => polls.stop(),
  };
}

// ---------------------------------------------------------------------------------------------

export function requestJson(r: AccessRequest) {
  return {
    id: r.id,
    user: r.user,
    groups: r.groups,
    connection: r.connection,
    reason: r.reason,
    durationMs: r.durationMs,
    breakGlass: r.breakGlass,
    state: r.state,
    policy: r.policy,
    approverGroups: r.approverGroups,
    approvalsRequired: r.approvalsRequired,
    approvals: r.approvals.map((a) => ({ approver: a.approver, comment: a.comment, at: iso(a.at), breakGlass: a.breakGlass })),
    reasons: r.reasons,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    decidedAt: r.decidedAt === null ? null : iso(r.decidedAt),
    decidedBy: r.decidedBy,
    decisionReason: r.decisionReason,
    grantId: r.grantId,
    // Whether the request waited past its policy's `escalate.after` (then `to` joined the approvers).
    escalatedAt: r.escalation?.escalatedAt == null ? null : iso(r.escalation.escalatedAt),
  };
}

export function grantJson(g: GrantRecord) {
  return {
    id: g.id,
    user: g.user,
    connection: g.connection,
    reason: g.reason,
    requestId: g.requestId,
    approvedBy: g.approvedBy,
    breakGlass: g.breakGlass,
    policy: g.policy,
    issuedBy: g.issuedBy,
    createdAt: iso(g.createdAt),
    expiresAt: iso(g.expiresAt),
    revokedAt: g.revokedAt === null ? null : iso(g.revokedAt),
    revokedBy: g.revokedBy,
    revokeReason: g.revokeReason,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function refuse(res: ServerResponse, status: number, error: string, message: string, reasons: string[]): void {
  sendJson(res, status, { error, message, reasons });
}

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_body', 'expected a JSON object');
  return body as Record<string, unknown>;
}

function requiredString(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v.trim() === '') throw new HttpError(400, 'invalid_body', `"${key}" must be a non-empty string`);
  return v;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, 'invalid_body', `"${key}" must be a string`);
  if (v.length > 2000) throw new HttpError(400, 'invalid_body', `"${key}" is longer than 2000 characters`);
  return v;
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new HttpError(400, 'invalid_body', `"${key}" must be true or false`);
  return v;
}

/** `duration: "1h"` (or `durationMs: 3600000`). */
function durationOf(body: Record<string, unknown>): number {
  if (typeof body.durationMs === 'number') return body.durationMs;
  const text = body.duration;
  if (typeof text !== 'string') throw new HttpError(400, 'invalid_body', '"duration" must be a duration such as 30m or 1h');
  const ms = tryParseDuration(text);
  if (ms === undefined)
    throw new HttpError(400, 'invalid_body', `"duration": expected a duration such as 30m or 1h, got ${JSON.stringify(text)}`);
  return ms;
}
