/**
 * Webhook delivery against a real local HTTP receiver: signature verification, retries with backoff
 * on the injected clock (the receiver fails the first attempts), the Slack format, and that a slow
 * receiver never blocks the caller.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AccessEvent } from '../access/events.js';
import type { AccessRequest, GrantRecord } from '../access/repository.js';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { verifySignature, WebhookNotifier, type WebhookTarget } from './webhooks.js';

interface Hit {
  headers: http.IncomingHttpHeaders;
  body: string;
}

class Receiver {
  hits: Hit[] = [];
  /** Status for each attempt in turn; after the list, 200. `hang` never answers. */
  script: Array<number | 'hang'> = [];
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.hits.push({ headers: req.headers, body });
      const next = this.script.shift() ?? 200;
      if (next === 'hang') return;
      res.writeHead(next).end();
    });
  });
  url = '';
  async start() {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
  close() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

const SECRET = 'whsec-test-0123456789';
const H = 3_600_000;
let receiver: Receiver;
let clock: ManualClock;
let notifier: WebhookNotifier | undefined;

beforeEach(async () => {
  receiver = new Receiver();
  await receiver.start();
  clock = new ManualClock();
});
afterEach(async () => {
  notifier?.close();
  await receiver.close();
});

function hook(o: Partial<WebhookTarget> = {}): WebhookTarget {
  return {
    name: 'test',
    url: receiver.url,
    secret: SECRET,
    format: 'json',
    events: ['request', 'approval', 'denial', 'revocation', 'break_glass', 'expiry'],
    timeoutMs: 2000,
    maxAttempts: 4,
    initialBackoffMs: 1000,
    ...o,
  };
}

function start(webhooks: WebhookTarget[]) {
  notifier = new WebhookNotifier({ webhooks, clock, log: createLogger({ level: 'silent' }) });
  return notifier;
}

const request: AccessRequest = {
  id: '3f2a1b2c-0000-4000-8000-000000000001',
  user: 'alice',
  groups: ['engineering'],
  connection: 'prod',
  reason: 'INC-7 <urgent> & stuff',
  durationMs: H,
  breakGlass: true,
  state: 'granted',
  policy: 'eng',
  approverGroups: ['approvers'],
  approvalsRequired: 1,
  breakGlassAllowed: true,
  reasons: ['break_glass'],
  createdAt: Date.UTC(2026, 0, 1),
  expiresAt: Date.UTC(2026, 0, 1, 1),
  decidedAt: Date.UTC(2026, 0, 1),
  decidedBy: 'alice',
  decisionReason: null,
  grantId: 'g-1',
  approvals: [],
  escalation: null,
};
const grant: GrantRecord = {
  id: '9a8b7c6d-0000-4000-8000-000000000002',
  user: 'alice',
  groups: ['engineering'],
  connection: 'prod',
  reason: 'INC-7 <urgent> & stuff',
  requestId: request.id,
  approvedBy: ['alice'],
  breakGlass: true,
  policy: 'eng',
  issuedBy: null,
  createdAt: Date.UTC(2026, 0, 1),
  expiresAt: Date.UTC(2026, 0, 1, 1),
  revokedAt: null,
  revokedBy: null,
  revokeReason: null,
};
const breakGlass: AccessEvent = { type: 'break_glass.used', at: Date.UTC(2026, 0, 1), request, grant };

describe('webhooks', () => {
  it('delivers signed JSON the receiver can verify', async () => {
    start([hook()]).notify(breakGlass);
    await vi.waitFor(() => expect(receiver.hits, 'the receiver to be called').toHaveLength(1));
    const { headers, body } = receiver.hits[0]!;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-jitgate-event']).toBe('break_glass.used');
    expect(headers['x-jitgate-timestamp']).toBe(String(clock.now() / 1000));
    const sig = { signature: headers['x-jitgate-signature'] as string, timestamp: headers['x-jitgate-timestamp'] as string };
    expect(sig.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, sig, body, { nowMs: clock.now() })).toBe(true);
    // A changed body, another secret or a stale timestamp fail.
    expect(verifySignature(SECRET, sig, body.replace('alice', 'mallory'), { nowMs: clock.now() })).toBe(false);
    expect(verifySignature('other', sig, body, { nowMs: clock.now() })).toBe(false);
    expect(verifySignature(SECRET, sig, body, { nowMs: clock.now() + 10 * 60_000 })).toBe(false);
    const json = JSON.parse(body);
    expect(json).toMatchObject({
      type: 'break_glass.used',
      kind: 'break_glass',
      actor: 'alice',
      reason: 'INC-7 <urgent> & stuff',
      grant: { id: grant.id, breakGlass: true, expiresAt: '2026-01-01T01:00:00.000Z' },
      request: { id: request.id, connection: 'prod' },
    });
    expect(json.summary).toBe('BREAK-GLASS: alice took access to prod for 1h without approval: INC-7 <urgent> & stuff');
  });

  it('retries with exponential backoff on the injected clock until the receiver recovers', async () => {
    receiver.script = [503, 500, 'hang']; // the third attempt times out
    const n = start([hook({ timeoutMs: 300 })]);
    n.notify(breakGlass);
    await vi.waitFor(() => expect(receiver.hits, 'the first attempt').toHaveLength(1));
    expect(n.backlog).toBe(1);
    // Nothing happens until the clock moves: backoff is 1s, then 2s, then 4s (+ up to 10% jitter).
    // Kept: that nothing happens needs a moment of real time in which it could have.
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.hits).toHaveLength(1);
    for (const [attempt, wait] of [
      [2, 1100],
      [3, 2200],
      [4, 4400],
    ] as const) {
      await vi.waitFor(() => {
        clock.advance(wait); // harmless to repeat: each retry is armed once
        expect(receiver.hits, `attempt ${attempt} once the clock moved past its backoff`).toHaveLength(attempt);
      });
    }
    await vi.waitFor(() => expect(n.backlog, 'the outbox to empty').toBe(0));
    expect(receiver.hits.map((h) => h.headers['x-jitgate-attempt'])).toEqual(['1', '2', '3', '4']);
    // One delivery id across the attempts, each attempt signed afresh.
    expect(new Set(receiver.hits.map((h) => h.headers['x-jitgate-delivery'])).size).toBe(1);
    for (const h of receiver.hits) {
      expect(
        verifySignature(
          SECRET,
          { signature: h.headers['x-jitgate-signature'] as string, timestamp: h.headers['x-jitgate-timestamp'] as string },
          h.body,
          { nowMs: clock.now() },
        ),
      ).toBe(true);
    }
  });

  it('gives up after maxAttempts, and at once on a 4xx other than 408/429', async () => {
    receiver.script = [500, 500, 400];
    const n = start([hook({ maxAttempts: 2 })]);
    n.notify(breakGlass);
    await vi.waitFor(() => {
      clock.advance(1100);
      expect(receiver.hits, 'the second and last attempt').toHaveLength(2);
    });
    await vi.waitFor(() => expect(n.backlog, 'the outbox to empty').toBe(0));
    n.notify(breakGlass); // gets the 400
    await vi.waitFor(() => expect(receiver.hits, 'the 4xx attempt').toHaveLength(3));
    await vi.waitFor(() => expect(n.backlog, 'the outbox to empty').toBe(0));
    clock.advance(60_000);
    // Kept: that no retry follows needs a moment of real time in which one could have.
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.hits).toHaveLength(3);
  });

  it('never blocks the caller, even when the receiver hangs', async () => {
    receiver.script = ['hang', 'hang', 'hang'];
    const n = start([hook({ timeoutMs: 5000 })]);
    const began = performance.now();
    for (let i = 0; i < 3; i++) n.notify(breakGlass);
    expect(performance.now() - began).toBeLessThan(50);
    await vi.waitFor(() => expect(receiver.hits, 'three attempts').toHaveLength(3));
    n.close(); // aborts what is in flight; nothing retries afterwards
    await vi.waitFor(() => expect(n.backlog, 'the outbox to empty').toBe(0));
  });

  it('slack format: {"text": ...} with mrkdwn escaping; event filters apply', async () => {
    const n = start([hook({ format: 'slack', secret: undefined, events: ['break_glass'] })]);
    n.notify({ type: 'request.created', at: 0, request: { ...request, state: 'pending', breakGlass: false } }); // filtered out
    n.notify(breakGlass);
    await vi.waitFor(() => expect(receiver.hits, 'the receiver to be called').toHaveLength(1));
    expect(receiver.hits[0]!.headers['x-jitgate-signature']).toBeUndefined();
    expect(JSON.parse(receiver.hits[0]!.body)).toEqual({
      text: ':rotating_light: jitgate: BREAK-GLASS: alice took access to prod for 1h without approval: INC-7 &lt;urgent&gt; &amp; stuff',
    });
  });
});
