/**
 * The HTTP API as the web console uses it, against a real gateway with the development IdP and a
 * real PostgreSQL: browser sign-in with cookies, CSRF on every state-changing route, role checks,
 * audit and admin reads (secrets by name only), live events, the OpenAPI document, the console's
 * static files and CSP, and the sign-in rate limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { ScriptedBrowser } from './support/browser.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

let server: PgServer;
let gw: TestGateway;
let base = '';
type User = 'alice' | 'bob' | 'carol' | 'dave';
const bearer: Record<User, string> = { alice: '', bob: '', carol: '', dave: '' };

beforeAll(async () => {
  server = await startPostgres();
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering, security]
    access: { approvers: [approvers, admins], maxDuration: 4h }
audit:
  auditors: [auditors]
`,
    configure: (config) => {
      config.identities = demoIdentities(DEMO_USERS);
    },
  });
  base = gw.httpUrl;
  // Gateway sessions as `jitgate login` would get them (sign-in itself is tested below and in the browser test).
  for (const u of DEMO_USERS) {
    bearer[u.user as User] = gw.gateway.identity.sessions.issue({
      issuer: 'dev',
      subject: u.user,
      user: u.user,
      groups: [...u.groups],
    }).accessToken;
  }
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function call(who: User | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(who ? { authorization: `Bearer ${bearer[who]}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, body: json, headers: res.headers, text };
}

/** Signs `user` in through the development IdP like a browser; returns the cookies it got. */
async function browserSignIn(user: User, returnTo = '/approvals') {
  const browser = new ScriptedBrowser();
  const login = await browser.open(`${base}/api/auth/browser/login?returnTo=${encodeURIComponent(returnTo)}`);
  expect(login.html).toContain('The password is the user name.');
  const landed = await browser.submit(login, { username: user, password: user });
  return { browser, landed, cookies: browser.cookiesFor(new URL(base).host) };
}

