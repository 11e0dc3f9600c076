/**
 * The development identity provider, switched on by a configuration (`identities: { dev: true }`,
 * development mode only) as the embedded default does, mounted on the gateway's own HTTP port under
 * /dev-idp: the demo users sign in with `jitgate login` (password = user name) and get their demo
 * groups; the demo agent gets a service identity through client credentials; the printed hint is
 * right. A configuration without development mode is refused. An audience that is not a URI
 * (`audience: jitgate`, as in jitgate.example.yaml) works with the provider too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../src/cli/program.js';
import { parseConfig } from '../src/config/load.js';
import { signInHint } from '../src/demo/demo-identities.js';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { ScriptedBrowser } from './support/browser.js';

const work = mkdtempSync(join(tmpdir(), 'jitgate-dev-idp-'));
let gateway: Gateway;
const config = parseConfig(
  `development: true\ndataDir: ${work}\nlisteners: { http: { host: 127.0.0.1, port: 0 }, postgres: { enabled: false } }\n` +
    `identities: { dev: true, admins: { groups: [admins] } }\n`,
  'dev.yaml',
  work,
);

beforeAll(async () => {
  gateway = await startGateway(config, { logger: createLogger({ level: 'silent' }) });
});
afterAll(async () => {
  await gateway?.close();
  rmSync(work, { recursive: true, force: true });
});

it('signs the demo users in with jitgate login, and the demo agent with client credentials', { timeout: 60_000 }, async () => {
  const url = gateway.addresses.http;
  const hint = signInHint(url, config.identities, DEMO_USERS);
  expect(hint[0]).toBe(
    `Sign in: jitgate login --url ${url}   (or --device). Demo users: alice (engineer), bob (approver), carol (auditor), dave (admin), erin (on-call engineer); the password is the user name.`,
  );

  let out = '';
  let browsed: Promise<string> | undefined;
  const io = {
    out: (t: string) => void (out += t),
    err: (t: string) => {
      const m = /http\S+\/dev-idp\/auth\?\S+/.exec(t);
      if (m) {
        browsed = (async () => {
          const browser = new ScriptedBrowser();
          const page = await browser.open(m[0]);
          expect(page.html).toContain('The password is the user name.');
          return (await browser.submit(page, { username: 'dave', password: 'dave' })).html;
        })();
      }
    },
    stdin: Readable.from([]),
    env: { XDG_CONFIG_HOME: join(work, 'config'), JITGATE_NO_BROWSER: '1' },
    cwd: work,
    now: Date.now,
  };
  expect(await runCli(['login', '--url', url], io)).toBe(0);
  expect(await browsed).toContain('Signed in');
  expect(out).toContain('as dave (admins, platform)');

  // The demo agent: client credentials at the dev IdP's token endpoint, as printed.
  const agent = config.identities.devIdp!.agent;
  expect(hint[1]).toContain(`${url}/dev-idp/token with client id demo-agent, secret ${agent.clientSecret}`);
  const res = await fetch(`${url}/dev-idp/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${agent.clientId}:${agent.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  const { access_token: token } = (await res.json()) as { access_token: string };
  const me = await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  expect(await me.json()).toEqual({ user: 'svc:demo-agent', groups: ['agents'], kind: 'service', via: 'client-credentials', admin: false });
});

it('refuses the development identity provider outside development mode', () => {
  expect(() => parseConfig('identities: { dev: true }\n', 'prod.yaml', work)).toThrow(
    'prod.yaml:1:20: identities.dev: the development identity provider (demo users whose password is their name) runs only in development mode',
  );
  expect(parseConfig('identities: { dev: false }\n', 'prod.yaml', work).identities.devIdp).toBeUndefined();
});

it('issues tokens for an audience that is not a URI (audience: jitgate)', { timeout: 30_000 }, async () => {
  const { createDevIdp } = await import('../src/identity/dev-idp.js');
  const { createServer } = await import('node:http');
  const { decodeJwt } = await import('jose');
  const server = createServer((req, res) => void idp.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const agent = { clientId: 'agent', clientSecret: 'agent-secret' };
  const idp = await createDevIdp({
    issuer: `${base}/idp`,
    users: [],
    gatewayClient: { clientId: 'jitgate', clientSecret: 's' },
    agentClients: [agent],
    audience: 'jitgate',
  });
  try {
    const res = await fetch(`${base}/idp/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('agent:agent-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    const body = (await res.json()) as { access_token?: string; error_description?: string };
    expect(body.error_description).toBeUndefined();
    expect(decodeJwt(body.access_token!).aud).toBe('jitgate');
  } finally {
    server.close();
  }
});
