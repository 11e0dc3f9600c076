/**
 * Identity end to end: a real OpenID Provider in its own process (./support/oidc-idp-process.ts),
 * the gateway started by startGateway with an `identities` config that trusts it, the real
 * `jitgate login` / `apikey` / `logout` code paths (runCli in-process), and a scripted browser that
 * follows the IdP's redirects and fills its login, device and confirmation forms. Time at the
 * gateway and in the CLI is a ManualClock: expiry is tested by moving it, never by sleeping.
 *
 * The tests share one IdP, one gateway and the sign-ins made along the way, in order.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../src/cli/api-client.js';
import { loginCommand } from '../src/cli/commands/login.js';
import { credentialsPath, type SavedSignIn } from '../src/cli/credentials.js';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { parseConfig } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { ScriptedBrowser } from './support/browser.js';
import { startTestIdp, type TestIdp } from './support/oidc-idp.js';
import { collect } from './support/collect.js';

const AUDIENCE = 'https://jitgate.test';
const GATEWAY_CLIENT = { clientId: 'jitgate', clientSecret: randomBytes(24).toString('base64url') };
const AGENT = { clientId: 'reporting-agent', clientSecret: randomBytes(24).toString('base64url') };
const ROGUE = { clientId: 'rogue-agent', clientSecret: randomBytes(24).toString('base64url') };
const USERS = [
  { user: 'alice', password: 'alice-pw', email: 'alice@corp.test', groups: ['eng-team'] },
  { user: 'bob', password: 'bob-pw', groups: ['eng-team', 'approvers'] },
  { user: 'dave', password: 'dave-pw', groups: ['jitgate-admins'] },
];

const work = mkdtempSync(join(tmpdir(), 'jitgate-identity-'));
const clock = new ManualClock(Date.now());
let idp: TestIdp;
let gateway: Gateway;
let url: string;

beforeAll(async () => {
  idp = await startTestIdp({
    users: USERS,
    gatewayClient: GATEWAY_CLIENT,
    agentClients: [AGENT, ROGUE],
    audience: AUDIENCE,
    extraAudiences: ['https://other-api.test'],
  });
  const yaml = `
development: true
dataDir: ${join(work, 'gateway')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
identities:
  oidc:
    - name: corp
      issuer: ${idp.issuer}
      clientId: ${GATEWAY_CLIENT.clientId}
      clientSecret: env:OIDC_CLIENT_SECRET
      audience: ${AUDIENCE}
      groupMap: { eng-team: [engineering], jitgate-admins: [admins, platform] }
      serviceAccounts:
        reporting-agent: { name: reporting-bot, groups: [reporting] }
      scopes: [openid, profile, email, groups, offline_access]
      jwksRefreshCooldown: 0s
  admins: { groups: [admins] }
  session: { ttl: 15m, refreshTtl: 1d }
`;
  const config = parseConfig(yaml, 'identity-test.yaml', work);
  gateway = await startGateway(config, {
    clock,
    env: { OIDC_CLIENT_SECRET: GATEWAY_CLIENT.clientSecret },
    logger: createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' }),
  });
  url = gateway.addresses.http;
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await idp?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Keep the injected clock near real time, which the IdP (a separate process) lives in. */
function syncClock(): void {
  clock.set(Date.now());
}

interface Captured {
  io: CliIo;
  out: () => string;
  err: () => string;
}

/** A CLI user with their own config directory (so their own credentials.json). */
function cliUser(name: string, onErr?: (text: string) => void): Captured {
  const home = join(work, `home-${name}`);
  let out = '';
  let err = '';
  return {
    io: {
      out: (t) => void (out += t),
      err: (t) => {
        err += t;
        onErr?.(t);
      },
      stdin: Readable.from([]),
      env: { XDG_CONFIG_HOME: join(home, '.config'), HOME: home, JITGATE_NO_BROWSER: '1' },
      cwd: home,
      now: () => clock.now(),
    },
    out: () => out,
    err: () => err,
  };
}

