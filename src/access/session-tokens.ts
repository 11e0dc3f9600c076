/**
 * Single-session tokens (`auth.tokenUse: session`): such a token opens exactly one data session and is
 * revoked when that session ends, the "revoked immediately after the session ends" model.
 *
 * The check sits at session start, after the protocol has authenticated the token, because that is
 * the first point where every protocol knows which token was presented (PostgreSQL SCRAM and MySQL's
 * scrambles match a proof against all of a user's tokens). The claim is one guarded UPDATE
 * (AccessRepository.claimToken), so of two logins racing with one token exactly one opens a session.
 * The loser, and any later login with the spent token, gets the protocol's own authentication error
 * (PostgreSQL 28P01, MySQL 1045, Redis WRONGPASS) and an audit entry `token.reused`.
 *
 * Tokens with use `grant` pass straight through: one indexed lookup per login, nothing per statement.
 */
import type { AuditAppender } from '../audit/log.js';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { SessionCounters, SessionEndReason } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { AccessRepository } from './repository.js';

export interface SessionTokenLogin {
  tokenId: string;
  user: string;
  connection: string;
  protocol: string;
  clientAddress: string;
}

interface EndableSession {
  id: string;
  end(reason: SessionEndReason, counters: SessionCounters): void;
}

export interface SessionTokensOptions {
  repo: AccessRepository;
  /** Revokes a token (the core store's tokens table). */
  revokeToken: (tokenId: string, at: number) => Promise<boolean>;
  audit: AuditAppender;
  clock: Clock;
  log: Logger;
}

export const TOKEN_REUSED_MESSAGE =
  'jitgate: this access token was issued for one session and has been used; get a new one (jitgate connect or jitgate token)';

export class SessionTokens {
  constructor(private readonly o: SessionTokensOptions) {}

  /**
   * Open a session with `open` if the token may open one more. A single-session token is claimed
   * first and revoked when the returned session ends.
   */
  async open<S extends EndableSession>(login: SessionTokenLogin, open: () => S | Promise<S>): Promise<S> {
    const { repo, clock } = this.o;
    if ((await repo.tokenUse(login.tokenId)) !== 'session') return open();
    if (!(await repo.claimToken(login.tokenId, clock.now()))) await this.refuseReuse(login);
    let session: S;
    try {
      session = await open();
    } catch (err) {
      // No session started (grant ended, store down): the token was not used up.
      await repo.unclaimToken(login.tokenId);
      throw err;
    }
    await repo.setClaimSession(login.tokenId, session.id);
    let ended = false;
    return {
      ...session,
      end: (reason: SessionEndReason, counters: SessionCounters) => {
        session.end(reason, counters);
        if (ended) return;
        ended = true;
        this.revoke(login, session.id);
      },
    };
  }

  private revoke(login: SessionTokenLogin, sessionId: string): void {
    this.o.revokeToken(login.tokenId, this.o.clock.now()).then(
      () => this.o.log.info({ session: sessionId, tokenId: login.tokenId }, 'single-session token revoked: its session ended'),
      // The claim stays, so the token still opens no other session; only the revocation row is late.
      (err: unknown) =>
        this.o.log.error({ err, session: sessionId, tokenId: login.tokenId }, 'cannot revoke the token of an ended session'),
    );
  }

  private async refuseReuse(login: SessionTokenLogin): Promise<never> {
    const claim = await this.o.repo.claimOf(login.tokenId);
    this.o.log.warn(
      {
        user: login.user,
        connection: login.connection,
        tokenId: login.tokenId,
        client: login.clientAddress,
        firstSession: claim?.sessionId,
      },
      'single-session token used again: refused',
    );
    try {
      await this.o.audit.append({
        type: 'token.reused',
        actor: login.user,
        subject: login.tokenId,
        data: {
          connection: login.connection,
          protocol: login.protocol,
          clientAddress: login.clientAddress,
          firstUsedAt: claim?.claimedAt ?? null,
          firstSession: claim?.sessionId ?? null,
        },
      });
    } catch (err) {
      // Refused either way; the log line above keeps the trace.
      this.o.log.error({ err, tokenId: login.tokenId }, 'cannot audit a reused token');
    }
    throw new GatewayError('auth_failed', TOKEN_REUSED_MESSAGE);
  }
}
