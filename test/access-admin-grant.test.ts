/**
 * Admin-issued grants keep the person's groups: a real OpenID Provider process, a gateway started from
 * a config file like a real deployment, a private PostgreSQL, the real `jitgate token --user` code
 * (runCli in-process, reading the same config file) and the real psql.
 *
 * frank is in `contractors`, and a masking rule applies to contractors only. A token an admin issues
 * for frank must open sessions with frank's groups, so psql sees masked values; a grant whose groups
 * nobody knows is refused instead of opening sessions with "no groups".
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/log.js';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { loadConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { ScriptedBrowser } from './support/browser.js';
import { startTestIdp, type TestIdp } from './support/oidc-idp.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { collect } from './support/collect.js';

const AUDIENCE = 'https://jitgate.test';
const GATEWAY_CLIENT = { clientId: 'jitgate', clientSecret: randomBytes(24).toString('base64url') };
const USERS = [
  { user: 'frank', password: 'frank-pw', groups: ['contractors'] },
  { user: 'erin', password: 'erin-pw', groups: ['engineering'] },
];

const work = mkdtempSync(join(tmpdir(), 'jitgate-admin-grant-'));
const configPath = join(work, 'jitgate.yaml');
let pgServer: PgServer;
let idp: TestIdp;
let gateway: Gateway;
let url: string;
let pgPort: number;

beforeAll(async () => {
  [pgServer, idp] = await Promise.all([startPostgres(), startTestIdp({ users: USERS, gatewayClient: GATEWAY_CLIENT, audience: AUDIENCE })]);
  writeFileSync(join(work, 'oidc-secret'), GATEWAY_CLIENT.clientSecret, { mode: 0o600 });
  writeFileSync(join(work, 'pg-secret'), pgServer.users.scram.password, { mode: 0o600 });
  writeFileSync(
    configPath,
    `
development: true
dataDir: ${join(work, 'data')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
connections:
  - { name: app, host: 127.0.0.1, port: ${pgServer.port}, database: app, user: ${pgServer.users.scram.user}, password: file:${join(work, 'pg-secret')}, tls: { mode: disable } }
identities:
  oidc:
    - name: corp
      issuer: ${idp.issuer}
      clientId: ${GATEWAY_CLIENT.clientId}
      clientSecret: file:${join(work, 'oidc-secret')}
      audience: ${AUDIENCE}
      scopes: [openid, profile, email, groups, offline_access]
  admins: { groups: [admins] }
masking:
  rules:
    - name: contractors-see-no-payload
      connections: [app]
      groups: [contractors]
      columns:
        items.payload: redact
`,
  );
  gateway = await startGateway(await loadConfig(configPath), {
    logger: createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' }),
  });
  url = gateway.addresses.http;
  pgPort = Number(gateway.addresses.postgres!.split(':').at(-1));
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await idp?.close();
  await pgServer?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** A browser sign-in (PKCE through the API), as `jitgate login` does: the gateway records it. */
async function signIn(user: string, password: string): Promise<void> {
  const verifier = randomBytes(32).toString('base64url');
  const redirectUri = 'http://127.0.0.1:9/callback';
  const post = async (path: string, body: unknown) => {
    const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  const start = await post('/api/auth/login/start', {
    flow: 'pkce',
    redirectUri,
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
  });
  expect(start.status).toBe(200);
  const browser = new ScriptedBrowser({ stopAt: (u) => u.startsWith(redirectUri) });
  const back = new URL((await browser.submit(await browser.open(start.body.authorizationUrl!), { username: user, password })).url);
  const done = await post('/api/auth/token', {
    grantType: 'authorization_code',
    loginId: start.body.loginId,
    code: back.searchParams.get('code'),
    codeVerifier: verifier,
    iss: back.searchParams.get('iss'),
  });
  expect(done.status).toBe(200);
}

/** `jitgate token --config FILE ...` in-process, as an admin on the gateway host. */
async function adminCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env: { HOME: work, XDG_CONFIG_HOME: join(work, '.config') },
    cwd: work,
    now: Date.now,
  };
  const code = await runCli([...args, '--config', configPath], io);
  return { code, out, err };
}

function payloadAs(user: string, token: string) {
  return psql(`host=127.0.0.1 port=${pgPort} user=${user} dbname=app sslmode=disable`, token, [
    '-At',
    '-c',
    'select payload from items where id = 1',
  ]);
}

async function grantAudit(grantUser: string) {
  const audit = await AuditLog.open((gateway.store as SqliteStore).sql);
  return (await collect(audit.entries())).filter((e) => e.type === 'access.grant.created' && e.data.user === grantUser);
}

describe('admin-issued grants carry the person’s groups', { timeout: 60_000 }, () => {
  it('without a sign-in on record or stated groups, the token is refused with how to state them', async () => {
    const r = await adminCli(['token', '--user', 'frank', '--connection', 'app']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('the gateway has no sign-in on record for "frank"');
    expect(r.err).toContain('--groups GROUP[,GROUP...]');
    expect(await grantAudit('frank')).toEqual([]);
  });

  it('from the last sign-in: frank’s sessions are masked as a contractor’s, and the grant is audited', async () => {
    await signIn('frank', 'frank-pw');
    const r = await adminCli(['token', '--user', 'frank', '--connection', 'app']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('groups: contractors (from their sign-in at');
    const token = r.out.trim();

    const seen = await payloadAs('frank', token);
    expect(seen.code, seen.stderr).toBe(0);
    expect(seen.stderr).toContain('masked columns: payload (rule contractors-see-no-payload');
    expect(seen.stdout.trim()).not.toBe('first item');
    expect(seen.stdout.trim()).not.toBe('');

    expect(await grantAudit('frank')).toMatchObject([
      {
        actor: expect.stringMatching(/^local-admin:/),
        data: { groups: ['contractors'], groupsFrom: { kind: 'sign-in', issuer: 'corp' }, connection: 'app' },
      },
    ]);
  });

  it('stated with --groups (audited as stated); a person outside contractors sees clear values', async () => {
    const stated = await adminCli(['token', '--user', 'gina', '--connection', 'app', '--groups', 'contractors,analysts']);
    expect(stated.code, stated.err).toBe(0);
    expect((await payloadAs('gina', stated.out.trim())).stdout.trim()).not.toBe('first item');
    expect(await grantAudit('gina')).toMatchObject([{ data: { groups: ['analysts', 'contractors'], groupsFrom: { kind: 'stated' } } }]);

    await signIn('erin', 'erin-pw');
    const erin = await adminCli(['token', '--user', 'erin', '--connection', 'app']);
    expect(erin.code, erin.err).toBe(0);
    expect((await payloadAs('erin', erin.out.trim())).stdout.trim()).toBe('first item');

    const none = await adminCli(['token', '--user', 'hank', '--connection', 'app', '--no-groups']);
    expect(none.code, none.err).toBe(0);
    expect(await grantAudit('hank')).toMatchObject([{ data: { groups: [], groupsFrom: { kind: 'stated' } } }]);

    const empty = await adminCli(['token', '--user', 'hank', '--connection', 'app', '--groups', ' , ']);
    expect(empty).toMatchObject({ code: 1, out: '' });
    expect(empty.err).toContain('--groups: name at least one group');
  });
});