describe('browser sign-in', () => {
  it('runs code + PKCE through the IdP, sets HttpOnly SameSite cookies (no Secure on plain-HTTP loopback), and lands on returnTo', async () => {
    // Watch the Set-Cookie of the callback itself.
    const setCookies: string[] = [];
    const browser = new ScriptedBrowser({ stopAt: (url) => url.includes('/api/auth/browser/callback') });
    const login = await browser.open(`${base}/api/auth/browser/login?returnTo=/sessions`);
    const stopped = await browser.submit(login, { username: 'alice', password: 'alice' });
    expect(stopped.url).toContain('/api/auth/browser/callback?');
    const loginCookie = browser.cookiesFor(new URL(base).host).get('jitgate_login')!;
    const res = await fetch(stopped.url, { redirect: 'manual', headers: { cookie: `jitgate_login=${loginCookie}` } });
    setCookies.push(...res.headers.getSetCookie());
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/sessions');
    const session = setCookies.find((c) => c.startsWith('jitgate_session=jgs_'))!;
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Lax/);
    expect(session).not.toMatch(/Secure/);
    expect(setCookies.find((c) => c.startsWith('jitgate_refresh=jgr_'))).toMatch(/Path=\/api\/auth\/browser;.*SameSite=Strict; HttpOnly/);
    const csrf = setCookies.find((c) => c.startsWith('jitgate_csrf='))!;
    expect(csrf).not.toMatch(/HttpOnly/); // the console's script echoes it
    // The code was redeemed once: replaying the callback does not sign in again.
    const replay = await fetch(stopped.url, { redirect: 'manual', headers: { cookie: `jitgate_login=${loginCookie}` } });
    expect(replay.headers.get('location')).toMatch(/^\/signin\?error=/);
    expect(replay.headers.getSetCookie().some((c) => c.startsWith('jitgate_session=jgs_'))).toBe(false);
  });

  it('signs in with the cookie; /api/me names the roles; the console page is served with a strict CSP', async () => {
    const { landed, cookies } = await browserSignIn('bob');
    expect(landed.url).toBe(`${base}/approvals`);
    expect(landed.status).toBe(200);
    expect(landed.html).toContain('<div id="root">');
    const me = await call(null, 'GET', '/api/me', undefined, { cookie: `jitgate_session=${cookies.get('jitgate_session')}` });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: 'bob', roles: ['requester', 'approver'] });
    expect((me.body.listeners as { postgres: { port: number } }).postgres.port).toBe(gw.port);
  });

  it('refuses an IdP answer this browser did not start (login CSRF), and a returnTo off this gateway', async () => {
    const browser = new ScriptedBrowser({ stopAt: (url) => url.includes('/api/auth/browser/callback') });
    const login = await browser.open(`${base}/api/auth/browser/login?returnTo=${encodeURIComponent('https://evil.example/x')}`);
    const stopped = await browser.submit(login, { username: 'alice', password: 'alice' });
    // The victim's browser has no (or another) login cookie.
    const forged = await fetch(stopped.url, { redirect: 'manual', headers: { cookie: 'jitgate_login=lgn_someone_else' } });
    expect(forged.status).toBe(303);
    expect(decodeURIComponent(forged.headers.get('location')!)).toContain('not started in this browser');
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('jitgate_session=jgs_'))).toBe(false);
    // The right browser completes it, but only ever back onto this gateway.
    const ok = await fetch(stopped.url, {
      redirect: 'manual',
      headers: { cookie: `jitgate_login=${browser.cookiesFor(new URL(base).host).get('jitgate_login')}` },
    });
    expect(ok.headers.get('location')).toBe('/');
  });

  it('refreshes from the refresh cookie (with CSRF) and signs out, after which the cookie is worthless', async () => {
    const { cookies } = await browserSignIn('alice');
    const jar = (names: string[]) => names.map((n) => `${n}=${cookies.get(n)}`).join('; ');
    const csrf = cookies.get('jitgate_csrf')!;
    const origin = { origin: base };
    expect(
      (await call(null, 'POST', '/api/auth/browser/refresh', undefined, { cookie: jar(['jitgate_refresh', 'jitgate_csrf']), ...origin }))
        .status,
    ).toBe(403);
    const refreshed = await fetch(`${base}/api/auth/browser/refresh`, {
      method: 'POST',
      headers: { cookie: jar(['jitgate_refresh', 'jitgate_csrf']), 'x-csrf-token': csrf, ...origin },
    });
    expect(refreshed.status).toBe(200);
    const fresh = refreshed.headers
      .getSetCookie()
      .find((c) => c.startsWith('jitgate_session=jgs_'))!
      .split(';')[0]!;
    expect((await call(null, 'GET', '/api/me', undefined, { cookie: fresh })).status).toBe(200);
    const out = await call(null, 'POST', '/api/auth/browser/logout', undefined, {
      cookie: `${fresh}; jitgate_csrf=${csrf}`,
      'x-csrf-token': csrf,
      ...origin,
    });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie().some((c) => /^jitgate_session=;.*Max-Age=0/.test(c))).toBe(true);
    expect((await call(null, 'GET', '/api/me', undefined, { cookie: fresh })).status).toBe(401);
  });
});

describe('CSRF', () => {
  let cookie = '';
  let csrf = '';
  beforeAll(async () => {
    const { cookies } = await browserSignIn('alice');
    csrf = cookies.get('jitgate_csrf')!;
    cookie = `jitgate_session=${cookies.get('jitgate_session')}; jitgate_csrf=${csrf}`;
  });

  it('refuses every state-changing route called with the cookie but without the token', async () => {
    // The SAML ACS is a cross-site POST from the IdP by design and takes no identity from cookies: what
    // guards it is a signed response answering a request this gateway sent (test/saml.test.ts).
    const routes = gw.gateway.router
      .list()
      .filter((r) => r.method !== 'GET' && r.pattern.startsWith('/api/') && r.pattern !== '/api/auth/saml/:name/acs');
    expect(routes.length).toBeGreaterThan(10);
    for (const r of routes) {
      const path = r.pattern.replace(/:(\w+)/g, 'x');
      const res = await call(null, r.method, path, {}, { cookie, origin: base });
      expect([res.status, res.body.error], `${r.method} ${r.pattern}`).toEqual([403, 'csrf_token']);
    }
  });

  it('refuses a wrong token and a foreign Origin, accepts the right token from this origin, and lets bearers through', async () => {
    const body = { connection: 'app', duration: '1h', reason: 'csrf test' };
    expect((await call(null, 'POST', '/api/requests', body, { cookie, origin: base, 'x-csrf-token': 'guess' })).body.error).toBe(
      'csrf_token',
    );
    expect(
      (await call(null, 'POST', '/api/requests', body, { cookie, origin: 'https://evil.example', 'x-csrf-token': csrf })).body.error,
    ).toBe('csrf_origin');
    expect(
      (await call(null, 'POST', '/api/requests', body, { cookie, 'sec-fetch-site': 'cross-site', 'x-csrf-token': csrf })).body.error,
    ).toBe('csrf_origin');
    const made = await call(null, 'POST', '/api/requests', body, { cookie, origin: base, 'x-csrf-token': csrf });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    // Reads need no token; bearer callers (CLI) never needed one.
    expect((await call(null, 'GET', '/api/requests', undefined, { cookie })).status).toBe(200);
    const id = (made.body.request as { id: string }).id;
    expect((await call('bob', 'POST', `/api/requests/${id}/deny`, { reason: 'not now' })).status).toBe(200);
  });
});

