/**
 * The HTTP port against hostile input, with a real gateway, a real PostgreSQL and the development
 * identity provider: sign-in never redirects off the gateway (open redirect) and never builds the
 * IdP's redirect_uri from the Host header; malformed paths are a 400, not a 500; outside development
 * mode only the __Host- cookies count and /metrics wants its token.
 */
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { ScriptedBrowser } from './support/browser.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

let server: PgServer;
let dev: TestGateway;
let prod: TestGateway;
const METRICS_TOKEN = 'metrics-token-for-the-scraper';

beforeAll(async () => {
  server = await startPostgres();
  [dev, prod] = await Promise.all([
    startTestGateway(server, { configure: (config) => void (config.identities = demoIdentities(DEMO_USERS)) }),
    startTestGateway(server, {
      beforeStart: (dataDir) => writeFileSync(join(dataDir, 'metrics-token'), METRICS_TOKEN, { mode: 0o600 }),
      configure: (config) => {
        config.development = false;
        config.metrics = { auth: 'token', token: `file:${join(config.dataDir, 'metrics-token')}` };
      },
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await dev?.close();
  await prod?.close();
  await server?.cleanup();
});

/** A raw GET (fetch cannot set Host or send an unnormalised path). */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sign in as alice with `returnTo` given raw in the query; the callback's Location and status. */
async function signInReturningTo(rawReturnTo: string): Promise<{ status: number; location: string | null; session: boolean }> {
  const base = dev.httpUrl;
  const browser = new ScriptedBrowser({ stopAt: (url) => url.includes('/api/auth/browser/callback') });
  const login = await browser.open(`${base}/api/auth/browser/login?returnTo=${rawReturnTo}`);
  const stopped = await browser.submit(login, { username: 'alice', password: 'alice' });
  const res = await fetch(stopped.url, {
    redirect: 'manual',
    headers: { cookie: `jitgate_login=${browser.cookiesFor(new URL(base).host).get('jitgate_login')}` },
  });
  return {
    status: res.status,
    location: res.headers.get('location'),
    session: res.headers.getSetCookie().some((c) => c.startsWith('jitgate_session=jgs_')),
  };
}

describe('browser sign-in goes back only to this gateway', { timeout: 60_000 }, () => {
  it('every returnTo that would leave the gateway lands on /, and none is a 500', async () => {
    const payloads = [
      '%2F%09%2Fevil.example%2Fphish', // the reported one: the browser drops the tab, leaving //evil.example
      '%2F%0A%2Fevil.example%2Fphish', // a newline: was a 500 after the session was issued
      '%2F%0D%0ASet-Cookie%3A%20x%3D1',
      '%2F%2Fevil.example',
      '%2F%5Cevil.example',
      '%5C%5Cevil.example',
      'https%3Aevil.example',
      'https%3A%2F%2Fevil.example',
      '%2F.%2F%2Fevil.example',
      '%2F%E2%80%AE%2Fevil.example',
      '%2F%00%2Fevil.example',
    ];
    for (const p of payloads) {
      const r = await signInReturningTo(p);
      expect(r, p).toEqual({ status: 303, location: '/', session: true });
    }
    expect(await signInReturningTo('%2Fsessions%3Fuser%3Dbob')).toEqual({ status: 303, location: '/sessions?user=bob', session: true });
  });

  it('the redirect_uri is the listener’s own address, whatever Host the request names', async () => {
    const r = await rawGet(dev.httpUrl, '/api/auth/browser/login', { host: 'evil.example' });
    expect(r.status).toBe(303);
    const redirectUri = new URL(r.headers.location!).searchParams.get('redirect_uri');
    expect(redirectUri).toBe(`${dev.httpUrl}/api/auth/browser/callback`);
  });

  it('outside development mode without a public URL, browser sign-in says what to configure', async () => {
    const r = await rawGet(prod.httpUrl, '/api/auth/browser/login', { host: 'evil.example' });
    expect(r.status).toBe(303);
    expect(decodeURIComponent(r.headers.location!)).toContain('set listeners.http.publicUrl');
  });
});

describe('malformed paths', () => {
  it('are a 400 on every route, mount and static path, never a 500', async () => {
    const session = dev.gateway.identity.sessions.issue({ issuer: 'dev', subject: 'dave', user: 'dave', groups: ['admins'] }).accessToken;
    for (const path of ['/api/sessions/%ff%fe', '/api/requests/%E0%A4%A', '/api/sessions/%', '/mcp/%ff', '/assets/%c0%af', '//']) {
      const r = await rawGet(dev.httpUrl, path, { authorization: `Bearer ${session}` });
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body), path).toMatchObject({ error: 'invalid_path' });
    }
    // A well-formed unknown session id is still the route's own 404.
    expect((await rawGet(dev.httpUrl, '/api/sessions/%C3%A9t%C3%A9', { authorization: `Bearer ${session}` })).status).toBe(404);
  });
});

describe('outside development mode', () => {
  it('only the __Host- session cookie counts (a plain jitgate_session could be tossed in by a sibling site)', async () => {
    const token = prod.gateway.identity.sessions.issue({
      issuer: 'corp',
      subject: 'bob',
      user: 'bob',
      groups: ['engineering'],
    }).accessToken;
    const plain = await fetch(`${prod.httpUrl}/api/me`, { headers: { cookie: `jitgate_session=${token}` } });
    expect(plain.status).toBe(401);
    const prefixed = await fetch(`${prod.httpUrl}/api/me`, { headers: { cookie: `__Host-jitgate_session=${token}` } });
    expect(prefixed.status).toBe(200);
    // In development mode on loopback the plain name is the one the gateway sets.
    const devToken = dev.gateway.identity.sessions.issue({
      issuer: 'dev',
      subject: 'bob',
      user: 'bob',
      groups: ['engineering'],
    }).accessToken;
    expect((await fetch(`${dev.httpUrl}/api/me`, { headers: { cookie: `jitgate_session=${devToken}` } })).status).toBe(200);
  });

  it('/metrics wants the configured bearer token; in development mode it is open', async () => {
    const none = await fetch(`${prod.httpUrl}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
    expect((await fetch(`${prod.httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await fetch(`${prod.httpUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('jitgate_sessions_total');
    expect((await fetch(`${dev.httpUrl}/metrics`)).status).toBe(200);
  });
});

describe('client-supplied names in login errors', () => {
  it('a 5,000-character user name is cut and escaped in the error, not echoed whole', async () => {
    const long = 'a'.repeat(5000);
    const r = await psql(dev.dsn({ user: long }), 'not-a-token', ['-c', 'select 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`password authentication failed for user "${'a'.repeat(64)}…(5000 characters)"`);
    expect(r.stderr).not.toContain('a'.repeat(65));
  });

  it('an API error quoting a 5,000-character name is capped', async () => {
    const session = dev.gateway.identity.sessions.issue({
      issuer: 'dev',
      subject: 'alice',
      user: 'alice',
      groups: ['engineering'],
    }).accessToken;
    const res = await fetch(`${dev.httpUrl}/api/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
      body: JSON.stringify({ connection: 'c'.repeat(5000), duration: '1h', reason: 'x' }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    const body = (await res.json()) as { message: string };
    expect(body.message.length).toBeLessThan(600);
    expect(body.message).not.toContain('c'.repeat(501));
  });
});
