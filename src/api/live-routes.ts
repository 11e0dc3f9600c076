/**
 * Live updates for the console as server-sent events, one stream per signed-in browser:
 *
 *   GET /api/events   `event: <type>` + JSON `data`, for what the caller may see:
 *                       access requests created/decided (their requester, the request's approvers, admins),
 *                       grants created/revoked (the grantee, approvers, admins),
 *                       and whatever other modules publish on the hub (e.g. statement reviews);
 *                     made through this instance or, read from the shared audit log, through others.
 *
 * The stream carries notifications, not the source of truth: the console re-reads the lists it
 * shows when one arrives, so a missed event costs a refresh, never a wrong screen. Session events
 * have their own stream per session (/api/sessions/:id/events/stream).
 */
import type { ServerResponse } from 'node:http';
import type { AccessEvent, EventSource } from '../access/events.js';
import type { Identity } from '../core/types.js';
import { grantJson, requestJson } from './access-routes.js';
import type { RoleModel } from './roles.js';
import type { Router } from './router.js';

export interface LiveEvent {
  type: string;
  data: unknown;
  /** Who may receive it. */
  audience: (who: Identity) => boolean;
}

/** Where modules publish live events for browsers. */
export class LiveHub {
  private listeners = new Set<(e: LiveEvent) => void>();

  publish(event: LiveEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        // A broken stream must not stop the others (its own close handler cleans it up).
      }
    }
  }

  subscribe(fn: (e: LiveEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export interface LiveRoutes {
  hub: LiveHub;
  /** Ends every open stream (shutdown). */
  stop(): void;
}

/** Unsent bytes a slow reader may hold before its stream is ended (it reconnects and re-reads). */
const MAX_BUFFER = 1024 * 1024;

export function registerLiveRoutes(
  router: Router,
  o: { accessEvents: EventSource<AccessEvent>; roles: RoleModel; keepaliveMs?: number },
): LiveRoutes {
  const hub = new LiveHub();
  const streams = new Set<() => void>();
  const inGroups = (who: Identity, groups: readonly string[]) => who.groups.some((g) => groups.includes(g));

  o.accessEvents.on((e: AccessEvent) => {
    if (e.type === 'grant.created' || e.type === 'grant.revoked') {
      const grant = e.grant;
      hub.publish({
        type: e.type,
        data: { grant: grantJson(grant), ...('by' in e ? { by: e.by } : {}) },
        audience: (who) => who.user === grant.user || o.roles.isAdmin(who) || o.roles.isApprover(who),
      });
      return;
    }
    const request = e.request;
    hub.publish({
      type: e.type,
      data: { request: requestJson(request) },
      audience: (who) =>
        who.user === request.user || o.roles.isAdmin(who) || (who.user !== request.user && inGroups(who, request.approverGroups)),
    });
  });

  router.add(
    'GET',
    '/api/events',
    (ctx) => {
      const who = ctx.identity!;
      const res: ServerResponse = ctx.res;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-content-type-options': 'nosniff',
        'x-accel-buffering': 'no',
      });
      res.write(`event: hello\ndata: ${JSON.stringify({ user: who.user })}\n\n`);
      let seq = 0;
      const unsubscribe = hub.subscribe((e) => {
        if (!e.audience(who)) return;
        if (res.writableLength > MAX_BUFFER) return stop();
        res.write(`id: ${++seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), o.keepaliveMs ?? 15_000);
      keepalive.unref();
      function stop() {
        unsubscribe();
        clearInterval(keepalive);
        streams.delete(stop);
        if (!res.writableEnded) res.end();
      }
      streams.add(stop);
      res.on('close', stop);
      return undefined;
    },
    {
      doc: {
        summary: 'Live updates (server-sent events): access requests, decisions, grants, statement reviews',
        roles: ['requester'],
        produces: 'text/event-stream',
      },
    },
  );

  return {
    hub,
    stop: () => {
      for (const s of [...streams]) s();
    },
  };
}