describe('role checks', () => {
  it('every route but the sign-in ones needs a caller', async () => {
    for (const r of gw.gateway.router.list()) {
      if (r.auth === 'none') continue;
      const res = await call(null, r.method, r.pattern.replace(/:(\w+)/g, 'x'), r.method === 'GET' ? undefined : {});
      expect(res.status, `${r.method} ${r.pattern}`).toBe(401);
    }
  });

  it.each([
    ['GET', '/api/audit', ['carol', 'dave'], ['alice', 'bob']],
    ['GET', '/api/audit/verify', ['carol', 'dave'], ['alice', 'bob']],
    ['GET', '/api/audit/export', ['carol', 'dave'], ['alice', 'bob']],
    ['GET', '/api/admin/connections', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/policies', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/guardrails', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/reviews', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/masking', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/secrets', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/admin/identities', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/apikeys', ['dave'], ['alice', 'bob', 'carol']],
    ['GET', '/api/sessions?user=bob', ['carol', 'dave', 'bob'], ['alice']],
    ['GET', '/api/me', ['alice', 'bob', 'carol', 'dave'], []],
    ['GET', '/api/connections', ['alice', 'bob', 'carol', 'dave'], []],
  ] as const)('%s %s: allowed for %j, 403 for %j', async (method, path, allowed, denied) => {
    for (const who of allowed) expect((await call(who, method, path)).status, `${who} ${path}`).toBe(200);
    for (const who of denied) {
      const res = await call(who, method, path);
      expect([res.status, res.body.error], `${who} ${path}`).toEqual([403, 'forbidden']);
    }
  });

  it('approvals: not your own request, not without being an approver; an approver decides', async () => {
    const asked = await call('carol', 'POST', '/api/requests', { connection: 'app', duration: '30m', reason: 'audit sample' });
    expect(asked.status).toBe(201);
    const id = (asked.body.request as { id: string }).id;
    expect((await call('carol', 'POST', `/api/requests/${id}/approve`, {})).status).toBe(403);
    expect([403, 404]).toContain((await call('alice', 'POST', `/api/requests/${id}/approve`, {})).status);
    const ok = await call('bob', 'POST', `/api/requests/${id}/approve`, { comment: 'fine' });
    expect(ok.status).toBe(200);
    expect((ok.body.request as { state: string }).state).toBe('granted');
    // Revoking someone else's grant: not for another requester; the grantee may.
    const grantId = (ok.body.grant as { id: string }).id;
    expect([403, 404]).toContain((await call('alice', 'POST', `/api/grants/${grantId}/revoke`, {})).status);
    expect((await call('carol', 'POST', `/api/grants/${grantId}/revoke`, { reason: 'done' })).status).toBe(200);
  });

  it("/api/me names each demo user's roles", async () => {
    const roles = async (u: User) => (await call(u, 'GET', '/api/me')).body.roles;
    expect(await roles('alice')).toEqual(['requester']);
    expect(await roles('bob')).toEqual(['requester', 'approver']);
    expect(await roles('carol')).toEqual(['requester', 'auditor']);
    expect(await roles('dave')).toEqual(['requester', 'approver', 'admin']);
  });
});

describe('audit and admin reads', () => {
  it('lists audit entries with filters, verifies the chain, and exports JSON lines', async () => {
    const all = await call('carol', 'GET', '/api/audit?type=access&limit=5');
    expect(all.status).toBe(200);
    const entries = all.body.entries as Array<{ seq: number; type: string }>;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.type.startsWith('access.'))).toBe(true);
    expect(entries.map((e) => e.seq)).toEqual([...entries.map((e) => e.seq)].sort((a, b) => b - a)); // newest first
    const verify = await call('carol', 'GET', '/api/audit/verify');
    expect(verify.body).toMatchObject({ ok: true, keyTrusted: true });
    expect(verify.body.entries).toBeGreaterThan(0);
    const exported = await call('dave', 'GET', '/api/audit/export');
    expect(exported.headers.get('content-disposition')).toMatch(/attachment; filename="jitgate-audit-.*\.jsonl"/);
    const lines = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; hash: string });
    expect(lines[0]!.seq).toBe(1);
    expect(lines.every((l) => /^[0-9a-f]{64}$/.test(l.hash))).toBe(true);
    expect((await call('carol', 'GET', '/api/audit?since=yesterday-ish')).status).toBe(400);

    // Filtered exports: CSV that a spreadsheet reads back to the same entries, and a JSON array.
    const requests = (await call('carol', 'GET', '/api/audit?type=access.request&limit=1000')).body.entries as Array<{
      seq: number;
      actor: string;
      data: unknown;
    }>;
    expect(requests.length).toBeGreaterThan(0);
    const csv = await call('carol', 'GET', '/api/audit/export?format=csv&type=access.request');
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/filename="jitgate-audit-.*\.csv"/);
    const [header, ...rows] = parseCsv(csv.text);
    expect(header).toEqual(['seq', 'at', 'type', 'actor', 'subject', 'data', 'hash']);
    expect(rows.map((r) => Number(r[0]))).toEqual(requests.map((e) => e.seq).reverse()); // oldest first
    for (const r of rows) {
      const e = requests.find((x) => x.seq === Number(r[0]))!;
      expect(r[2]).toMatch(/^access\.request\./);
      expect(r[3]).toBe(e.actor);
      expect(JSON.parse(r[5]!)).toEqual(e.data); // commas and quotes in reasons survive the quoting
    }
    const json = await call('carol', 'GET', '/api/audit/export?format=json&type=access.request&actor=alice');
    const array = JSON.parse(json.text) as Array<{ actor: string; type: string; at: string }>;
    expect(array.length).toBeGreaterThan(0);
    expect(array.every((e) => e.actor === 'alice' && e.type.startsWith('access.request.') && !Number.isNaN(Date.parse(e.at)))).toBe(true);
    expect(JSON.parse((await call('carol', 'GET', '/api/audit/export?format=json&actor=nobody-at-all')).text)).toEqual([]);
    expect((await call('carol', 'GET', '/api/audit/export?format=xml')).status).toBe(400);
  });

  it('shows configuration with secrets by reference only, never a value', async () => {
    const connections = await call('dave', 'GET', '/api/admin/connections');
    const app = (connections.body.connections as Array<Record<string, unknown>>).find((c) => c.name === 'app')!;
    expect(app).toMatchObject({ host: '127.0.0.1', database: 'app', password: { kind: 'env', name: 'PG_SCRAM' } });
    const secrets = await call('dave', 'GET', '/api/admin/secrets');
    expect(secrets.body.references).toContainEqual({ connection: 'app', password: { kind: 'env', name: 'PG_SCRAM' } });
    const identities = await call('dave', 'GET', '/api/admin/identities');
    const everything = [
      connections,
      secrets,
      identities,
      await call('dave', 'GET', '/api/admin/policies'),
      await call('dave', 'GET', '/api/admin/guardrails'),
      await call('dave', 'GET', '/api/admin/reviews'),
      await call('dave', 'GET', '/api/admin/masking'),
    ]
      .map((r) => r.text)
      .join('\n');
    for (const u of Object.values(server.users)) expect(everything).not.toContain(u.password);
    expect(everything).not.toContain(gw.config.identities.devIdp!.agent.clientSecret);
    expect(everything).not.toMatch(/"password":\s*"(?!.*kind)/);
  });
});

