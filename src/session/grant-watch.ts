/**
 * Every data session rests on an access grant, and ends when the grant does. This module is the
 * session side of that rule:
 *
 *  - at session start, the grant behind the login token must exist, belong to this user and
 *    connection, and be active; otherwise the session is refused with `grant_inactive` (SQLSTATE
 *    28000) and the reason ("expired at ...", "revoked by ...");
 *  - while the session lives, a Clock timer fires at the grant's end and a subscription hears its
 *    revocation; either ends the session through the protocol engine's terminate hook (the client
 *    gets a FATAL saying why, the backend connection is closed);
 *  - from that moment every further statement is refused, in case the engine could not be reached
 *    (e.g. the session was still connecting to its backend when the grant ended).
 */
import { grantEndedMessage } from '../access/service.js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { Grant, SessionEndReason } from '../core/types.js';
import type { Logger } from '../obs/log.js';

/** What the session service needs from the access module. */
export interface SessionGrants {
  grantForToken(tokenId: string): Promise<Grant | undefined>;
  /** `fn` runs when the grant is revoked; returns the unsubscribe function. */
  onRevoked(grantId: string, fn: (grant: Grant) => void): () => void;
}

/** Ends a live session (the listener's kill); false when no such session is live (yet). */
export type SessionTerminator = (sessionId: string, reason: SessionEndReason, message: string) => boolean;

export interface GrantWatch {
  readonly grant: Grant;
  /** Why the session may no longer run statements, once the grant has ended. */
  readonly endedMessage: string | undefined;
  stop(): void;
}

/** Retry a termination that found no live session (still connecting) for up to this long. */
const TERMINATE_RETRY_MS = 50;
const TERMINATE_RETRY_LIMIT = 200;

/** The grant behind `tokenId`, or a refusal that says why there is none to rest on. */
export async function requireActiveGrant(
  grants: SessionGrants,
  input: { tokenId: string; user: string; connection: string },
  now: () => number,
): Promise<Grant> {
  const grant = await grants.grantForToken(input.tokenId);
  if (!grant || grant.user !== input.user || grant.connection !== input.connection) {
    throw new GatewayError(
      'grant_inactive',
      'jitgate: this access token is not backed by an access grant',
      `request access with: jitgate request ${input.connection}`,
    );
  }
  // The time after the lookup: a grant that ended while the store answered is ended.
  if (grant.revokedAt !== null || grant.expiresAt <= now()) {
    throw new GatewayError('grant_inactive', grantEndedMessage(grant), `request access again with: jitgate request ${input.connection}`);
  }
  return grant;
}

export function watchGrant(opts: {
  sessionId: string;
  grant: Grant;
  grants: SessionGrants;
  clock: Clock;
  log: Logger;
  terminate: () => SessionTerminator | undefined;
}): GrantWatch {
  const { sessionId, grant, log } = opts;
  let endedMessage: string | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;

  const end = (reason: 'grant_expired' | 'revoked', ended: Grant) => {
    if (endedMessage !== undefined || stopped) return;
    endedMessage = grantEndedMessage(ended);
    log.info({ session: sessionId, grant: grant.id, reason }, 'ending session: its access grant ended');
    let attempts = 0;
    const attempt = () => {
      retry = undefined;
      if (stopped) return;
      const terminate = opts.terminate();
      if (terminate?.(sessionId, reason, endedMessage!)) return;
      if (++attempts >= TERMINATE_RETRY_LIMIT) {
        log.warn({ session: sessionId }, 'could not end the session of an ended grant; its statements are refused');
        return;
      }
      retry = setTimeout(attempt, TERMINATE_RETRY_MS);
      retry.unref();
    };
    attempt();
  };

  const cancelTimer = opts.clock.at(grant.expiresAt, () => end('grant_expired', grant));
  const unsubscribe = opts.grants.onRevoked(grant.id, (g) => end('revoked', g));
  return {
    grant,
    get endedMessage() {
      return endedMessage;
    },
    stop() {
      stopped = true;
      cancelTimer();
      unsubscribe();
      if (retry) clearTimeout(retry);
    },
  };
}