async function me(bearer: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${bearer}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function post(path: string, body: unknown, bearer?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function savedSignIn(c: Captured): SavedSignIn {
  return JSON.parse(readFileSync(credentialsPath(c.io.env), 'utf8')) as SavedSignIn;
}

/** A PKCE sign-in straight through the API (for tests about sessions rather than the CLI). */
async function loginViaApi(user: string, password: string, opts: { verifier?: string; iss?: string } = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const redirectUri = 'http://127.0.0.1:9/callback';
  const start = await post('/api/auth/login/start', {
    flow: 'pkce',
    redirectUri,
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
  });
  expect(start.status).toBe(200);
  const browser = new ScriptedBrowser({ stopAt: (u) => u.startsWith(redirectUri) });
  const form = await browser.open(String(start.body.authorizationUrl));
  const back = await browser.submit(form, { username: user, password });
  const callback = new URL(back.url);
  expect(callback.searchParams.get('state')).toBe(start.body.loginId);
  return post('/api/auth/token', {
    grantType: 'authorization_code',
    loginId: start.body.loginId,
    code: callback.searchParams.get('code'),
    codeVerifier: opts.verifier ?? verifier,
    iss: opts.iss ?? callback.searchParams.get('iss'),
  });
}

describe('identity with a real OIDC provider', { timeout: 60_000 }, () => {
  const alice = cliUser('alice', (text) => {
    // The CLI prints the sign-in URL; a person would open it. The scripted browser does.
    const m = /https?:\/\/\S+\/auth\?\S+/.exec(text);
    if (m) aliceBrowser = signInAt(m[0], 'alice', 'alice-pw');
  });
  let aliceBrowser: Promise<string> | undefined;

  /** Follow an authorization URL through the IdP's login page to the CLI's loopback callback. */
  async function signInAt(authorizationUrl: string, user: string, password: string): Promise<string> {
    const browser = new ScriptedBrowser();
    const loginPage = await browser.open(authorizationUrl);
    expect(loginPage.html).toContain('name="password"');
    const done = await browser.submit(loginPage, { username: user, password });
    return done.html;
  }

  it('jitgate login (PKCE): loopback redirect, group mapping, credentials file 0600 in a 0700 directory', async () => {
    syncClock();
    const code = await runCli(['login', '--url', url], alice.io);
    expect(alice.err()).toContain('To sign in, visit');
    expect(code, alice.err()).toBe(0);
    // The last page the browser saw is the CLI's own loopback server.
    expect(await aliceBrowser).toContain('You can close this tab');
    expect(alice.out()).toMatch(
      new RegExp(`^signed in to ${url} as alice \\(engineering\\) until .*; saved in ${credentialsPath(alice.io.env)}\\n$`),
    );

    const path = credentialsPath(alice.io.env);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    const saved = savedSignIn(alice);
    expect(saved).toMatchObject({ version: 1, url, user: 'alice', groups: ['engineering'] });
    expect(saved.accessToken).toMatch(/^jgs_/);
    expect(saved.refreshToken).toMatch(/^jgr_/);
    // Nothing secret reached the terminal.
    expect(alice.out() + alice.err()).not.toContain(saved.accessToken);
    expect(alice.out() + alice.err()).not.toContain(saved.refreshToken);

    const who = await me(saved.accessToken);
    expect(who).toMatchObject({
      status: 200,
      body: { user: 'alice', groups: ['engineering'], kind: 'human', via: 'session', admin: false },
    });
    expect(Date.parse(String((who.body.session as { expiresAt: string }).expiresAt))).toBe(clock.now() + 15 * 60_000);
  });

  const dave = cliUser('dave');

  it('jitgate login --device: user code and confirmation pages, then polling; admin group from the claim', async () => {
    syncClock();
    let browserDone: Promise<void> | undefined;
    const printed = () => dave.err();
    const sleep = async () => {
      // The first wait is where a person would go to the browser: do it now, then poll.
      browserDone ??= (async () => {
        const verificationUri = /open (\S+) on any device/.exec(printed())![1]!;
        const userCode = /enter the code\n\n {2}(\S+)\n/.exec(printed())![1]!;
        const browser = new ScriptedBrowser();
        const input = await browser.open(verificationUri);
        const confirm = await browser.submit(input, { user_code: userCode });
        expect(confirm.html).toContain(userCode);
        const loginPage = await browser.submit(confirm, {}, { form: 'op.deviceConfirmForm' });
        const done = await browser.submit(loginPage, { username: 'dave', password: 'dave-pw' });
        expect(done.html).toContain('The device is signed in');
      })();
      await browserDone;
    };
    await loginCommand(dave.io, { url, device: true }, { openBrowser: () => undefined, sleep });
    expect(dave.out()).toContain('as dave (admins, platform)');
    const who = await me(savedSignIn(dave).accessToken);
    expect(who.body).toMatchObject({ user: 'dave', groups: ['admins', 'platform'], admin: true, via: 'session' });
  });

  it('unmapped group values pass through; a wrong password gets the login page again; a wrong PKCE verifier is refused', async () => {
    syncClock();
    const bob = await loginViaApi('bob', 'bob-pw');
    expect(bob.status).toBe(200);
    expect(bob.body.identity).toEqual({ user: 'bob', groups: ['approvers', 'engineering'], kind: 'human', via: 'session' });

    const start = await post('/api/auth/login/start', {
      flow: 'pkce',
      redirectUri: 'http://127.0.0.1:9/callback',
      codeChallenge: 'x'.repeat(43),
    });
    const browser = new ScriptedBrowser({ stopAt: (u) => u.startsWith('http://127.0.0.1:9/') });
    const wrong = await browser.submit(await browser.open(String(start.body.authorizationUrl)), { username: 'bob', password: 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('Wrong user name or password');

    const badVerifier = await loginViaApi('bob', 'bob-pw', { verifier: randomBytes(32).toString('base64url') });
    expect(badVerifier.status).toBe(400);
    expect(badVerifier.body.error).toBe('invalid_grant');

    const mixUp = await loginViaApi('bob', 'bob-pw', { iss: idp.otherIssuer });
    expect(mixUp).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', message: expect.stringContaining('not from issuer corp') },
    });

    const notLoopback = await post('/api/auth/login/start', {
      flow: 'pkce',
      redirectUri: 'https://evil.example/cb',
      codeChallenge: 'x'.repeat(43),
    });
    expect(notLoopback).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it("a person's own IdP access token is a bearer too (via oidc); an ID token (other audience) is not", async () => {
    syncClock();
    // The test plays an OAuth client of the IdP (with the gateway's client) to get alice's tokens.
    const verifier = randomBytes(32).toString('base64url');
    const redirectUri = 'http://127.0.0.1:9/callback';
    const authorize = new URL(`${idp.issuer}/auth`);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: GATEWAY_CLIENT.clientId,
      redirect_uri: redirectUri,
      scope: 'openid groups',
      state: 'test',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    })) {
      authorize.searchParams.set(k, v);
    }
    const browser = new ScriptedBrowser({ stopAt: (u) => u.startsWith(redirectUri) });
    const back = await browser.submit(await browser.open(authorize.href), { username: 'alice', password: 'alice-pw' });
    const res = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${GATEWAY_CLIENT.clientId}:${GATEWAY_CLIENT.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: new URL(back.url).searchParams.get('code')!,
        redirect_uri: redirectUri,
        code_verifier: verifier,
      }).toString(),
    });
    const tokens = (await res.json()) as { access_token: string; id_token: string };
    expect(await me(tokens.access_token)).toMatchObject({
      status: 200,
      body: { user: 'alice', groups: ['engineering'], kind: 'human', via: 'oidc' },
    });
    expect((await me(tokens.id_token)).status).toBe(401);
  });

  it('client credentials: a configured service account gets its groups; an unknown client is refused', async () => {
    syncClock();
    const token = await idp.clientCredentials(AGENT);
    expect(await me(token)).toMatchObject({
      status: 200,
      body: { user: 'svc:reporting-bot', groups: ['reporting'], kind: 'service', via: 'client-credentials', admin: false },
    });
    const rogue = await idp.clientCredentials(ROGUE);
    expect((await me(rogue)).status).toBe(401);
    expect(await gateway.identity.authenticateDetailed(rogue)).toEqual({
      ok: false,
      reason: 'client "rogue-agent" is not a configured service account',
    });
  });

  it('refuses a wrong audience, a wrong issuer and a key the issuer does not publish', async () => {
    syncClock();
    const otherAudience = await idp.clientCredentials(AGENT, { resource: 'https://other-api.test' });
    expect(decodeJwt(otherAudience).aud).toBe('https://other-api.test');
    expect((await me(otherAudience)).status).toBe(401);
    expect(await gateway.identity.authenticateDetailed(otherAudience)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('audience (aud)'),
    });

    const otherIssuer = await idp.clientCredentials(AGENT, { from: idp.otherIssuer });
    expect((await me(otherIssuer)).status).toBe(401);
    expect(await gateway.identity.authenticateDetailed(otherIssuer)).toEqual({
      ok: false,
      reason: `the token's issuer "${idp.otherIssuer}" is not configured`,
    });

    // Same claims as a genuine token, signed by a key of our own: once with an unknown key id, once
    // with the issuer's real key id.
    const genuine = await idp.clientCredentials(AGENT);
    const realKid = JSON.parse(Buffer.from(genuine.split('.')[0]!, 'base64url').toString()).kid as string;
    const { privateKey } = await generateKeyPair('RS256');
    const forge = (kid: string) => new SignJWT({ ...decodeJwt(genuine) }).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);
    expect(await gateway.identity.authenticateDetailed(await forge(randomUUID()))).toEqual({
      ok: false,
      reason: 'the token is signed with a key the issuer does not publish',
    });
    expect(await gateway.identity.authenticateDetailed(await forge(realKid))).toEqual({
      ok: false,
      reason: 'the token signature does not verify',
    });
    // And an unsigned token is not a token.
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${genuine.split('.')[1]}.`;
    expect((await gateway.identity.authenticateDetailed(none)).ok).toBe(false);
  });

  it('expiry with 60 s of clock skew, on the injected clock', async () => {
    syncClock();
    const token = await idp.clientCredentials(AGENT);
    const exp = decodeJwt(token).exp! * 1000;
    clock.set(exp + 59_000);
    expect((await me(token)).status).toBe(200);
    clock.set(exp + 61_000);
    expect((await me(token)).status).toBe(401);
    expect(await gateway.identity.authenticateDetailed(token)).toEqual({ ok: false, reason: 'the token has expired' });
    syncClock();
  });

  it('follows a key rotation at the IdP without a restart', async () => {
    syncClock();
    const before = await idp.clientCredentials(AGENT);
    expect((await me(before)).status).toBe(200);
    const kid = await idp.rotateKeys();
    const after = await idp.clientCredentials(AGENT);
    expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid).toBe(kid);
    expect((await me(after)).body).toMatchObject({ user: 'svc:reporting-bot' });
    // The old key is no longer published, so tokens signed with it stop working.
    expect(await gateway.identity.authenticateDetailed(before)).toEqual({
      ok: false,
      reason: 'the token is signed with a key the issuer does not publish',
    });
  });

  it('session refresh rotates the pair; reusing an old refresh token ends the whole sign-in', async () => {
    syncClock();
    const first = (await loginViaApi('bob', 'bob-pw')).body as Record<string, string>;
    const second = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: first.refreshToken });
    expect(second.status).toBe(200);
    const pair = second.body as Record<string, string>;
    expect(pair.accessToken).not.toBe(first.accessToken);
    expect(pair.refreshToken).not.toBe(first.refreshToken);
    expect((await me(first.accessToken!)).status).toBe(401); // the old pair is over
    expect((await me(pair.accessToken!)).body).toMatchObject({ user: 'bob', groups: ['approvers', 'engineering'] });

    const reuse = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: first.refreshToken });
    expect(reuse).toMatchObject({ status: 400, body: { error: 'invalid_grant', message: expect.stringContaining('already used') } });
    expect((await me(pair.accessToken!)).status).toBe(401);
    const after = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: pair.refreshToken });
    expect(after).toMatchObject({ status: 400, body: { error: 'invalid_grant', message: expect.stringContaining('refresh_token_reuse') } });
  });

  it('each refresh asks the IdP again: changed groups are picked up, a removed user is signed out', async () => {
    syncClock();
    const login = (await loginViaApi('bob', 'bob-pw')).body as Record<string, string>;
    await idp.setGroups('bob', ['eng-team']); // no longer an approver
    const refreshed = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: login.refreshToken });
    expect(refreshed.body.identity).toMatchObject({ user: 'bob', groups: ['engineering'] });
    const bobNow = refreshed.body as Record<string, string>;
    expect((await me(bobNow.accessToken!)).body).toMatchObject({ groups: ['engineering'] });

    await idp.setGroups('bob', null);
    const refused = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: bobNow.refreshToken });
    expect(refused).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', message: expect.stringContaining('identity provider no longer accepts') },
    });
    expect((await me(bobNow.accessToken!)).status).toBe(401);
  });

  it('the CLI refreshes silently before expiry and keeps the file 0600', async () => {
    syncClock();
    const before = savedSignIn(alice);
    clock.advance(15 * 60_000 - 30_000); // within the refresh margin
    const api = await apiClient(alice.io);
    expect(await api.get('/api/auth/me')).toMatchObject({ user: 'alice', via: 'session' });
    const after = savedSignIn(alice);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(statSync(credentialsPath(alice.io.env)).mode & 0o777).toBe(0o600);
    expect((await me(before.accessToken)).status).toBe(401);
    syncClock();
  });

  const ciKey: { key?: string; id?: string } = {};

  it('apikey create / use / list: admins only; shown once; authenticates as a service', async () => {
    syncClock();
    const create = cliUser('dave');
    expect(
      await runCli(['apikey', 'create', '--name', 'ci-bot', '--groups', 'deploy,reporting', '--ttl', '1h'], create.io),
      create.err(),
    ).toBe(0);
    ciKey.key = create.out().trim();
    expect(ciKey.key).toMatch(/^jgk_[A-Za-z0-9_-]{43}$/);
    ciKey.id = /API key (key_\S+) "ci-bot"/.exec(create.err())![1];
    expect(create.err()).not.toContain(ciKey.key);
    expect(await me(ciKey.key)).toMatchObject({
      status: 200,
      body: { user: 'apikey:ci-bot', groups: ['deploy', 'reporting'], kind: 'service', via: 'apikey', admin: false },
    });

    const denied = cliUser('alice');
    expect(await runCli(['apikey', 'create', '--name', 'mine'], denied.io)).toBe(1);
    expect(denied.err()).toBe('jitgate: only administrators may do this (identities.admins.groups)\n');
    // A key cannot mint keys either.
    expect((await post('/api/apikeys', { name: 'x' }, ciKey.key)).status).toBe(403);

    const list = cliUser('dave');
    expect(await runCli(['apikey', 'list'], list.io)).toBe(0);
    expect(list.out()).toMatch(new RegExp(`${ciKey.id}\\s+apikey:ci-bot\\s+deploy,reporting\\s+dave\\s+.*\\s+active\\s+\\S+ \\S+\\n`));
    const json = cliUser('dave');
    expect(await runCli(['apikey', 'list', '--json'], json.io)).toBe(0);
    expect(JSON.stringify(JSON.parse(json.out()))).not.toContain('jgk_');
  });

  it('apikey expiry (clock) and revoke', async () => {
    clock.advance(3_600_000); // past the key's 1h; dave's CLI session refreshes on the way
    expect((await me(ciKey.key!)).status).toBe(401);
    const list = cliUser('dave');
    expect(await runCli(['apikey', 'list'], list.io), list.err()).toBe(0);
    expect(list.out()).toMatch(/apikey:ci-bot .* expired/);

    const create = cliUser('dave');
    expect(await runCli(['apikey', 'create', '--name', 'ci-bot'], create.io), create.err()).toBe(0); // the name is free again
    const key = create.out().trim();
    const id = /API key (key_\S+)/.exec(create.err())![1]!;
    expect((await me(key)).status).toBe(200);
    const revoke = cliUser('dave');
    expect(await runCli(['apikey', 'revoke', id], revoke.io)).toBe(0);
    expect(revoke.out()).toBe(`API key ${id} "ci-bot" revoked\n`);
    expect((await me(key)).status).toBe(401);
    syncClock();
  });

  it('API keys have their own namespace: a key named alice acts as apikey:alice, never as the person', async () => {
    syncClock();
    const create = cliUser('dave');
    expect(await runCli(['apikey', 'create', '--name', 'alice', '--ttl', '1h'], create.io), create.err()).toBe(0);
    expect(create.err()).toContain('acting as apikey:alice');
    const key = create.out().trim();
    expect((await me(key)).body).toMatchObject({ user: 'apikey:alice', kind: 'service', via: 'apikey' });
    // alice's own sign-in is still alice, and the key sees none of what is hers.
    expect((await me(savedSignIn(alice).accessToken)).body).toMatchObject({ user: 'alice', kind: 'human' });
    const grants = await fetch(`${url}/api/grants`, { headers: { authorization: `Bearer ${key}` } });
    expect(((await grants.json()) as { mine: unknown[] }).mine).toEqual([]);
    const created = (await collect(gateway.audit.entries())).filter((e) => e.type === 'apikey.created' && e.data.name === 'alice');
    expect(created).toMatchObject([{ actor: 'dave', data: { identity: 'apikey:alice' } }]);
  });

  it('a key cannot make a key that outlives or outranks it; revoking it revokes what it made; all audited', async () => {
    syncClock();
    const create = cliUser('dave');
    expect(await runCli(['apikey', 'create', '--name', 'ops-admin', '--groups', 'admins', '--ttl', '1h'], create.io), create.err()).toBe(0);
    const admin = create.out().trim();
    const adminId = /API key (key_\S+)/.exec(create.err())![1]!;
    expect((await me(admin)).body).toMatchObject({ user: 'apikey:ops-admin', admin: true });

    const outlives = await post('/api/apikeys', { name: 'forever-admin', groups: ['admins'], ttl: '90d' }, admin);
    expect(outlives.status).toBe(403);
    expect(outlives.body.message).toMatch(/^a key cannot create a key that outlives it/);
    const outranks = await post('/api/apikeys', { name: 'bigger', groups: ['admins', 'platform'], ttl: '30m' }, admin);
    expect(outranks.status).toBe(403);
    expect(outranks.body.message).toBe('a key cannot create a key with groups it does not have itself: platform');

    const child = await post('/api/apikeys', { name: 'child-admin', groups: ['admins'], ttl: '30m' }, admin);
    expect(child.status).toBe(201);
    expect(child.body).toMatchObject({ identity: 'apikey:child-admin', createdBy: 'apikey:ops-admin', createdByKey: adminId });
    const grandchild = await post('/api/apikeys', { name: 'grandchild', groups: [], ttl: '10m' }, String(child.body.key));
    expect(grandchild.status).toBe(201);
    expect((await me(String(grandchild.body.key))).status).toBe(200);

    const revoke = cliUser('dave');
    expect(await runCli(['apikey', 'revoke', adminId], revoke.io), revoke.err()).toBe(0);
    expect(revoke.out()).toBe(
      `API key ${adminId} "ops-admin" revoked, with the 2 key(s) it created: ${String(child.body.id)}, ${String(grandchild.body.id)}\n`,
    );
    for (const k of [admin, String(child.body.key), String(grandchild.body.key)]) expect((await me(k)).status).toBe(401);

    const audit = await collect(gateway.audit.entries());
    const about = (id: string) => audit.filter((e) => e.subject === id).map((e) => `${e.type} by ${e.actor}`);
    expect(about(adminId)).toEqual(['apikey.created by dave', 'apikey.revoked by dave']);
    expect(about(String(child.body.id))).toEqual(['apikey.created by apikey:ops-admin', 'apikey.revoked by dave']);
    expect(about(String(grandchild.body.id))).toEqual(['apikey.created by apikey:child-admin', 'apikey.revoked by dave']);
  });

  it('a stolen refresh token used by someone else ends the CLI sign-in too; logout ends it at the gateway', async () => {
    syncClock();
    const stolen = savedSignIn(alice);
    const thief = await post('/api/auth/token', { grantType: 'refresh_token', refreshToken: stolen.refreshToken });
    expect(thief.status).toBe(200);
    clock.set(Date.parse(stolen.accessTokenExpiresAt)); // alice's CLI now refreshes with the same refresh token: reuse
    const who = cliUser('alice');
    await expect(apiClient(who.io)).rejects.toThrow(/your sign-in to .* has ended: this refresh token was already used/);
    expect(existsSync(credentialsPath(who.io.env))).toBe(false);
    expect((await me((thief.body as Record<string, string>).accessToken!)).status).toBe(401);
    syncClock();

    const token = savedSignIn(dave).accessToken;
    expect((await me(token)).status).toBe(200);
    const out = cliUser('dave');
    expect(await runCli(['logout'], out.io)).toBe(0);
    expect(out.out()).toBe(`signed out of ${url}\n`);
    expect(existsSync(credentialsPath(out.io.env))).toBe(false);
    expect((await me(token)).status).toBe(401);
  });
});
