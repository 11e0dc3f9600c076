/**
 * A jitgate gateway per test suite in front of a private Redis (./redis-server.ts): the Redis
 * listener on an ephemeral port, connection "cache" with the gateway's ACL user, no PostgreSQL.
 * Also the real redis-cli, run with a bounded time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { adminToken } from './admin-token.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';
import type { RedisServer } from './redis-server.js';

export interface RedisTestGateway {
  gateway: Gateway;
  config: GatewayConfig;
  host: string;
  port: number;
  dataDir: string;
  /** A fresh access token (default: alice on "cache"). */
  token(opts?: { user?: string; connection?: string; ttlMs?: number }): Promise<string>;
  /** A token and the id of the admin-issued grant behind it. */
  issue(opts?: { user?: string; connection?: string; ttlMs?: number }): Promise<{ token: string; grantId: string }>;
  close(): Promise<void>;
}

export interface RedisGatewayOptions {
  /** YAML appended at the top level (guardrails, recording, ...). */
  extraYaml?: string;
  /** More connections as YAML flow mappings. */
  extraConnections?: string[];
  /** Connection options of "cache" inside its flow mapping (e.g. `credentials: {...}`). */
  cacheOptions?: string;
  development?: boolean;
}

export async function startRedisGateway(redis: RedisServer, options: RedisGatewayOptions = {}): Promise<RedisTestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-redis-test-'));
  const gw = redis.users.gateway;
  const yaml = `
development: ${options.development ?? true}
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
  redis: { host: 127.0.0.1, port: 0 }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
shutdown: { drainTimeout: 2s }
connections:
  - { name: cache, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${gw.user}, password: env:REDIS_GW, tls: { mode: disable }${options.cacheOptions ? `, ${options.cacheOptions}` : ''} }
${(options.extraConnections ?? []).map((c) => `  - ${c}\n`).join('')}${options.extraYaml ?? ''}
`;
  const config = parseConfig(yaml, 'test.yaml', dataDir);
  const logger = createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' });
  const gateway = await startGateway(config, { env: { REDIS_GW: gw.password }, logger });
  const address = gateway.addresses.redis!;
  const i = address.lastIndexOf(':');
  // As `jitgate token --user` on the gateway host: an admin-issued grant and a token under it.
  const issue = (o: { user?: string; connection?: string; ttlMs?: number; groups?: string[] }) =>
    adminToken(gateway, {
      user: o.user ?? 'alice',
      connection: o.connection ?? 'cache',
      ttlMs: o.ttlMs ?? 3_600_000,
      groups: o.groups ?? [],
    });
  return {
    gateway,
    config,
    host: address.slice(0, i),
    port: Number(address.slice(i + 1)),
    dataDir,
    token: async (o = {}) => (await issue(o)).token,
    issue: async (o = {}) => {
      const t = await issue(o);
      return { token: t.token, grantId: t.grant.id };
    },
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real redis-cli with `args` (and optional stdin); killed after `timeoutMs`. */
export function redisCli(
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Clients the Redis server has blocked in a command (BLPOP ...), asked of the server itself (as its
 * `default` user): what a test waits for before it pushes the data a blocked command waits for.
 */
export async function blockedClients(redis: RedisServer): Promise<number> {
  const admin = new Redis({
    host: '127.0.0.1',
    port: redis.port,
    password: redis.users.default.password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await admin.connect();
    return Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
  } finally {
    admin.disconnect();
  }
}
