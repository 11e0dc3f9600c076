/**
 * A jitgate gateway per MySQL test suite, configured from YAML like a real deployment, in front of
 * a private MariaDB (./mysql-server.ts). Connections: `app` (stored native-password credential,
 * backend TLS verify-full), `app-plain` (same user, no backend TLS); `extraConnections` add more.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminToken } from './admin-token.js';
import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { startGateway, type Gateway } from '../../src/main.js';
import { createLogger } from '../../src/obs/log.js';
import type { MariadbServer } from './mysql-server.js';

export interface MysqlTestGateway {
  gateway: Gateway;
  config: GatewayConfig;
  host: string;
  port: number;
  dataDir: string;
  token(opts?: { user?: string; connection?: string; ttlMs?: number; now?: number }): Promise<string>;
  /** As token(), with the id of the grant it was issued under. */
  issue(opts?: { user?: string; connection?: string; ttlMs?: number; now?: number }): Promise<{ token: string; grantId: string }>;
  close(): Promise<void>;
}

export interface MysqlTestGatewayOptions {
  extraYaml?: string;
  extraConnections?: string[];
  /** Client TLS required (default: development mode, TLS optional). */
  tlsRequired?: boolean;
  now?: () => number;
  /** More environment for secret references (env:NAME). */
  env?: Record<string, string>;
}

export async function startMysqlTestGateway(my: MariadbServer, options: MysqlTestGatewayOptions = {}): Promise<MysqlTestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-mysql-test-'));
  const level = process.env.JITGATE_TEST_LOG ?? 'silent';
  const yaml = `
development: ${options.tlsRequired ? 'false' : 'true'}
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
  mysql: { host: 127.0.0.1, port: 0 }
log: { level: ${level} }
shutdown: { drainTimeout: 2s }
connections:
  - { name: app, type: mysql, host: 127.0.0.1, port: ${my.port}, database: app, user: ${my.users.native.user}, password: env:MY_NATIVE, tls: { mode: verify-full, ca: ${my.caPath}, servername: localhost } }
  - { name: app-plain, type: mysql, host: 127.0.0.1, port: ${my.port}, database: app, user: ${my.users.native.user}, password: env:MY_NATIVE, tls: { mode: disable } }
${(options.extraConnections ?? []).map((c) => `  - ${c}\n`).join('')}${options.extraYaml ?? ''}
`;
  const config = parseConfig(yaml, 'test.yaml', dataDir);
  const env = { MY_NATIVE: my.users.native.password, MY_ADMIN: my.users.admin.password, ...options.env };
  const logger = createLogger({ level: level as 'silent' });
  const gateway = await startGateway(config, { env, logger, now: options.now });
  const issue = (o: { user?: string; connection?: string; ttlMs?: number; now?: number; groups?: string[] }) =>
    adminToken(gateway, {
      user: o.user ?? 'alice',
      connection: o.connection ?? 'app',
      ttlMs: o.ttlMs ?? 3_600_000,
      now: o.now ?? (options.now ?? Date.now)(),
      groups: o.groups ?? [],
    });
  const address = gateway.addresses.mysql!;
  const i = address.lastIndexOf(':');
  return {
    gateway,
    config,
    host: address.slice(0, i),
    port: Number(address.slice(i + 1)),
    dataDir,
    token: async (o = {}) => (await issue(o)).token,
    issue: async (o = {}) => {
      const { token, grantId } = await issue(o);
      return { token, grantId };
    },
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the mariadb command-line client through the gateway: the token in MYSQL_PWD (never on the
 * command line), SQL on -e. `args` are extra options (e.g. --ssl, --table).
 */
export function mysqlCli(
  gw: { host: string; port: number },
  o: { user?: string; token: string; database?: string; sql: string; args?: string[]; timeoutMs?: number },
): Promise<CliResult> {
  const args = [
    '--no-defaults',
    `--host=${gw.host}`,
    `--port=${gw.port}`,
    `--user=${o.user ?? 'alice'}`,
    '--batch',
    ...(o.args ?? []),
    '-e',
    o.sql,
    ...(o.database === '' ? [] : [o.database ?? 'app']),
  ];
  return new Promise((resolve) => {
    execFile(
      'mariadb',
      args,
      { env: { ...process.env, MYSQL_PWD: o.token }, timeout: o.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
