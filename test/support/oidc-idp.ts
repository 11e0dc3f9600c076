/**
 * Starts ./oidc-idp-process.ts as a child process (a real OpenID Provider, reached only over HTTP)
 * and offers the few things tests need: its issuer URLs, client-credentials tokens, key rotation.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DevIdpClient, DevIdpUser } from '../../src/identity/dev-idp.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface TestIdpOptions {
  users: DevIdpUser[];
  gatewayClient: DevIdpClient;
  agentClients?: DevIdpClient[];
  audience: string;
  extraAudiences?: string[];
  accessTokenSeconds?: number;
}

export interface TestIdp {
  /** The trusted issuer (/idp). */
  issuer: string;
  /** A second issuer on the same server that the gateway does not trust (/other). */
  otherIssuer: string;
  /** A client-credentials access token from `issuer` (or `from`), optionally for another resource. */
  clientCredentials(client: DevIdpClient, opts?: { resource?: string; from?: string }): Promise<string>;
  /** Replace the trusted issuer's signing key; resolves with the new key id. */
  rotateKeys(): Promise<string>;
  /** Change a user's groups at the IdP; null removes the user (deprovisioning). */
  setGroups(user: string, groups: string[] | null): Promise<void>;
  close(): Promise<void>;
}

export async function startTestIdp(options: TestIdpOptions): Promise<TestIdp> {
  const config = {
    users: options.users,
    gatewayClient: options.gatewayClient,
    agentClients: options.agentClients ?? [],
    audience: options.audience,
    extraAudiences: options.extraAudiences ?? [],
    accessTokenSeconds: options.accessTokenSeconds ?? 600,
  };
  const child: ChildProcess = fork(join(ROOT, 'test/support/oidc-idp-process.ts'), [], {
    execArgv: ['--import', TSX],
    env: { ...process.env, TEST_IDP_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolvePort, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the test IdP exited early (code ${code})`)));
    child.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'ready') resolvePort(m.port!);
    });
  });
  const base = `http://127.0.0.1:${port}`;
  let next = 0;
  /** One IPC request and its answer (matched by id). */
  const ask = (message: Record<string, unknown>) =>
    new Promise<{ kid?: string }>((resolveAnswer) => {
      const id = ++next;
      const onMessage = (m: { id?: number; kid?: string }) => {
        if (m.id !== id) return;
        child.off('message', onMessage);
        resolveAnswer(m);
      };
      child.on('message', onMessage);
      child.send({ ...message, id });
    });
  return {
    issuer: `${base}/idp`,
    otherIssuer: `${base}/other`,
    async clientCredentials(client, opts = {}) {
      const form = new URLSearchParams({ grant_type: 'client_credentials', ...(opts.resource ? { resource: opts.resource } : {}) });
      const res = await fetch(`${opts.from ?? `${base}/idp`}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: form.toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`client credentials refused: ${body.error}: ${body.error_description}`);
      return body.access_token;
    },
    rotateKeys: async () => (await ask({ type: 'rotate' })).kid!,
    setGroups: async (user, groups) => void (await ask({ type: 'setGroups', user, groups })),
    close: () =>
      new Promise<void>((resolveClose) => {
        if (child.exitCode !== null) return resolveClose();
        child.once('exit', () => resolveClose());
        child.kill('SIGTERM');
      }),
  };
}
