/**
 * Webhook deliveries outlive a restart: with the receiver down, an access request's notification
 * waits on backoff; the gateway stops; the receiver comes back; the next gateway on the same state
 * store sends it, exactly once, with the same delivery id. Time is a ManualClock: nothing sleeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { startAccessGateway, type AccessGateway } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

let server: PgServer;
let receiver: WebhookReceiver | undefined;
let gateway: AccessGateway | undefined;
const stateDir = mkdtempSync(join(tmpdir(), 'jitgate-webhook-restart-'));
const storeYaml = `store: { path: ${join(stateDir, 'state.db')} }\n`;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await gateway?.gw.close();
  await receiver?.close();
  await server?.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
});

function outboxSize(env: AccessGateway): number {
  return ((env.gw.gateway.store as SqliteStore).database.prepare('SELECT count(*) AS n FROM webhook_deliveries').get() as { n: number }).n;
}

it('a delivery waiting on backoff at shutdown is sent once by the next gateway', async () => {
  // Where the receiver will live, down for now.
  const probe = await startWebhookReceiver();
  const url = probe.url;
  const port = Number(new URL(url).port);
  await probe.close();

  const clock = new ManualClock(Date.now());
  gateway = await startAccessGateway(server, { clock, webhookUrl: url, extraYaml: storeYaml });
  const asked = await gateway.api<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
    connection: 'app',
    duration: '1h',
    reason: 'INC-7',
  });
  expect(asked.status).toBe(201);
  const requestId = asked.body.request.id;
  // The first attempt fails (connection refused) and the delivery waits on backoff in the store.
  await expect
    .poll(
      () =>
        ((gateway!.gw.gateway.store as SqliteStore).database.prepare('SELECT attempt FROM webhook_deliveries').pluck().get() as
          number | undefined) ?? 0,
      { message: 'the second delivery attempt to be stored' },
    )
    .toBe(2);
  await gateway.gw.close();
  gateway = undefined;

  receiver = await startWebhookReceiver({ port });
  const later = new ManualClock(clock.now() + 1000);
  gateway = await startAccessGateway(server, { clock: later, webhookUrl: url, extraYaml: storeYaml });
  // Its backoff (1s, doubling, with jitter) runs out on the new gateway's clock.
  later.advance(5_000);
  await expect.poll(() => receiver!.deliveries.length, { message: 'the receiver to get the delivery' }).toBe(1);
  const delivered = receiver.deliveries[0]!;
  expect(delivered.json.type).toBe('request.created');
  expect((delivered.json.request as { id: string }).id).toBe(requestId);
  expect(delivered.headers['x-jitgate-attempt']).toBe('2');
  await expect.poll(() => outboxSize(gateway!), { message: 'the outbox to empty' }).toBe(0);

  // Nothing of it is sent again later (the request's own expiry, 30m on, is a new event): delivered once.
  later.advance(3_600_000);
  await expect
    .poll(() => receiver!.deliveries.some((d) => d.json.type === 'request.expired'), { message: 'the request.expired webhook' })
    .toBe(true);
  expect(receiver.deliveries.filter((d) => d.json.type === 'request.created')).toHaveLength(1);
  expect(receiver.deliveries.filter((d) => d.headers['x-jitgate-delivery'] === delivered.headers['x-jitgate-delivery'])).toHaveLength(1);
});
