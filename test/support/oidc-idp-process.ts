/**
 * A real OpenID Provider in its own process, for the identity tests: oidc-provider (through the
 * same dev-idp module the embedded default uses) on 127.0.0.1, with two issuers on one port:
 *   /idp    the issuer the gateway under test trusts
 *   /other  a second, untrusted issuer (tokens from it must be refused)
 * Configured by the JSON in $TEST_IDP_CONFIG; reports {type:'ready', port} over IPC.
 * IPC {type:'rotate', id}: replaces /idp's signing key with a new one, keeping its state (sessions,
 * grants, refresh tokens), and answers {type:'rotated', id, kid}.
 * IPC {type:'setGroups', id, user, groups}: changes a user's groups at the IdP (groups: null removes
 * the user, as deprovisioning would); answers {type:'done', id}.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDevIdp, generateSigningKey, type DevIdp, type DevIdpClient, type DevIdpUser } from '../../src/identity/dev-idp.js';
import { DevIdpStore } from '../../src/identity/dev-idp-store.js';

interface Config {
  users: DevIdpUser[];
  gatewayClient: DevIdpClient;
  agentClients: DevIdpClient[];
  audience: string;
  extraAudiences: string[];
  accessTokenSeconds: number;
}

const config = JSON.parse(process.env.TEST_IDP_CONFIG ?? '{}') as Config;
const idps = new Map<string, DevIdp>();

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  const mount = [...idps.keys()].find((m) => path === m || path.startsWith(`${m}/`));
  if (!mount) {
    res.writeHead(404).end();
    return;
  }
  idps
    .get(mount)!
    .handle(req, res)
    .catch((err: unknown) => {
      console.error('idp error', err);
      if (!res.headersSent) res.writeHead(500).end();
    });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const port = (server.address() as AddressInfo).port;
const base = `http://127.0.0.1:${port}`;
const store = new DevIdpStore();

const build = async (mount: string, keyStore: DevIdpStore) =>
  createDevIdp({
    issuer: `${base}${mount}`,
    users: config.users,
    gatewayClient: config.gatewayClient,
    agentClients: config.agentClients,
    audience: config.audience,
    extraAudiences: config.extraAudiences,
    signingKeys: [await generateSigningKey()],
    ttl: { accessTokenSeconds: config.accessTokenSeconds, clientCredentialsSeconds: config.accessTokenSeconds },
    store: keyStore,
  });

idps.set('/idp', await build('/idp', store));
idps.set('/other', await build('/other', new DevIdpStore()));

process.on('message', (m: { type: string; id: number; user?: string; groups?: string[] | null }) => {
  if (m.type === 'setGroups') {
    const i = config.users.findIndex((u) => u.user === m.user);
    // The providers read these objects on every token; a removed user is an unknown account.
    if (m.groups === null) config.users[i]!.user = `${m.user}-removed-${Date.now()}`;
    else config.users[i]!.groups = m.groups!;
    process.send!({ type: 'done', id: m.id });
    return;
  }
  if (m.type !== 'rotate') return;
  void (async () => {
    const next = await build('/idp', store);
    idps.set('/idp', next);
    const jwks = (await (await fetch(`${base}/idp/jwks`)).json()) as { keys: Array<{ kid: string }> };
    process.send!({ type: 'rotated', id: m.id, kid: jwks.keys[0]!.kid });
  })();
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready', port });
