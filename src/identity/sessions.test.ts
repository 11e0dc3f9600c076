import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { hashToken } from './opaque-tokens.js';
import { IdentityRepository } from './repository.js';
import { SessionError, SessionManager, type Reconfirm, type SessionPair } from './sessions.js';

const MIN = 60_000;
const log = createLogger({ level: 'silent' });
const stores: SqliteStore[] = [];
afterEach(() => stores.splice(0).forEach((s) => void s.close()));

function setup(reconfirm?: { run: Reconfirm; isRefusal: (err: unknown) => boolean }) {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const repo = new IdentityRepository(store.database);
  const clock = new ManualClock();
  const sessions = new SessionManager({ repo, clock, log, ttlMs: 15 * MIN, refreshTtlMs: 60 * MIN, ...(reconfirm ? { reconfirm } : {}) });
  return { store, repo, clock, sessions };
}

const ALICE = { issuer: 'corp', subject: 'u1', user: 'alice', groups: ['engineering'] };

describe('gateway sessions', () => {
  it('issues a pair stored only as hashes; the session authenticates until its ttl', async () => {
    const { store, clock, sessions } = setup();
    const pair = sessions.issue(ALICE);
    expect(pair.accessToken).toMatch(/^jgs_[A-Za-z0-9_-]{43}$/);
    expect(pair.refreshToken).toMatch(/^jgr_[A-Za-z0-9_-]{43}$/);
    expect(pair.accessTokenExpiresAt).toBe(clock.now() + 15 * MIN);
    expect(pair.refreshTokenExpiresAt).toBe(clock.now() + 60 * MIN);
    const dump = JSON.stringify(
      store.database.prepare(`SELECT * FROM identity_sessions, identity_refresh_tokens, identity_families`).all(),
    );
    expect(dump).not.toContain(pair.accessToken.slice(4));
    expect(dump).not.toContain(pair.refreshToken.slice(4));

    expect(sessions.authenticate(pair.accessToken)?.identity).toEqual({
      user: 'alice',
      groups: ['engineering'],
      kind: 'human',
      via: 'session',
    });
    clock.advance(15 * MIN - 1);
    expect(sessions.authenticate(pair.accessToken)).toBeDefined();
    clock.advance(1);
    expect(sessions.authenticate(pair.accessToken)).toBeUndefined();
    expect(sessions.authenticate(pair.refreshToken)).toBeUndefined(); // a refresh token is not a bearer
    expect(sessions.authenticate('jgs_' + 'A'.repeat(43))).toBeUndefined();
  });

  it('refresh rotates the pair; the last session never outlives the login', async () => {
    const { clock, sessions } = setup();
    const first = sessions.issue(ALICE);
    clock.advance(50 * MIN);
    const second = await sessions.refresh(first.refreshToken);
    expect(sessions.authenticate(first.accessToken)).toBeUndefined();
    expect(second.accessTokenExpiresAt).toBe(first.refreshTokenExpiresAt); // capped at the login's end
    clock.advance(10 * MIN);
    expect(sessions.authenticate(second.accessToken)).toBeUndefined();
    await expect(sessions.refresh(second.refreshToken)).rejects.toThrow('this sign-in has expired');
  });

  it('a second use of a refresh token revokes the whole login', async () => {
    const { sessions } = setup();
    const first = sessions.issue(ALICE);
    const second = await sessions.refresh(first.refreshToken);
    const reuse = sessions.refresh(first.refreshToken);
    await expect(reuse).rejects.toBeInstanceOf(SessionError);
    await expect(reuse).rejects.toThrow('already used');
    expect(sessions.authenticate(second.accessToken)).toBeUndefined();
    await expect(sessions.refresh(second.refreshToken)).rejects.toThrow('this sign-in was ended (refresh_token_reuse)');
  });

  it('two exchanges racing for one refresh token count as reuse: the login ends for both', async () => {
    const { sessions } = setup();
    const first = sessions.issue(ALICE);
    const results = await Promise.allSettled([sessions.refresh(first.refreshToken), sessions.refresh(first.refreshToken)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const won = results.find((r): r is PromiseFulfilledResult<SessionPair> => r.status === 'fulfilled')!;
    expect(sessions.authenticate(won.value.accessToken)).toBeUndefined();
  });

  it('logout with either token ends the login', async () => {
    const { sessions } = setup();
    const a = sessions.issue(ALICE);
    expect(sessions.logout(a.accessToken)).toBe(true);
    expect(sessions.authenticate(a.accessToken)).toBeUndefined();
    await expect(sessions.refresh(a.refreshToken)).rejects.toThrow('(logout)');
    const b = sessions.issue(ALICE);
    expect(sessions.logout(b.refreshToken)).toBe(true);
    expect(sessions.authenticate(b.accessToken)).toBeUndefined();
    expect(sessions.logout('jgs_unknown')).toBe(false);
  });

  it('re-confirms at the IdP on refresh with the sealed IdP refresh token, and keeps only the latest', async () => {
    const seen: string[] = [];
    let answer: { groups: string[]; token: string } | Error = { groups: ['engineering', 'oncall'], token: 'idp-rt-2' };
    const { repo, sessions } = setup({
      run: async (_family, token) => {
        seen.push(token);
        if (answer instanceof Error) throw answer;
        return { user: 'alice', groups: answer.groups, upstreamRefreshToken: answer.token };
      },
      isRefusal: (err) => (err as Error).message === 'refused',
    });
    const first = sessions.issue(ALICE, 'idp-rt-1');
    const second = await sessions.refresh(first.refreshToken);
    expect(second.identity.groups).toEqual(['engineering', 'oncall']);
    const third = await sessions.refresh(second.refreshToken);
    expect(seen).toEqual(['idp-rt-1', 'idp-rt-2']);

    // The IdP is down: nothing is issued, and the same refresh token can be tried again later.
    answer = new Error('network');
    await expect(sessions.refresh(third.refreshToken)).rejects.toThrow('network');
    expect(repo.refreshByHash(hashToken(third.refreshToken))?.usedAt).toBeNull();
    // The IdP says no: the login ends.
    answer = new Error('refused');
    await expect(sessions.refresh(third.refreshToken)).rejects.toThrow('the identity provider no longer accepts this sign-in');
    expect(sessions.authenticate(third.accessToken)).toBeUndefined();
  });
});