describe('live events', () => {
  it('tells an approver about a new request as it is made, and the requester about the decision', async () => {
    const listen = async (who: User) => {
      const ac = new AbortController();
      const res = await fetch(`${base}/api/events`, { headers: { authorization: `Bearer ${bearer[who]}` }, signal: ac.signal });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = res.body!.getReader();
      let text = '';
      return {
        async until(pattern: RegExp): Promise<string> {
          for (let i = 0; i < 50 && !pattern.test(text); i++) {
            const { value, done } = await reader.read();
            if (done) break;
            text += new TextDecoder().decode(value);
          }
          return text;
        },
        stop: () => ac.abort(),
      };
    };
    const bob = await listen('bob');
    const alice = await listen('alice');
    await bob.until(/event: hello/);
    await alice.until(/event: hello/);
    const asked = await call('alice', 'POST', '/api/requests', { connection: 'app', duration: '15m', reason: 'live test' });
    const id = (asked.body.request as { id: string }).id;
    expect(await bob.until(new RegExp(`event: request.created\\ndata: .*"${id}"`))).toMatch(
      new RegExp(`event: request.created\\ndata: .*"${id}"`),
    );
    await call('bob', 'POST', `/api/requests/${id}/approve`, { comment: 'go' });
    expect(await alice.until(/event: grant.created/)).toMatch(new RegExp(`event: request.approved\\ndata: .*"${id}"`));
    // carol is neither the requester nor an approver of it: her stream says nothing about it.
    const carol = await listen('carol');
    await carol.until(/event: hello/);
    const second = await call('alice', 'POST', '/api/requests', { connection: 'app', duration: '15m', reason: 'live test 2' });
    await bob.until(new RegExp(`"${(second.body.request as { id: string }).id}"`));
    for (const l of [bob, alice, carol]) l.stop();
  });
});

