/**
 * A gateway whose backend passwords live in its own secret store (`password: secret:NAME`), as
 * rotation needs, with the API authenticated by fixed test bearers (`test:dave` is an admin,
 * `test:alice` is not) and the CLI run in-process against it. Test code only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { adminToken } from './admin-token.js';
import { runCli } from '../../src/cli/program.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import type { Clock } from '../../src/core/clock.js';
import type { Identity } from '../../src/core/types.js';
import { SecretStore } from '../../src/credentials/secret-store.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

export const MASTER_KEY = '5c'.repeat(32);

const PEOPLE: Record<string, Identity> = {
  dave: { user: 'dave', groups: ['admins'], kind: 'human', via: 'test' },
  alice: { user: 'alice', groups: ['engineering'], kind: 'human', via: 'test' },
};

export interface RotationGateway {
  gateway: Gateway;
  config: GatewayConfig;
  dataDir: string;
  httpUrl: string;
  /** host and port of a listener. */
  listener(protocol: 'postgres' | 'mysql' | 'redis'): { host: string; port: number };
  /** A token for `user` on `connection` under an admin-issued grant. */
  token(connection: string, user?: string): Promise<string>;
  api<T = Record<string, unknown>>(who: 'dave' | 'alice', method: string, path: string): Promise<{ status: number; body: T }>;
  /** `jitgate ARGS` in-process as `who`. */
  cli(who: 'dave' | 'alice', args: string[]): Promise<{ code: number; out: string; err: string }>;
  /** Audit entries of `type` about `connection`, oldest first. */
  audited(type: string, connection: string): Promise<Array<{ actor: string; data: Record<string, unknown> }>>;
  /** Stops the gateway; the data directory stays when `keepData` (a restart on the same store). */
  close(keepData?: boolean): Promise<void>;
}

export interface RotationGatewayOptions {
  /** Connections as YAML flow mappings. */
  connections: string[];
  /** Secret store contents before the gateway starts (only on a fresh data directory). */
  secrets?: Record<string, string>;
  listeners: Array<'postgres' | 'mysql' | 'redis'>;
  clock?: Clock;
  /** Reuse a data directory (a restart). */
  dataDir?: string;
  /** More environment for `env:` references. */
  env?: Record<string, string>;
}

export async function startRotationGateway(o: RotationGatewayOptions): Promise<RotationGateway> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'jitgate-rotation-'));
  const listen = (p: 'postgres' | 'mysql' | 'redis') => (o.listeners.includes(p) ? `{ host: 127.0.0.1, port: 0 }` : '{ enabled: false }');
  const yaml = `
development: true
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: ${listen('postgres')}
${o.listeners.includes('mysql') ? `  mysql: ${listen('mysql')}\n` : ''}${o.listeners.includes('redis') ? `  redis: ${listen('redis')}\n` : ''}auth: { tokenUse: grant }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
shutdown: { drainTimeout: 2s }
connections:
${o.connections.map((c) => `  - ${c}\n`).join('')}`;
  const config = parseConfig(yaml, 'test.yaml', dataDir);
  if (o.secrets) {
    const store = openSqliteStore(config.store.path);
    const secrets = new SecretStore(store, { masterKey: Buffer.from(MASTER_KEY, 'hex') });
    for (const [name, value] of Object.entries(o.secrets)) await secrets.set(name, value);
    void store.close();
  }
  const logger = createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' });
  const gateway = await startGateway(config, {
    env: { ...o.env, JITGATE_MASTER_KEY: MASTER_KEY },
    logger,
    ...(o.clock ? { clock: o.clock } : {}),
  });
  gateway.router.setAuthenticator((req) => {
    const m = /^Bearer test:(\w+)$/.exec(req.headers.authorization ?? '');
    return m ? (PEOPLE[m[1]!] ?? null) : null;
  });
  gateway.access.setAdminCheck((i) => i.groups.includes('admins'));
  const now = () => (o.clock ? o.clock.now() : Date.now());
  const httpUrl = gateway.addresses.http;
  return {
    gateway,
    config,
    dataDir,
    httpUrl,
    listener(protocol) {
      const address = gateway.addresses[protocol]!;
      const i = address.lastIndexOf(':');
      return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
    },
    token: async (connection, user = 'alice') => (await adminToken(gateway, { user, connection, ttlMs: 3 * 86_400_000, now: now() })).token,
    async api(who, method, path) {
      const res = await fetch(httpUrl + path, { method, headers: { authorization: `Bearer test:${who}` } });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as never };
    },
    async cli(who, args) {
      let out = '';
      let err = '';
      const code = await runCli(args, {
        out: (t) => void (out += t),
        err: (t) => void (err += t),
        stdin: Readable.from([]),
        env: { JITGATE_URL: httpUrl, JITGATE_TOKEN: `test:${who}`, XDG_CONFIG_HOME: join(dataDir, 'cli-config') },
        cwd: dataDir,
        now,
      });
      return { code, out, err };
    },
    audited: async (type, connection) =>
      (await gateway.audit.about(connection)).filter((e) => e.type === type).map((e) => ({ actor: e.actor, data: e.data })),
    async close(keepData = false) {
      await gateway.close();
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
