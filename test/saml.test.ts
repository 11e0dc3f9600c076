/**
 * SAML 2.0 sign-in against a real IdP process (samlp, ./support/saml-idp-process.ts): the gateway
 * reads the IdP's metadata from its URL, serves its own SP metadata, signs people in through the
 * same PKCE login `jitgate login` uses, maps groups with groupMap, re-reads groups at refresh and
 * ends a SAML sign-in after signInTtl. Every forged response is refused, with a reason in the
 * browser's redirect and an audit entry: unsigned, signed with another key, XML signature
 * wrapping, comment injection in the NameID, another SP's audience or recipient, expired, replayed
 * (the same response, and the same assertion ID re-signed for a new request), wrong InResponseTo.
 * The browser itself (console and `jitgate login`) is in console-saml.browser.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { b64, signAssertion, startSamlIdp, stripAssertionSignature, unb64, type SamlTestIdp } from './support/saml-idp.js';
import { collect } from './support/collect.js';

const work = mkdtempSync(join(tmpdir(), 'jitgate-saml-'));
const clock = new ManualClock(Date.now());
let idp: SamlTestIdp;
let gateway: Gateway;
let url: string;

beforeAll(async () => {
  idp = await startSamlIdp({
    users: [
      { user: 'alice', groups: ['eng-team'] },
      { user: 'dave', groups: ['idp-admins', 'eng-team'] },
      { user: 'mallory', groups: [] },
      { user: 'admin.evil', groups: [] },
    ],
  });
  const yaml = `
development: true
dataDir: ${join(work, 'gateway')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
identities:
  saml:
    - name: corp
      metadata: ${idp.metadataUrl}
      groupMap: { eng-team: [engineering], idp-admins: [admins] }
      signInTtl: 8h
  admins: { groups: [admins] }
  session: { ttl: 15m, refreshTtl: 1d }
`;
  gateway = await startGateway(parseConfig(yaml, 'saml-test.yaml', work), {
    clock,
    env: {},
    logger: createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' }),
  });
  url = gateway.addresses.http;
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await idp?.close();
  rmSync(work, { recursive: true, force: true });
});

async function post(path: string, body: unknown, bearer?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Started {
  loginId: string;
  verifier: string;
  authorizationUrl: string;
  requestId: string;
}

/** `jitgate login --issuer corp`'s first request, as the CLI sends it. */
async function startLogin(): Promise<Started> {
  clock.set(Date.now());
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const r = await post('/api/auth/login/start', {
    flow: 'pkce',
    issuer: 'corp',
    redirectUri: 'http://127.0.0.1:9/callback',
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const authorizationUrl = String(r.body.authorizationUrl);
  const request = inflateRawSync(Buffer.from(new URL(authorizationUrl).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
  return { loginId: String(r.body.loginId), verifier, authorizationUrl, requestId };
}

/** Posts a SAMLResponse to the ACS as the browser's auto-submitting form would; the redirect it answers with. */
async function postAcs(samlResponse: string): Promise<URL> {
  const res = await fetch(`${url}/api/auth/saml/corp/acs`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ SAMLResponse: samlResponse, RelayState: '' }).toString(),
  });
  expect(res.status).toBe(303);
  return new URL(res.headers.get('location')!, url);
}

async function token(login: Started, location: URL) {
  return post('/api/auth/token', {
    grantType: 'authorization_code',
    loginId: login.loginId,
    code: location.searchParams.get('code'),
    codeVerifier: login.verifier,
  });
}

/** A complete sign-in through the IdP; the gateway session pair. */
async function signIn(user: string): Promise<Record<string, unknown>> {
  const login = await startLogin();
  const { samlResponse } = await idp.signIn(login.authorizationUrl, user);
  const location = await postAcs(samlResponse);
  expect(location.searchParams.get('error_description')).toBeNull();
  const t = await token(login, location);
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  return t.body;
}

/** A real, valid response for a new login, not yet posted. */
async function realResponse(user: string): Promise<{ login: Started; xml: string }> {
  const login = await startLogin();
  const { samlResponse } = await idp.signIn(login.authorizationUrl, user);
  return { login, xml: unb64(samlResponse) };
}

async function refusals(): Promise<Array<Record<string, unknown>>> {
  return (await collect(gateway.audit.entries())).filter((e) => e.type === 'auth.saml.refused').map((e) => e.data);
}

/** Posts a forged response: the browser goes back to the sign-in's redirect with the reason, nothing is issued, and it is audited. */
async function expectRefused(login: Started, forged: string, reason: RegExp): Promise<void> {
  const before = (await refusals()).length;
  const location = await postAcs(b64(forged));
  expect(location.searchParams.get('error')).toBe('access_denied');
  expect(location.searchParams.get('state')).toBe(login.loginId);
  expect(location.searchParams.get('code')).toBeNull();
  expect(location.searchParams.get('error_description')).toMatch(reason);
  expect((await refusals()).length).toBe(before + 1);
  expect(String((await refusals()).at(-1)!.reason)).toMatch(reason);
  // And the login cannot be completed some other way.
  const t = await post('/api/auth/token', {
    grantType: 'authorization_code',
    loginId: login.loginId,
    code: 'x'.repeat(43),
    codeVerifier: login.verifier,
  });
  expect(t.status).toBe(400);
}

describe('SAML sign-in', () => {
  it('serves the SP metadata with the entity ID and the ACS URL the IdP posts to', async () => {
    const res = await fetch(`${url}/api/auth/saml/corp/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const xml = await res.text();
    expect(xml).toContain(`entityID="${url}/api/auth/saml/corp/metadata"`);
    expect(xml).toContain(`Location="${url}/api/auth/saml/corp/acs"`);
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    expect((await fetch(`${url}/api/auth/saml/nope/metadata`)).status).toBe(404);
    // The console lists it among the providers one can sign in with.
    expect(await (await fetch(`${url}/api/auth/browser/issuers`)).json()).toEqual({ issuers: ['corp'] });
  });

  it('signs a user in with groups from the groups attribute through groupMap, and audits it', async () => {
    const pair = await signIn('dave');
    expect(pair.identity).toEqual({ user: 'dave', groups: ['admins', 'engineering'], kind: 'human', via: 'session' });
    const me = await (await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${String(pair.accessToken)}` } })).json();
    expect(me).toMatchObject({ user: 'dave', admin: true });
    const entry = (await collect(gateway.audit.entries())).filter((e) => e.type === 'auth.saml.signin').at(-1)!;
    expect(entry.actor).toBe('dave');
    expect(entry.data).toMatchObject({ provider: 'corp', groups: ['admins', 'engineering'] });
  });

  it("lists the provider on the administrators' identity page, with where its metadata comes from", async () => {
    const pair = await signIn('dave');
    const res = await fetch(`${url}/api/admin/identities`, { headers: { authorization: `Bearer ${String(pair.accessToken)}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { samlProviders: unknown[]; issuers: unknown[] };
    expect(body.issuers).toEqual([]);
    expect(body.samlProviders).toEqual([
      {
        name: 'corp',
        metadata: idp.metadataUrl,
        entityId: null,
        userAttribute: null,
        groupsAttribute: 'groups',
        groupMap: { 'eng-team': ['engineering'], 'idp-admins': ['admins'] },
        requireSigned: 'assertion',
        clockSkewMs: 60_000,
        signInTtlMs: 8 * 3_600_000,
      },
    ]);
  });

  it('a SAML login has no device flow: the CLI is told to use the browser', async () => {
    const r = await post('/api/auth/login/start', { flow: 'device', issuer: 'corp' });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/SAML sign-in needs a browser/);
  });

  it('a user removed from a group at the IdP loses it at the next refresh after signing in again anywhere, and the sign-in ends after signInTtl', async () => {
    const cli = await signIn('dave');
    const apikeys = async (bearer: string) =>
      (await fetch(`${url}/api/apikeys`, { headers: { authorization: `Bearer ${bearer}` } })).status;
    expect(await apikeys(String(cli.accessToken))).toBe(200);

    // The IdP administrator removes dave from idp-admins; his next sign-in (say, in the console) says so.
    await idp.setGroups('dave', ['eng-team']);
    const browser = await signIn('dave');
    expect((browser.identity as { groups: string[] }).groups).toEqual(['engineering']);

    // The CLI's sign-in from before refreshes into the groups of the newest assertion.
    const refreshed = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: cli.refreshToken });
    expect(refreshed.status).toBe(200);
    expect((refreshed.body.identity as { groups: string[] }).groups).toEqual(['engineering']);
    expect(await apikeys(String(refreshed.body.accessToken))).toBe(403);

    // After signInTtl (8h, below the 1d refreshTtl) the sign-in ends: back through the IdP.
    clock.set(Date.now() + 8 * 3_600_000 + 1000);
    const late = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: refreshed.body.refreshToken });
    expect(late.status).toBe(400);
    expect(late.body.message).toMatch(/expired: run `jitgate login`/);
    clock.set(Date.now());
  });
});

describe('forged SAML responses are refused', () => {
  it('an assertion without its signature', async () => {
    const { login, xml } = await realResponse('mallory');
    await expectRefused(login, stripAssertionSignature(xml), /not signed by the identity provider/);
  });

  it('an assertion signed with another key', async () => {
    const { login, xml } = await realResponse('mallory');
    const other = await generate([{ name: 'commonName', value: 'attacker' }], { keyType: 'rsa', keySize: 2048, algorithm: 'sha256' });
    const forged = signAssertion(xml.replace('>mallory<', '>dave<'), other.private, other.cert);
    await expectRefused(login, forged, /not signed by the identity provider/);
  });

  it('XML signature wrapping: an unsigned assertion for dave beside the signed one for mallory', async () => {
    const { login, xml } = await realResponse('mallory');
    const signed = /<(?:saml:)?Assertion[\s\S]*<\/(?:saml:)?Assertion>/.exec(xml)![0];
    const evil = stripAssertionSignature(signed)
      .replace(/ID="[^"]+"/, 'ID="_evil"')
      .replace('>mallory<', '>dave<');
    // Variant 1: the signed assertion hidden in the Response's Extensions, the evil one in its place.
    const hidden = xml.replace(
      signed,
      `<samlp:Extensions xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${signed}</samlp:Extensions>${evil}`,
    );
    await expectRefused(login, hidden, /not signed by the identity provider/);
    // Variant 2: the evil assertion carries the original signature (whose reference names the signed ID, kept inside it).
    const second = await realResponse('mallory');
    const signed2 = /<(?:saml:)?Assertion[\s\S]*<\/(?:saml:)?Assertion>/.exec(second.xml)![0];
    const signature = /<(?:ds:)?Signature[\s>][\s\S]*?<\/(?:ds:)?Signature>/.exec(signed2)![0];
    const evil2 = stripAssertionSignature(signed2)
      .replace(/ID="[^"]+"/, 'ID="_evil2"')
      .replace('>mallory<', '>dave<')
      .replace(
        /(<(?:saml:)?Issuer[^>]*>[^<]*<\/(?:saml:)?Issuer>)/,
        `$1${signature}<saml:Advice xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${signed2}</saml:Advice>`,
      );
    await expectRefused(second.login, second.xml.replace(signed2, evil2), /not signed by the identity provider/);
  });

  it('comment injection in the NameID (admin<!---->.evil), which leaves the signature valid', async () => {
    const { login, xml } = await realResponse('admin.evil');
    await expectRefused(login, xml.replace('>admin.evil<', '>admin<!---->.evil<'), /XML comments/);
  });

  it('a response the IdP made for another service provider (audience)', async () => {
    const { login, xml } = await realResponse('mallory');
    const forged = xml.replace(/<(saml:)?Audience>[^<]*</, '<$1Audience>https://other-sp.example.com/saml<');
    await expectRefused(login, signAssertion(forged, idp.key, idp.cert), /meant for another service provider/);
  });

  it('a response the IdP addressed to another service provider (recipient and destination)', async () => {
    const { login, xml } = await realResponse('mallory');
    const other = 'https://other-sp.example.com/acs';
    const recipient = signAssertion(xml.replace(/Recipient="[^"]+"/, `Recipient="${other}"`), idp.key, idp.cert);
    await expectRefused(login, recipient, /addressed to another service provider/);
    const second = await realResponse('mallory');
    await expectRefused(
      second.login,
      second.xml.replace(/Destination="[^"]+"/, `Destination="${other}"`),
      /addressed to another service provider/,
    );
  });

  it('an expired assertion', async () => {
    const { login, xml } = await realResponse('mallory');
    const past = (ms: number) => new Date(Date.now() - ms).toISOString();
    const forged = xml
      .replace(/NotBefore="[^"]+"/g, `NotBefore="${past(3_600_000)}"`)
      .replace(/NotOnOrAfter="[^"]+"/g, `NotOnOrAfter="${past(600_000)}"`)
      .replace(/IssueInstant="[^"]+"/g, `IssueInstant="${past(3_600_000)}"`);
    await expectRefused(login, signAssertion(forged, idp.key, idp.cert), /expired/);
  });

  it('a replayed response, and a replayed assertion ID re-signed for a new request', async () => {
    const first = await realResponse('alice');
    const ok = await postAcs(b64(first.xml));
    expect(ok.searchParams.get('code')).not.toBeNull();
    // The same response again: its request was answered already.
    const again = await postAcs(b64(first.xml));
    expect(again.pathname).toBe('/signin');
    expect(again.searchParams.get('error')).toMatch(/already completed/);
    // The same assertion (same ID) made to answer a new request and signed by the IdP's key.
    const next = await startLogin();
    const replayed = first.xml.replaceAll(first.login.requestId, next.requestId);
    await expectRefused(next, signAssertion(replayed, idp.key, idp.cert), /already used \(replay\)/);
  });

  it('a response whose InResponseTo names another sign-in than its signed assertion', async () => {
    const { login, xml } = await realResponse('mallory');
    const other = await startLogin();
    // Response@InResponseTo is outside the signature: point it at the other login's request.
    const forged = xml.replace(`InResponseTo="${login.requestId}"`, `InResponseTo="${other.requestId}"`);
    await expectRefused(other, forged, /does not answer the sign-in this browser started/);
  });

  it('an unsolicited response, or one for a request the gateway never sent, is refused without a redirect to any client', async () => {
    const { xml } = await realResponse('mallory');
    const unsolicited = await postAcs(b64(xml.replace(/ InResponseTo="[^"]+"/g, '')));
    expect(unsolicited.pathname).toBe('/signin');
    expect(unsolicited.searchParams.get('error')).toMatch(/unsolicited responses are not accepted/);
    const unknown = await postAcs(b64(xml.replace(/InResponseTo="[^"]+"/g, 'InResponseTo="_never_sent"')));
    expect(unknown.searchParams.get('error')).toMatch(/does not answer a sign-in started here/);
    // Nothing internal leaks into what the browser sees.
    expect(unknown.searchParams.get('error')).not.toMatch(/Error|at |\.ts|node-saml/);
  });
});