describe('OpenAPI and the console files', () => {
  it('documents every /api route, with a summary and who may call it', async () => {
    const doc = await call(null, 'GET', '/api/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    const paths = doc.body.paths as Record<string, Record<string, { summary: string; 'x-roles': string[] }>>;
    for (const r of gw.gateway.router.list()) {
      const op = paths[r.pattern.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.pattern}`).toBeDefined();
      expect(op!.summary.length).toBeGreaterThan(3);
      expect(op!['x-roles'].length).toBeGreaterThan(0);
    }
    expect(paths['/api/audit']!.get!['x-roles']).toEqual(['auditor', 'admin']);
    expect(paths['/api/requests/{id}/approve']!.post!['x-roles']).toEqual(['approver']);
  });

  it('serves the console: index without caching, hashed assets immutable with their types, SPA fallback, API 404s stay JSON', async () => {
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await index.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(base + js);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const deep = await fetch(`${base}/sessions/abc`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toBe(html);
    expect((await fetch(`${base}/assets/missing-123.js`)).status).toBe(404);
    const api404 = await fetch(`${base}/api/nope`);
    expect(api404.status).toBe(404);
    expect(api404.headers.get('content-type')).toMatch(/json/);
    expect((await fetch(`${base}/..%2f..%2fetc%2fpasswd`)).headers.get('content-type')).toBe('text/html; charset=utf-8');
  });
});

// Last: it uses up this address's sign-in budget.
describe('sign-in rate limit', () => {
  it('answers 429 with Retry-After once an address has made too many sign-in attempts', async () => {
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 100 && !limited; i++) {
      const r = await call(null, 'POST', '/api/auth/login/start', {
        flow: 'pkce',
        redirectUri: 'http://evil.example/',
        codeChallenge: 'x',
      });
      if (r.status === 429) limited = r;
      else expect(r.status).toBe(400);
    }
    expect(limited?.body.error).toBe('rate_limited');
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await fetch(`${base}/api/auth/browser/login`, { redirect: 'manual' })).status).toBe(429);
    // Other API calls are not limited.
    expect((await call('alice', 'GET', '/api/me')).status).toBe(200);
  });
});

/** RFC 4180 CSV (quoted cells may hold commas, quotes and line breaks) as rows of cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}
