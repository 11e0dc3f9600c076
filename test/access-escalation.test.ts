/**
 * Escalation of access requests that wait too long (policy `access.escalate: { after, to }`), on a
 * ManualClock: at `after` a reminder goes to the webhooks (event kind `escalation`), the `to` groups
 * may approve from then on, and the audit log records it. A request decided in time is not escalated.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { startAccessGateway, type AccessGateway } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

let server: PgServer;
let receiver: WebhookReceiver;
let env: AccessGateway;
const clock = new ManualClock(Date.now());
const M = 60_000;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(
    'create table ledger (id serial primary key, note text); grant all on ledger to public; grant usage on sequence ledger_id_seq to public',
  );
  receiver = await startWebhookReceiver();
  env = await startAccessGateway(server, {
    clock,
    // Continues the helper's policy list, then names its own webhook.
    extraYaml: `  - name: tls-escalating
    connections: [app-tls]
    groups: [engineering]
    access: { approvers: [approvers], pendingExpiry: 2h, escalate: { after: 10m, to: [dba] } }
notifications:
  webhooks:
    - { name: receiver, url: ${receiver.url}, secret: "file:webhook-secret", events: [request, escalation], maxAttempts: 3, initialBackoff: 1s }
reviews:
  - name: app-writes
    connections: [app]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m, escalate: { after: 3m, to: [dba] } }
`,
  });
}, 60_000);

afterAll(async () => {
  await env?.gw.close();
  await receiver?.close();
  await server?.cleanup();
});

type Asked = { request: { id: string } };

/** A signed-in console's live event stream (GET /api/events), as text received so far. */
async function liveStream(who: 'frank') {
  const controller = new AbortController();
  const res = await fetch(`${env.gw.httpUrl}/api/events`, {
    headers: { authorization: `Bearer ${env.bearer(who)}` },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  let text = '';
  const decoder = new TextDecoder();
  void (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    } catch {
      // Aborted by close().
    }
  })();
  await expect.poll(() => text, { message: 'the event stream to say hello' }).toContain('event: hello');
  return { text: () => text, close: () => controller.abort() };
}
const escalations = (id: string) =>
  receiver.deliveries.filter((d) => d.json.type === 'request.escalated' && (d.json.request as { id: string }).id === id);

it('a request still waiting after 10m is escalated: reminder, then the dba group may approve', async () => {
  const asked = await env.api<Asked>('alice', 'POST', '/api/requests', { connection: 'app-tls', duration: '1h', reason: 'INC-11' });
  expect(asked.status).toBe(201);
  const id = asked.body.request.id;
  // Before the escalation, frank (dba) is not an approver of it: he cannot even see it.
  expect((await env.api('frank', 'POST', `/api/requests/${id}/approve`, {})).status).toBe(404);

  clock.advance(9 * M);
  await expect
    .poll(() => receiver.deliveries.some((d) => d.json.type === 'request.created' && (d.json.request as { id: string }).id === id), {
      message: 'the request.created webhook',
    })
    .toBe(true);
  expect(escalations(id)).toHaveLength(0);
  // frank's console is open: its live stream tells it the moment the request becomes his to decide.
  const frankStream = await liveStream('frank');

  clock.advance(1 * M);
  await expect.poll(() => escalations(id).length, { message: 'the request to be escalated' }).toBe(1);
  await expect
    .poll(() => frankStream.text(), { timeout: 10_000, message: 'frank to see request.escalated on his event stream' })
    .toContain('event: request.escalated');
  frankStream.close();
  const pendingForFrank = await env.api<{ approvable: Array<{ id: string; escalatedAt: string | null }> }>(
    'frank',
    'GET',
    '/api/requests?state=pending',
  );
  expect(pendingForFrank.body.approvable.find((r) => r.id === id)?.escalatedAt).toBe(new Date(clock.now()).toISOString());
  const reminder = escalations(id)[0]!;
  expect(reminder.headers['x-jitgate-event']).toBe('request.escalated');
  expect(reminder.json).toMatchObject({
    kind: 'escalation',
    to: ['dba'],
    waitedMs: 10 * M,
    request: { id, approverGroups: ['approvers', 'dba'] },
  });
  expect(String(reminder.json.summary)).toContain('has waited 10m for approval; dba may now approve it too');
  const audited = (await env.gw.gateway.audit.about(id)).filter((e) => e.type === 'access.request.escalated');
  expect(audited).toHaveLength(1);
  expect(audited[0]!.data).toMatchObject({ to: ['dba'], waitedMs: 10 * M });

  const approved = await env.api<{ grant: { approvedBy: string[] } }>('frank', 'POST', `/api/requests/${id}/approve`, {
    comment: 'escalated to dba',
  });
  expect(approved.status).toBe(200);
  expect(approved.body.grant.approvedBy).toEqual(['frank']);

  // Once only.
  clock.advance(30 * M);
  expect(escalations(id)).toHaveLength(1);
});

it('a request decided before its escalation time is not escalated', async () => {
  const mine = await env.api<Asked>('bob', 'POST', '/api/requests', { connection: 'app-tls', duration: '1h', reason: 'INC-12' });
  expect(mine.status).toBe(201);
  const id = mine.body.request.id;
  clock.advance(5 * M);
  expect((await env.api('carol', 'POST', `/api/requests/${id}/approve`, {})).status).toBe(200);
  clock.advance(20 * M);
  await expect
    .poll(() => receiver.deliveries.some((d) => d.json.type === 'request.created' && (d.json.request as { id: string }).id === id), {
      message: 'the request.created webhook',
    })
    .toBe(true);
  expect(escalations(id)).toHaveLength(0);
  expect((await env.gw.gateway.audit.about(id)).filter((e) => e.type === 'access.request.escalated')).toHaveLength(0);
});

it("a statement held past its rule's escalate.after: reminder, then the dba group approves and it runs", async () => {
  const client = new pg.Client({
    host: env.gw.host,
    port: env.gw.port,
    user: 'alice',
    database: 'app',
    password: await env.gw.token({ user: 'alice' }),
  });
  await client.connect();
  const write = client.query("insert into ledger (note) values ('escalated') returning note");
  let id = '';
  await expect
    .poll(async () => {
      const { body } = await env.api<{ reviews: Array<{ id: string }> }>('carol', 'GET', '/api/reviews?state=pending&user=alice');
      id = body.reviews[0]?.id ?? '';
      return id;
    })
    .not.toBe('');
  expect((await env.api('frank', 'POST', `/api/reviews/${id}/approve`, {})).status).toBe(404);
  clock.advance(3 * 60_000);
  const reminders = () =>
    receiver.deliveries.filter((d) => d.json.type === 'review.escalated' && (d.json.review as { id: string }).id === id);
  await expect.poll(() => reminders().length, { message: 'one reminder' }).toBe(1);
  expect(reminders()[0]!.json).toMatchObject({
    kind: 'escalation',
    to: ['dba'],
    waitedMs: 3 * 60_000,
    review: { approverGroups: ['approvers', 'dba'] },
  });
  expect((await env.gw.gateway.audit.about(id)).filter((e) => e.type === 'review.escalated')).toHaveLength(1);
  expect((await env.api('frank', 'POST', `/api/reviews/${id}/approve`, { comment: 'escalated' })).status).toBe(200);
  expect((await write).rows).toEqual([{ note: 'escalated' }]);
  await client.end();
});
