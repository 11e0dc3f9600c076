/**
 * A gateway configured from YAML for any mix of listeners and connections (the protocol-specific
 * helpers beside it each assume one backend of their own): `listeners` and `connections` come
 * from the test, the rest is as the other test gateways have it. Tokens are issued as
 * `jitgate token --user` does, under an admin-issued grant.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminToken } from './admin-token.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';

export interface TokenOptions {
  user?: string;
  ttlMs?: number;
  /** When the grant and token were issued (in the past: expired already). */
  now?: number;
}

export interface GatewayWith {
  gateway: Gateway;
  /** Host and port of a listener. */
  address(listener: 'postgres' | 'mysql' | 'redis'): { host: string; port: number };
  /** A fresh token for `connection` (default user alice). */
  token(connection: string, options?: TokenOptions): Promise<string>;
  /** As token(), with the id of the grant behind it (to revoke). */
  issue(connection: string, options?: TokenOptions): Promise<{ token: string; grantId: string }>;
  close(): Promise<void>;
}

export async function startGatewayWith(o: {
  listeners: string;
  connections: string[];
  extraYaml?: string;
  env?: Record<string, string>;
}): Promise<GatewayWith> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-with-'));
  const level = process.env.JITGATE_TEST_LOG ?? 'silent';
  const yaml = `
development: true
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
${o.listeners}
log: { level: ${level} }
shutdown: { drainTimeout: 5s }
connections:
${o.connections.map((c) => `  - ${c}\n`).join('')}${o.extraYaml ?? ''}
`;
  const config = parseConfig(yaml, 'test.yaml', dataDir);
  const gateway = await startGateway(config, { env: o.env ?? {}, logger: createLogger({ level: level as 'silent' }) });
  const issue = async (connection: string, t: TokenOptions = {}) => {
    const issued = await adminToken(gateway, {
      user: t.user ?? 'alice',
      connection,
      ttlMs: t.ttlMs ?? 3_600_000,
      now: t.now ?? Date.now(),
    });
    return { token: issued.token, grantId: issued.grant.id };
  };
  return {
    gateway,
    address: (listener) => {
      const a = gateway.addresses[listener]!;
      const i = a.lastIndexOf(':');
      return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
    },
    token: async (connection, t) => (await issue(connection, t)).token,
    issue,
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
