/**
 * Token checks of OidcIssuer against an issuer simulated through an injected fetch (discovery
 * document and JWKS from a key made here). The real provider process is in test/identity.test.ts;
 * this covers the cases a well-behaved provider never produces.
 */
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OidcIssuerConfig } from '../config/types.js';
import { ManualClock } from '../core/clock.js';
import { IdentityUnavailable, OidcIssuer, TokenRejected } from './oidc.js';

const ISSUER = 'https://idp.test/realms/x';
const config: OidcIssuerConfig = {
  name: 'x',
  issuer: ISSUER,
  clientId: 'jitgate',
  audience: 'jitgate',
  groupsClaim: 'groups',
  groupMap: {},
  serviceAccounts: {},
  scopes: ['openid'],
  jwksCooldownMs: 0,
};
const NOW = Date.UTC(2026, 0, 1);
let privateKey: CryptoKey;
let jwks: unknown;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
});

function issuerWith(answers: { discovery?: unknown; jwksStatus?: number; down?: boolean } = {}) {
  const calls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request) => {
    const url = String(input instanceof Request ? input.url : input);
    calls.push(url);
    if (answers.down) throw new TypeError('fetch failed');
    if (url.endsWith('/.well-known/openid-configuration')) {
      return Response.json(answers.discovery ?? { issuer: ISSUER, jwks_uri: `${ISSUER}/certs` });
    }
    return answers.jwksStatus ? new Response('nope', { status: answers.jwksStatus }) : Response.json(jwks);
  }) as typeof fetch;
  const clock = new ManualClock(NOW);
  return { issuer: new OidcIssuer(config, { clock, fetch: fetchImpl }), clock, calls };
}

const sign = (claims: JWTPayload, header: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header }).sign(privateKey);

const good = (extra: JWTPayload = {}): JWTPayload => ({
  iss: ISSUER,
  aud: 'jitgate',
  sub: 'u1',
  preferred_username: 'alice',
  exp: NOW / 1000 + 300,
  ...extra,
});

describe('OidcIssuer', () => {
  it('accepts a good token and reads the identity', async () => {
    const { issuer } = issuerWith();
    expect(await issuer.verifyAccessToken(await sign(good({ groups: ['g'] })))).toEqual({
      ok: true,
      identity: { user: 'alice', groups: ['g'], kind: 'human', subject: 'u1' },
    });
  });

  it.each([
    ['no exp', good({ exp: undefined }), /missing/],
    ['wrong issuer claim', good({ iss: 'https://evil' }), /issuer \(iss\)/],
    ['wrong audience', good({ aud: 'other' }), /audience \(aud\)/],
    ['not yet valid beyond the skew', good({ nbf: NOW / 1000 + 120 }), /nbf/],
  ])('refuses %s', async (_what, claims, reason) => {
    const { issuer } = issuerWith();
    await expect(issuer.verify(await sign(claims), 'jitgate')).rejects.toThrow(reason);
  });

  it('expiry has 60 s of skew on the injected clock', async () => {
    const { issuer, clock } = issuerWith();
    const token = await sign(good());
    clock.set(NOW + 359_000); // exp + 59 s
    await expect(issuer.verify(token, 'jitgate')).resolves.toBeDefined();
    clock.set(NOW + 361_000); // exp + 61 s
    await expect(issuer.verify(token, 'jitgate')).rejects.toThrow(TokenRejected);
  });

  it('refuses an ID token presented as an access token', async () => {
    const { issuer } = issuerWith();
    expect(await issuer.verifyAccessToken(await sign(good({ nonce: 'n' })))).toEqual({
      ok: false,
      reason: 'an ID token is not an access token',
    });
  });

  it('refuses alg none and an HMAC token keyed with something public', async () => {
    const { issuer } = issuerWith();
    const body = Buffer.from(JSON.stringify(good())).toString('base64url');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${body}.`;
    await expect(issuer.verify(none, 'jitgate')).rejects.toBeInstanceOf(TokenRejected);
    const hmac = await new SignJWT(good())
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .sign(new TextEncoder().encode(JSON.stringify(jwks)));
    await expect(issuer.verify(hmac, 'jitgate')).rejects.toThrow('algorithm');
  });

  it('fails closed, as unavailable, when discovery or keys cannot be read, or discovery names another issuer', async () => {
    await expect(issuerWith({ down: true }).issuer.verify(await sign(good()), 'jitgate')).rejects.toBeInstanceOf(IdentityUnavailable);
    await expect(issuerWith({ jwksStatus: 500 }).issuer.verify(await sign(good()), 'jitgate')).rejects.toBeInstanceOf(IdentityUnavailable);
    const other = issuerWith({ discovery: { issuer: 'https://evil', jwks_uri: 'https://evil/certs' } });
    await expect(other.issuer.verify(await sign(good()), 'jitgate')).rejects.toThrow('names issuer "https://evil"');
  });

  it('reads the discovery document once an hour, not per token', async () => {
    const { issuer, clock, calls } = issuerWith();
    for (let i = 0; i < 3; i++) await issuer.verify(await sign(good()), 'jitgate');
    expect(calls.filter((c) => c.includes('well-known'))).toHaveLength(1);
    clock.advance(3_600_000);
    await issuer.metadata();
    expect(calls.filter((c) => c.includes('well-known'))).toHaveLength(2);
  });
});
