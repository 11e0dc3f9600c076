/**
 * Approval metrics read from /metrics after real actions: an access request waits (gauge by
 * connection), is approved after 5 minutes (time-to-decision histogram by policy and outcome);
 * another expires with nobody deciding (expired counter); a psql statement held for review shows
 * in the held gauge and is denied after 2 minutes. Time is a ManualClock.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { startAccessGateway, type AccessGateway } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

let server: PgServer;
let env: AccessGateway;
const clock = new ManualClock(Date.now());
const M = 60_000;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(
    'create table ledger (id serial primary key, note text); grant all on ledger to public; grant usage on sequence ledger_id_seq to public',
  );
  env = await startAccessGateway(server, {
    clock,
    extraYaml: `
reviews:
  - name: app-writes
    connections: [app]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
`,
  });
}, 60_000);

afterAll(async () => {
  await env?.gw.close();
  await server?.cleanup();
});

/** The value of one series in the /metrics text (undefined when absent). */
async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await fetch(`${env.gw.httpUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && line.split(' ')[0] !== name) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(' ')), line.slice(line.lastIndexOf(' ') + 1)];
    const wanted = Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`));
    if (series.startsWith(name + '{') && wanted) return Number(value);
  }
  return undefined;
}

type Asked = { request: { id: string } };

it('pending requests by connection, time to decision by policy and outcome, expiries', async () => {
  const asked = await env.api<Asked>('alice', 'POST', '/api/requests', { connection: 'app', duration: '1h', reason: 'INC-9' });
  expect(asked.status).toBe(201);
  expect(await metric('jitgate_access_requests_pending', { connection: 'app' })).toBe(1);

  clock.advance(5 * M);
  const approved = await env.api('bob', 'POST', `/api/requests/${asked.body.request.id}/approve`, { comment: 'ok' });
  expect(approved.status).toBe(200);
  expect(await metric('jitgate_access_requests_pending', { connection: 'app' })).toBeUndefined();
  const decided = { kind: 'access', policy: 'app-engineers', outcome: 'approved' };
  expect(await metric('jitgate_approval_decision_seconds_count', decided)).toBe(1);
  expect(await metric('jitgate_approval_decision_seconds_sum', decided)).toBe(300);
  expect(await metric('jitgate_approval_decision_seconds_bucket', { ...decided, le: '300' })).toBe(1);
  expect(await metric('jitgate_approval_decision_seconds_bucket', { ...decided, le: '120' })).toBe(0);

  const waits = await env.api<Asked>('alice', 'POST', '/api/requests', { connection: 'app-md5', duration: '1h', reason: 'INC-10' });
  expect(waits.status).toBe(201);
  expect(await metric('jitgate_access_requests_pending', { connection: 'app-md5' })).toBe(1);
  clock.advance(48 * 60 * M);
  expect(await metric('jitgate_approvals_expired_total', { kind: 'access', connection: 'app-md5', policy: 'md5-two-of-three' })).toBe(1);
  expect(await metric('jitgate_approval_decision_seconds_count', { kind: 'access', policy: 'md5-two-of-three', outcome: 'expired' })).toBe(
    1,
  );
  expect(await metric('jitgate_access_requests_pending', { connection: 'app-md5' })).toBeUndefined();
});

it('statements held for review by connection, and their time to decision by rule', async () => {
  const client = new pg.Client({
    host: env.gw.host,
    port: env.gw.port,
    user: 'alice',
    database: 'app',
    password: await env.gw.token({ user: 'alice' }),
  });
  await client.connect();
  const write = client.query("insert into ledger (note) values ('held')").then(
    () => 'ran',
    (err: Error) => err.message,
  );
  await expect
    .poll(() => metric('jitgate_statements_held', { connection: 'app' }), {
      message: 'the held statement to show in jitgate_statements_held',
    })
    .toBe(1);
  const { body } = await env.api<{ reviews: Array<{ id: string }> }>('carol', 'GET', '/api/reviews?state=pending&user=alice');
  clock.advance(2 * M);
  const denied = await env.api('carol', 'POST', `/api/reviews/${body.reviews[0]!.id}/deny`, { comment: 'not now' });
  expect(denied.status).toBe(200);
  expect(await write).not.toBe('ran');
  expect(await metric('jitgate_statements_held', { connection: 'app' })).toBeUndefined();
  const decided = { kind: 'statement', policy: 'app-writes', outcome: 'denied' };
  expect(await metric('jitgate_approval_decision_seconds_count', decided)).toBe(1);
  expect(await metric('jitgate_approval_decision_seconds_sum', decided)).toBe(120);
  await client.end();
});
