/**
 * A jitgate gateway per test suite, configured from YAML like a real deployment, in front of a
 * private PostgreSQL from ./pg-server.ts: one connection per backend auth method.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminToken } from './admin-token.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import type { Clock } from '../../src/core/clock.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';
import type { PgServer } from './pg-server.js';

export interface TestGateway {
  gateway: Gateway;
  config: GatewayConfig;
  host: string;
  port: number;
  httpUrl: string;
  dataDir: string;
  /** A fresh access token for user on connection (default: alice on "app"); groups as the admin states them (default: none). */
  token(opts?: { user?: string; connection?: string; ttlMs?: number; now?: number; groups?: string[] }): Promise<string>;
  /** libpq connection string through the gateway. */
  dsn(opts: { user?: string; connection?: string; sslmode?: string; extra?: string }): string;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** YAML lines appended under the top level (e.g. auth/tls overrides). */
  extraYaml?: string;
  /** Injected clock for token expiry. */
  now?: () => number;
  /** Injected clock for grants, tokens and their timers (e.g. a ManualClock); `now` follows it. */
  clock?: Clock;
  /** Runs before the gateway starts, e.g. to write files the config refers to (relative to dataDir). */
  beforeStart?: (dataDir: string) => void;
  drainTimeout?: string;
  /** More connections, as YAML flow mappings (e.g. `{ name: x, host: ..., credentials: {...} }`). */
  extraConnections?: string[];
  /** Adjusts the parsed config before the gateway starts (e.g. the development IdP, which no YAML can set). */
  configure?: (config: GatewayConfig) => void;
  /** More environment for the gateway (e.g. JITGATE_MASTER_KEY). */
  env?: Record<string, string>;
}

export async function startTestGateway(pg: PgServer, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-test-'));
  const u = pg.users;
  const yaml = `
development: true
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
shutdown: { drainTimeout: ${options.drainTimeout ?? '2s'} }
connections:
  - { name: app, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }
  - { name: app-md5, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.md5.user}, password: env:PG_MD5, tls: { mode: disable } }
  - { name: app-plain, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.plain.user}, password: env:PG_PLAIN, tls: { mode: require } }
  - { name: app-trust, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.trust.user}, tls: { mode: prefer } }
  - { name: app-tls, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.tls.user}, password: env:PG_TLS, tls: { mode: verify-full, ca: ${pg.caPath}, servername: localhost } }
  - { name: app-tls-plain, host: 127.0.0.1, port: ${pg.port}, database: app, user: ${u.tls.user}, password: env:PG_TLS, tls: { mode: disable } }
${(options.extraConnections ?? []).map((c) => `  - ${c}\n`).join('')}${options.extraYaml ?? ''}
`;
  options.beforeStart?.(dataDir);
  const config = parseConfig(yaml, 'test.yaml', dataDir);
  options.configure?.(config);
  const env = {
    PG_SCRAM: u.scram.password,
    PG_MD5: u.md5.password,
    PG_PLAIN: u.plain.password,
    PG_TLS: u.tls.password,
    ...options.env,
  };
  const logger = createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' });
  const gateway = await startGateway(config, { env, logger, now: options.now, clock: options.clock });
  const clockNow = options.now ?? (options.clock ? () => options.clock!.now() : Date.now);
  const [host, portText] = splitAddress(gateway.addresses.postgres!);
  const port = Number(portText);
  return {
    gateway,
    config,
    host,
    port,
    httpUrl: gateway.addresses.http,
    dataDir,
    // As `jitgate token --user` on the gateway host: an admin-issued grant and a token under it.
    token: async (o = {}) =>
      (
        await adminToken(gateway, {
          user: o.user ?? 'alice',
          connection: o.connection ?? 'app',
          ttlMs: o.ttlMs ?? 3_600_000,
          now: o.now ?? clockNow(),
          groups: o.groups ?? [],
        })
      ).token,
    dsn: (o) =>
      `host=${host} port=${port} user=${o.user ?? 'alice'} dbname=${o.connection ?? 'app'} sslmode=${o.sslmode ?? 'disable'} ${o.extra ?? ''}`,
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), address.slice(i + 1)];
}
