import { afterEach, describe, expect, it } from 'vitest';
import { clientProof, matchProof, SCRAM_ITERATIONS, serverSignature } from '../crypto/scram.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { mintToken, TokenAuthority } from './tokens.js';

const NOW = 1_700_000_000_000;
const MIN = 60_000;
const stores: SqliteStore[] = [];
function memory(): SqliteStore {
  const s = openSqliteStore(':memory:');
  stores.push(s);
  return s;
}
afterEach(() => {
  for (const s of stores.splice(0)) void s.close();
});

/** What a client (psql, the pg driver) computes, given the server's first message. */
async function scramExchange(authority: TokenAuthority, user: string, connection: string, password: string, now: number) {
  const { salt, iterations, candidates } = await authority.scramCandidates(user, connection, now);
  const clientFirstBare = 'n=,r=clientnonce';
  const serverFirst = `r=clientnonceservernonce,s=${salt.toString('base64')},i=${iterations}`;
  const clientFinalWithoutProof = 'c=biws,r=clientnonceservernonce';
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
  const { proof, serverSignature: expectedServerSignature } = clientProof(password, salt, iterations, authMessage);
  const index = matchProof(authMessage, proof, candidates);
  const matched = index >= 0 ? candidates[index]! : undefined;
  return {
    tokenId: matched?.tokenId,
    serverSignatureOk: matched ? serverSignature(authMessage, matched.serverKey).equals(expectedServerSignature) : false,
  };
}

describe('mintToken', () => {
  it('returns a jg_ token of 32 random bytes and stores only its verifier', async () => {
    const store = memory();
    const minted = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 15 * MIN, now: NOW });
    expect(minted.token).toMatch(/^jg_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(minted.token.slice(3), 'base64url')).toHaveLength(32);
    expect(minted.expiresAt).toBe(NOW + 15 * MIN);
    const [row] = await store.activeTokens('alice', 'prod', NOW);
    expect(row).toMatchObject({ id: minted.id, createdAt: NOW, expiresAt: NOW + 15 * MIN, revokedAt: null, iterations: SCRAM_ITERATIONS });
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(minted.token);
    expect(stored).not.toContain(minted.token.slice(3));
  });

  it('shares one salt among the tokens of a user on a connection', async () => {
    const store = memory();
    await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: MIN, now: NOW });
    await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: MIN, now: NOW });
    await mintToken(store, { user: 'alice', connection: 'staging', ttlMs: MIN, now: NOW });
    const prod = await store.activeTokens('alice', 'prod', NOW);
    expect(prod).toHaveLength(2);
    expect(prod[0]!.salt.equals(prod[1]!.salt)).toBe(true);
    expect(prod[0]!.salt.equals((await store.activeTokens('alice', 'staging', NOW))[0]!.salt)).toBe(false);
  });

  it('refuses empty names and non-positive lifetimes', async () => {
    const store = memory();
    await expect(mintToken(store, { user: '', connection: 'prod', ttlMs: MIN, now: NOW })).rejects.toThrow();
    await expect(mintToken(store, { user: 'a', connection: 'prod', ttlMs: 0, now: NOW })).rejects.toThrow();
    await expect(mintToken(store, { user: 'a', connection: 'prod', ttlMs: Number.NaN, now: NOW })).rejects.toThrow();
  });
});

