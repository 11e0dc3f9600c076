/**
 * A test gateway with access policies and people. Sign-in is not what these tests are about, so the
 * API authenticator is replaced by a fixed map of bearer tokens to identities (`Bearer test:<user>`);
 * the identity module's own tests cover real logins. Test code only.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../src/core/clock.js';
import type { Identity } from '../../src/core/types.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import type { PgServer } from './pg-server.js';

const person = (user: string, ...groups: string[]): Identity => ({ user, groups, kind: 'human', via: 'test' });

export const PEOPLE = {
  alice: person('alice', 'engineering'),
  bob: person('bob', 'engineering', 'approvers'),
  carol: person('carol', 'approvers'),
  dan: person('dan', 'approvers'),
  erin: person('erin', 'approvers'),
  frank: person('frank', 'dba'),
  mallory: person('mallory', 'marketing'),
  dave: person('dave', 'admins'),
} satisfies Record<string, Identity>;

export type Person = keyof typeof PEOPLE;

export const WEBHOOK_SECRET = 'test-webhook-secret-5f0c';

export interface AccessGateway {
  gw: TestGateway;
  /** Calls the API as `who`; resolves to status and parsed body. */
  api<T = Record<string, unknown>>(who: Person, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  bearer(who: Person): string;
}

export async function startAccessGateway(
  pg: PgServer,
  opts: { clock: Clock; webhookUrl?: string; extraYaml?: string },
): Promise<AccessGateway> {
  const hooks = opts.webhookUrl
    ? `notifications:
  webhooks:
    - { name: receiver, url: ${opts.webhookUrl}, secret: "file:webhook-secret", maxAttempts: 5, initialBackoff: 1s, timeout: 2s }
`
    : '';
  const gw = await startTestGateway(pg, {
    clock: opts.clock,
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers, dba], maxDuration: 4h, breakGlass: true, pendingExpiry: 30m }
  - name: md5-two-of-three
    connections: [app-md5]
    groups: [engineering]
    access: { approvers: [approvers], approvals: 2, maxDuration: 4h }
  - name: trust-for-everyone
    connections: [app-trust]
    groups: ["*"]
    access: { approval: auto, maxDuration: 8h, requireReason: false }
${hooks}${opts.extraYaml ?? ''}`,
    beforeStart: (dataDir) => writeFileSync(join(dataDir, 'webhook-secret'), WEBHOOK_SECRET + '\n', { mode: 0o600 }),
  });
  gw.gateway.router.setAuthenticator((req) => {
    const m = /^Bearer test:(\w+)$/.exec(req.headers.authorization ?? '');
    return m ? ((PEOPLE as Record<string, Identity>)[m[1]!] ?? null) : null;
  });
  gw.gateway.access.setAdminCheck((i) => i.groups.includes('admins'));
  const bearer = (who: Person) => `test:${who}`;
  return {
    gw,
    bearer,
    api: async (who, method, path, body) => {
      const res = await fetch(gw.httpUrl + path, {
        method,
        headers: { authorization: `Bearer ${bearer(who)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
  };
}
