/**
 * Just-in-time access end to end: the HTTP API, a real PostgreSQL, real psql and the `pg` driver, a
 * local webhook receiver, and a ManualClock for grant, token and request time (never slept on).
 *
 *   request -> approve -> token -> psql; auto-grant; self-approval and outsiders refused; 2-of-3;
 *   break-glass (reason mandatory, notified, signed webhook retried); pending expiry; a grant's
 *   expiry and its revocation end live psql and pg sessions within a second (FATAL with the reason,
 *   backend closed) and later logins with its tokens get 28000.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { verifySignature } from '../src/notify/webhooks.js';
import { startAccessGateway, WEBHOOK_SECRET, type AccessGateway, type Person } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

const M = 60_000;
let server: PgServer;
let receiver: WebhookReceiver;
let env: AccessGateway;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  server = await startPostgres();
  receiver = await startWebhookReceiver();
  env = await startAccessGateway(server, { clock, webhookUrl: receiver.url });
});

afterAll(async () => {
  await env?.gw.close();
  await receiver?.close();
  await server?.cleanup();
});

type Json = Record<string, unknown> & { id: string; state: string };
interface Decision {
  request: Json;
  grant: (Json & { expiresAt: string; breakGlass: boolean; approvedBy: string[] }) | null;
  reasons: string[];
  message: string;
  error?: string;
}

const api = <T = Decision>(who: Person, method: string, path: string, body?: unknown) => env.api<T>(who, method, path, body);

async function grantVia(who: Person, connection: string, duration: string, approver: Person = 'bob'): Promise<string> {
  const asked = await api(who, 'POST', '/api/requests', { connection, duration, reason: 'e2e' });
  expect(asked.status, JSON.stringify(asked.body)).toBe(201);
  if (asked.body.grant) return asked.body.grant.id;
  const approved = await api(approver, 'POST', `/api/requests/${asked.body.request.id}/approve`, { comment: 'ok' });
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  return approved.body.grant!.id;
}

async function tokenFor(who: Person, connection: string): Promise<{ token: string; expiresAt: string; grant: { id: string } }> {
  const r = await api<{ token: string; expiresAt: string; grant: { id: string } }>(who, 'POST', '/api/tokens', { connection });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

function pgClient(user: string, connection: string, token: string, application_name = 'jitgate-e2e'): pg.Client {
  return new pg.Client({ host: env.gw.host, port: env.gw.port, user, database: connection, password: token, application_name });
}

/** An interactive psql reading from a pipe we keep open, as a person at a terminal would. */
function livePsql(user: string, connection: string, token: string, appName: string) {
  const child: ChildProcessWithoutNullStreams = spawn('psql', [env.gw.dsn({ user, connection }), '-X', '-At'], {
    env: { ...process.env, PGPASSWORD: token, PGAPPNAME: appName },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    send: (sql: string) => child.stdin.write(sql + '\n'),
    out: () => out,
    err: () => err,
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

async function backendsNamed(appName: string): Promise<number> {
  const r = await server.query(`select count(*)::int as n from pg_stat_activity where application_name = $1`, [appName]);
  return r.rows[0]!.n as number;
}

/** The first error a client reports (it reports the closed connection after it as well). */
function firstError(client: pg.Client): Promise<Error & { code?: string }> {
  return new Promise((resolve) => {
    let first: (Error & { code?: string }) | undefined;
    client.on('error', (err) => {
      first ??= err;
      resolve(first);
    });
  });
}

/** `p`, or a failure after `limitMs`. */
async function within<T>(p: Promise<T>, limitMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${limitMs}ms`)), limitMs)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('requests and approvals', () => {
  it('request -> approve -> token -> psql', async () => {
    const asked = await api('alice', 'POST', '/api/requests', { connection: 'app', duration: '1h', reason: 'INC-1: look at orders' });
    expect(asked.status).toBe(201);
    expect(asked.body).toMatchObject({
      request: { state: 'pending', approverGroups: ['approvers', 'dba'] },
      grant: null,
      reasons: ['approval_required'],
    });

    // No grant yet: no token.
    const early = await api('alice', 'POST', '/api/tokens', { connection: 'app' });
    expect(early).toMatchObject({ status: 403, body: { error: 'no_active_grant' } });

    const listed = await api<{ approvable: Json[] }>('frank', 'GET', '/api/requests');
    expect(listed.body.approvable.map((r) => r.id)).toContain(asked.body.request.id);

    const approved = await api('frank', 'POST', `/api/requests/${asked.body.request.id.slice(0, 8)}/approve`, { comment: 'go ahead' });
    expect(approved.status).toBe(200);
    expect(approved.body.grant).toMatchObject({
      user: 'alice',
      connection: 'app',
      approvedBy: ['frank'],
      expiresAt: new Date(clock.now() + 3_600_000).toISOString(),
    });

    const t = await tokenFor('alice', 'app');
    expect(t.grant.id).toBe(approved.body.grant!.id);
    const r = await psql(env.gw.dsn({ user: 'alice', connection: 'app' }), t.token, ['-At', '-c', 'select current_user']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(server.users.scram.user);

    const me = await api<{ user: string; groups: string[]; grants: Json[] }>('alice', 'GET', '/api/whoami');
    expect(me.body).toMatchObject({ user: 'alice', groups: ['engineering'] });
    expect(me.body.grants.map((g) => g.id)).toContain(approved.body.grant!.id);
    const conns = await api<{ connections: Array<{ name: string; access: { state: string } }> }>('alice', 'GET', '/api/connections');
    expect(conns.body.connections.map((c) => [c.name, c.access.state])).toEqual([
      ['app', 'granted'],
      ['app-md5', 'none'],
      ['app-trust', 'none'],
    ]);
  });

  it('auto-grant policy: granted at once, the pg driver connects', async () => {
    const asked = await api('mallory', 'POST', '/api/requests', { connection: 'app-trust', duration: '30m' });
    expect(asked.status).toBe(201);
    expect(asked.body).toMatchObject({ request: { state: 'granted' }, grant: { approvedBy: [] }, reasons: ['auto_approved'] });
    const { token } = await tokenFor('mallory', 'app-trust');
    const c = pgClient('mallory', 'app-trust', token);
    await c.connect();
    expect((await c.query('select 7 as n')).rows).toEqual([{ n: 7 }]);
    await c.end();
    // No policy lets mallory near "app".
    expect(await api('mallory', 'POST', '/api/requests', { connection: 'app', duration: '30m', reason: 'x' })).toMatchObject({
      status: 403,
      body: { error: 'no_matching_policy' },
    });
  });

  it('self-approval and approvers outside the groups are refused', async () => {
    const asked = await api('bob', 'POST', '/api/requests', { connection: 'app', duration: '1h', reason: 'mine' });
    const id = asked.body.request.id;
    expect(await api('bob', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({
      status: 403,
      body: { error: 'self_approval', message: 'nobody approves their own request' },
    });
    // An engineer who is no approver cannot even see it; an admin outside the groups sees it, may not approve.
    expect(await api('alice', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({ status: 404 });
    expect(await api('dave', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({ status: 403, body: { error: 'not_an_approver' } });
    expect(await api('mallory', 'POST', `/api/requests/${id}/deny`, { reason: 'no' })).toMatchObject({ status: 404 });
    expect((await api('carol', 'POST', `/api/requests/${id}/deny`, { reason: 'use staging' })).body.request).toMatchObject({
      state: 'denied',
      decidedBy: 'carol',
    });
  });

  it('2-of-3: the second distinct approver completes the grant', async () => {
    const asked = await api('alice', 'POST', '/api/requests', { connection: 'app-md5', duration: '2h', reason: 'migration' });
    const id = asked.body.request.id;
    const first = await api('carol', 'POST', `/api/requests/${id}/approve`, {});
    expect(first.body).toMatchObject({ grant: null, reasons: ['approval_recorded'], message: 'approval recorded (1 of 2)' });
    expect(await api('carol', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({
      status: 409,
      body: { error: 'already_approved' },
    });
    const second = await api('dan', 'POST', `/api/requests/${id}/approve`, {});
    expect(second.body.grant).toMatchObject({ approvedBy: ['carol', 'dan'] });
    expect(await api('erin', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({
      status: 409,
      body: { error: 'request_not_pending' },
    });
    const { token } = await tokenFor('alice', 'app-md5');
    const r = await psql(env.gw.dsn({ user: 'alice', connection: 'app-md5' }), token, ['-At', '-c', 'select 1']);
    expect(r.stdout.trim()).toBe('1');
  });

  it('break-glass: reason mandatory, granted at once, sent to the webhook signed (retried past failures)', async () => {
    expect(await api('alice', 'POST', '/api/requests', { connection: 'app', duration: '1h', breakGlass: true })).toMatchObject({
      status: 400,
      body: { error: 'break_glass_reason_required' },
    });
    const before = receiver.deliveries.length;
    // The receiver fails the first two attempts of the break-glass notice.
    receiver.respond = (d) => (d.json.type === 'break_glass.used' && Number(d.headers['x-jitgate-attempt']) < 3 ? 503 : 200);
    const out = await api('alice', 'POST', '/api/requests', {
      connection: 'app',
      duration: '1h',
      reason: 'orders table locked',
      breakGlass: true,
    });
    expect(out.status).toBe(201);
    expect(out.body.grant).toMatchObject({ breakGlass: true, approvedBy: ['alice'] });

    // The API answered before any delivery; deliveries retry on the gateway's clock.
    const breakGlass = () => receiver.deliveries.slice(before).filter((d) => d.json.type === 'break_glass.used');
    await vi.waitFor(() => {
      clock.advance(2500);
      expect(
        breakGlass().filter((d) => d.headers['x-jitgate-attempt'] === '3'),
        'the third attempt of the break-glass webhook',
      ).toHaveLength(1);
    });
    const attempts = breakGlass();
    expect(attempts.map((d) => d.headers['x-jitgate-attempt'])).toEqual(['1', '2', '3']);
    const last = attempts.at(-1)!;
    expect(
      verifySignature(
        WEBHOOK_SECRET,
        { signature: last.headers['x-jitgate-signature'] as string, timestamp: last.headers['x-jitgate-timestamp'] as string },
        last.body,
        {
          nowMs: clock.now(),
        },
      ),
    ).toBe(true);
    expect(last.json).toMatchObject({
      kind: 'break_glass',
      actor: 'alice',
      reason: 'orders table locked',
      grant: { id: out.body.grant!.id, breakGlass: true },
    });
  });

  it('a pending request expires after the policy time (and the webhook hears of it)', async () => {
    const asked = await api('alice', 'POST', '/api/requests', { connection: 'app-md5', duration: '1h', reason: 'later' });
    const id = asked.body.request.id;
    clock.advance(59 * M);
    expect((await api<Json>('alice', 'GET', `/api/requests/${id}`)).body.state).toBe('pending');
    clock.advance(M);
    expect((await api<Json>('alice', 'GET', `/api/requests/${id}`)).body).toMatchObject({
      state: 'expired',
      reasons: ['approval_required', 'request_expired'],
    });
    expect(await api('carol', 'POST', `/api/requests/${id}/approve`, {})).toMatchObject({
      status: 409,
      body: { error: 'request_not_pending' },
    });
    await vi.waitFor(() =>
      expect(
        receiver.deliveries.some((d) => d.json.type === 'request.expired' && (d.json.request as Json).id === id),
        'the request.expired webhook',
      ).toBe(true),
    );
  });
});

describe('live sessions end with their grant', () => {
  it('grant expiry ends a live psql and pg session within a second; later logins get 28000', async () => {
    const grantId = await grantVia('alice', 'app', '10m');
    const { token } = await tokenFor('alice', 'app');
    const idle = pgClient('alice', 'app', token, 'expiry-pg');
    await idle.connect();
    const pgError = firstError(idle);
    const session = livePsql('alice', 'app', token, 'expiry-psql');
    session.send(`select 'ready';`);
    await vi.waitFor(() => expect(session.out(), 'psql to be ready').toContain('ready'));
    session.send('select pg_sleep(60);'); // busy on the backend when the grant ends
    await vi.waitFor(async () => expect(await backendsNamed('expiry-psql'), "psql's backend connection").toBe(1));
    await vi.waitFor(async () => {
      const r = await server.query(
        `select count(*)::int as n from pg_stat_activity where application_name = 'expiry-psql' and state = 'active'`,
      );
      expect(r.rows[0]!.n, 'pg_sleep to run on the backend').toBe(1);
    });

    const began = performance.now();
    clock.advance(10 * M);
    const code = await within(session.exited, 1000);
    const err = await within(pgError, 1000);
    expect(performance.now() - began).toBeLessThan(1000);
    const expected = `jitgate: access grant ${grantId.slice(0, 8)} expired at ${new Date(clock.now()).toISOString()}`;
    expect(code).not.toBe(0);
    expect(session.err()).toContain(`FATAL:  ${expected}`);
    expect(err.message).toBe(expected);
    expect(err.code).toBe('57P01');
    // The backend connections are gone too (the running statement was cancelled).
    await vi.waitFor(async () => {
      expect(await backendsNamed('expiry-psql'), "psql's backend connection to close").toBe(0);
      expect(await backendsNamed('expiry-pg'), "pg's backend connection to close").toBe(0);
    });

    // The same token, whose own lifetime (15m) has not run out, now gets 28000 with the reason.
    await expect(pgClient('alice', 'app', token).connect()).rejects.toMatchObject({ code: '28000', message: expected });
    const r = await psql(env.gw.dsn({ user: 'alice', connection: 'app' }), token, ['-c', 'select 1']);
    expect(r.stderr).toContain(expected);
    // Once the token itself has expired it is a plain failed login (28P01), as in the core.
    clock.advance(5 * M);
    await expect(pgClient('alice', 'app', token).connect()).rejects.toMatchObject({ code: '28P01' });
    const sessions = await env.gw.gateway.store.listSessions({ user: 'alice' });
    expect(sessions.filter((s) => s.endReason === 'grant_expired')).toHaveLength(2);
  });

  it('revocation ends a live session within a second and refuses its tokens with 28000', async () => {
    const grantId = await grantVia('alice', 'app', '1h');
    const { token } = await tokenFor('alice', 'app');
    const idle = pgClient('alice', 'app', token, 'revoke-pg');
    await idle.connect();
    const pgError = firstError(idle);
    const session = livePsql('alice', 'app', token, 'revoke-psql');
    session.send(`select 'ready';`);
    await vi.waitFor(() => expect(session.out(), 'psql to be ready').toContain('ready'));
    session.send('select pg_sleep(60);');
    await vi.waitFor(async () => {
      const r = await server.query(
        `select count(*)::int as n from pg_stat_activity where application_name = 'revoke-psql' and state = 'active'`,
      );
      expect(r.rows[0]!.n, 'pg_sleep to run on the backend').toBe(1);
    });

    // alice can revoke her own grant, but here an approver of the connection does.
    expect(await api('mallory', 'POST', `/api/grants/${grantId}/revoke`, { reason: 'x' })).toMatchObject({ status: 404 });
    const began = performance.now();
    const revoked = await api<Json>('carol', 'POST', `/api/grants/${grantId}/revoke`, { reason: 'incident closed' });
    expect(revoked.status).toBe(200);
    await within(session.exited, 1000);
    const err = await within(pgError, 1000);
    expect(performance.now() - began).toBeLessThan(1000);
    const expected = `jitgate: access grant ${grantId.slice(0, 8)} was revoked by carol: incident closed`;
    expect(session.err()).toContain(`FATAL:  ${expected}`);
    expect(err.message).toBe(expected);
    await vi.waitFor(async () => {
      expect(await backendsNamed('revoke-psql'), "psql's backend connection to close").toBe(0);
      expect(await backendsNamed('revoke-pg'), "pg's backend connection to close").toBe(0);
    });
    await expect(pgClient('alice', 'app', token).connect()).rejects.toMatchObject({ code: '28000', message: expected });
    expect(await api('alice', 'POST', '/api/tokens', { connection: 'app' })).toMatchObject({ status: 403 });
    await vi.waitFor(() =>
      expect(
        receiver.deliveries.some((d) => d.json.type === 'grant.revoked' && (d.json.grant as Json).id === grantId),
        'the grant.revoked webhook',
      ).toBe(true),
    );
    const sessions = (await env.gw.gateway.store.listSessions({ user: 'alice' })).filter((s) => s.endReason === 'revoked');
    expect(sessions).toHaveLength(2);
  });

  it('a token without a grant behind it opens nothing', async () => {
    const { mintToken } = await import('../src/access/tokens.js');
    const bare = await mintToken(env.gw.gateway.store, { user: 'alice', connection: 'app', ttlMs: 60_000, now: clock.now() });
    await expect(pgClient('alice', 'app', bare.token).connect()).rejects.toMatchObject({
      code: '28000',
      message: 'jitgate: this access token is not backed by an access grant',
    });
  });
});