describe('TokenAuthority SCRAM', () => {
  it('matches a client proof computed from the token against the right candidate', async () => {
    const store = memory();
    const authority = new TokenAuthority(store);
    const t1 = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 15 * MIN, now: NOW });
    const t2 = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 60 * MIN, now: NOW });
    expect((await authority.scramCandidates('alice', 'prod', NOW)).candidates.map((c) => c.tokenId)).toEqual([t1.id, t2.id]);
    expect(await scramExchange(authority, 'alice', 'prod', t1.token, NOW)).toEqual({ tokenId: t1.id, serverSignatureOk: true });
    expect(await scramExchange(authority, 'alice', 'prod', t2.token, NOW)).toEqual({ tokenId: t2.id, serverSignatureOk: true });
  });

  it('rejects a wrong token, a token for another connection or user, an expired and a revoked one', async () => {
    const store = memory();
    const authority = new TokenAuthority(store);
    const t = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 15 * MIN, now: NOW });
    const other = await mintToken(store, { user: 'alice', connection: 'staging', ttlMs: 15 * MIN, now: NOW });
    expect((await scramExchange(authority, 'alice', 'prod', 'jg_wrong', NOW)).tokenId).toBeUndefined();
    expect((await scramExchange(authority, 'alice', 'prod', other.token, NOW)).tokenId).toBeUndefined();
    expect((await scramExchange(authority, 'bob', 'prod', t.token, NOW)).tokenId).toBeUndefined();
    expect((await scramExchange(authority, 'alice', 'prod', t.token, NOW + 15 * MIN - 1)).tokenId).toBe(t.id);
    expect((await scramExchange(authority, 'alice', 'prod', t.token, NOW + 15 * MIN)).tokenId).toBeUndefined();
    expect(await authority.revoke(t.id, NOW + MIN)).toBe(true);
    expect((await scramExchange(authority, 'alice', 'prod', t.token, NOW + 2 * MIN)).tokenId).toBeUndefined();
  });

  it('answers an unknown user with a deterministic fake salt and no candidates, creating nothing', async () => {
    const store = memory();
    const secret = Buffer.alloc(32, 7);
    const a = new TokenAuthority(store, { serverSecret: secret });
    const first = await a.scramCandidates('nobody', 'prod', NOW);
    expect(first.candidates).toEqual([]);
    expect(first.iterations).toBe(SCRAM_ITERATIONS);
    expect(first.salt).toHaveLength(16);
    expect((await a.scramCandidates('nobody', 'prod', NOW + MIN)).salt.equals(first.salt)).toBe(true);
    expect((await new TokenAuthority(store, { serverSecret: secret }).scramCandidates('nobody', 'prod', NOW)).salt.equals(first.salt)).toBe(
      true,
    );
    expect((await a.scramCandidates('nobody', 'staging', NOW)).salt.equals(first.salt)).toBe(false);
    expect((await a.scramCandidates('nobod', 'yprod', NOW)).salt.equals(first.salt)).toBe(false);
    expect(
      (await new TokenAuthority(store, { serverSecret: Buffer.alloc(32, 8) }).scramCandidates('nobody', 'prod', NOW)).salt.equals(
        first.salt,
      ),
    ).toBe(false);
    // probing must not create per-user state
    expect(await store.activeTokens('nobody', 'prod', NOW)).toEqual([]);
  });
});

describe('TokenAuthority cleartext', () => {
  it('returns the token id for the right token only while it is active', async () => {
    const store = memory();
    const authority = new TokenAuthority(store);
    const t1 = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 15 * MIN, now: NOW });
    const t2 = await mintToken(store, { user: 'alice', connection: 'prod', ttlMs: 30 * MIN, now: NOW });
    expect(await authority.verifyCleartext('alice', 'prod', t1.token, NOW)).toBe(t1.id);
    expect(await authority.verifyCleartext('alice', 'prod', t2.token, NOW)).toBe(t2.id);
    expect(await authority.verifyCleartext('alice', 'prod', t1.token.slice(0, -1), NOW)).toBeUndefined();
    expect(await authority.verifyCleartext('alice', 'prod', '', NOW)).toBeUndefined();
    expect(await authority.verifyCleartext('alice', 'staging', t1.token, NOW)).toBeUndefined();
    expect(await authority.verifyCleartext('mallory', 'prod', t1.token, NOW)).toBeUndefined();
    expect(await authority.verifyCleartext('alice', 'prod', t1.token, NOW + 20 * MIN)).toBeUndefined();
    expect(await authority.verifyCleartext('alice', 'prod', t2.token, NOW + 20 * MIN)).toBe(t2.id);
  });
});
