/**
 * The token verifier the PostgreSQL listener uses: the core TokenAuthority's active tokens, plus the
 * tokens that were cut short because their grant ended while their own lifetime had not run out.
 *
 * Why the extra tokens: a token minted under a grant expires with the grant, and a bare "password
 * authentication failed" (28P01) would not tell the user why. Letting such a token authenticate puts
 * the refusal in the session service, which answers 28000 with the grant's reason ("expired at ...",
 * "revoked by ..."). The session service refuses every session whose grant is not active, so these
 * extra candidates never open a session. A token whose own lifetime ended stays 28P01.
 *
 * Likewise a single-session token revoked because its session ended still authenticates until its
 * lifetime ends, so that a second login with it reaches the session start, which refuses it (28P01)
 * and records `token.reused` (./session-tokens.ts).
 */
import { deriveVerifier, safeEqual, type ScramVerifier } from '../crypto/scram.js';
import type { TokenRow } from '../store/store.js';
import type { AccessRepository } from './repository.js';
import type { TokenAuthority } from './tokens.js';

type Candidate = ScramVerifier & { tokenId: string; expiresAt: number };

export class GrantAwareVerifier {
  constructor(
    private readonly authority: TokenAuthority,
    private readonly repo: AccessRepository,
    private readonly now: () => number,
  ) {}

  async scramCandidates(user: string, connection: string): Promise<{ salt: Buffer; iterations: number; candidates: Candidate[] }> {
    const now = this.now();
    const base = await this.authority.scramCandidates(user, connection, now);
    const ended = await this.extraTokens(user, connection, now);
    if (ended.length === 0) return base;
    // All tokens of a user on a connection share the store's salt; with no active token the base
    // answer carries a fake salt, so take the real one from the ended tokens instead.
    const first = base.candidates[0] ?? ended[0]!;
    const extra = ended.filter((t) => t.iterations === first.iterations && t.salt.equals(first.salt)).map(toCandidate);
    return { salt: first.salt, iterations: first.iterations, candidates: [...base.candidates, ...extra] };
  }

  async verifyCleartext(user: string, connection: string, token: string): Promise<string | undefined> {
    const now = this.now();
    const found = await this.authority.verifyCleartext(user, connection, token, now);
    if (found !== undefined) return found;
    let match: string | undefined;
    for (const t of await this.extraTokens(user, connection, now)) {
      const presented = deriveVerifier(token, t.salt, t.iterations);
      if (safeEqual(presented.storedKey, t.storedKey) && match === undefined) match = t.id;
    }
    return match;
  }

  private async extraTokens(user: string, connection: string, now: number): Promise<TokenRow[]> {
    return [...(await this.repo.endedGrantTokens(user, connection, now)), ...(await this.repo.spentSessionTokens(user, connection, now))];
  }
}

function toCandidate(t: TokenRow): Candidate {
  return { tokenId: t.id, expiresAt: t.expiresAt, salt: t.salt, iterations: t.iterations, storedKey: t.storedKey, serverKey: t.serverKey };
}
