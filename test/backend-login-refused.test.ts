/**
 * A backend that refuses the gateway's own login, as each protocol's client sees it: the gateway's
 * words and the backend's error code, never the backend's text, which names the gateway's backend
 * user and host ("Access denied for user 'x'@'localhost'", "role "x" does not exist"). That text
 * goes to the gateway's log. Every connection here logs in as a backend user that does not exist.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';

/** The backend user the gateway logs in as; no backend knows it. */
const BACKEND_USER = 'jitgate_refused_login';

let gateway: Gateway;
let dataDir: string;
const logLines: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'jitgate-login-refused-'));
  const yaml = `
development: true
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
  mysql: { host: 127.0.0.1, port: 0 }
  redis: { host: 127.0.0.1, port: 0 }
log: { level: silent }
connections:
  - { name: pg-refuses, type: postgres, host: 127.0.0.1, port: 5432, database: postgres, user: ${BACKEND_USER}, password: env:PW, tls: { mode: disable } }
  - { name: my-refuses, type: mysql, host: 127.0.0.1, port: 3306, database: mysql, user: ${BACKEND_USER}, password: env:PW, tls: { mode: disable } }
  - { name: redis-refuses, type: redis, host: 127.0.0.1, port: 6379, user: ${BACKEND_USER}, password: env:PW, tls: { mode: disable } }
`;
  gateway = await startGateway(parseConfig(yaml, 'test.yaml', dataDir), {
    env: { PW: 'not-the-password' },
    logger: createLogger({ level: 'warn', destination: { write: (line: string) => void logLines.push(line) } }),
  });
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function token(connection: string): Promise<string> {
  return (await adminToken(gateway, { connection })).token;
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** The backend's words name the gateway's backend user (and its host); the client reads neither. */
function expectNoBackendText(seen: string): void {
  expect(seen).not.toContain(BACKEND_USER);
  expect(seen).not.toMatch(/localhost|127\.0\.0\.1/);
  expect(seen).not.toMatch(/Access denied|does not exist for|invalid username-password/);
}

/** The gateway's log has what the client was not shown. */
function expectLogged(connection: string, text: RegExp): void {
  const line = logLines.find((l) => l.includes(`"connection":"${connection}"`) && text.test(l));
  expect(line, `a log line for ${connection} matching ${text}`).toBeDefined();
}

describe("a backend that refuses the gateway's login", () => {
  it("PostgreSQL: 08006 with the gateway's reason, no backend user", async () => {
    const { host, port } = hostPort(gateway.addresses.postgres!);
    const c = new pg.Client({ host, port, user: 'alice', database: 'pg-refuses', password: await token('pg-refuses') });
    const err = await c.connect().then(
      () => undefined,
      (e: Error & { code?: string; detail?: string }) => e,
    );
    await c.end().catch(() => undefined);
    expect(err?.code).toBe('08006');
    expect(err?.message).toBe('could not connect to backend for connection "pg-refuses"');
    expect(err?.detail).toBe("the backend rejected the gateway's credential for this connection");
    expectNoBackendText(`${err?.message} ${err?.detail ?? ''}`);
    expectLogged('pg-refuses', new RegExp(`28000: role .*${BACKEND_USER}.* does not exist`));
  });

  it("MySQL: 1105 with the backend's error number, not its message", async () => {
    const { host, port } = hostPort(gateway.addresses.mysql!);
    const err = await mysql
      .createConnection({ host, port, user: 'alice', password: await token('my-refuses'), database: 'my-refuses' })
      .then(
        async (c) => {
          await c.end();
          return undefined;
        },
        (e: Error & { errno?: number }) => e,
      );
    expect(err?.errno).toBe(1105);
    expect(err?.message).toBe(
      `connection "my-refuses": the backend refused the gateway's login: the credential for this connection was rejected (1045, 28000)`,
    );
    expectNoBackendText(err?.message ?? '');
    expectLogged('my-refuses', new RegExp(`Access denied for user '${BACKEND_USER}'`));
  });

  it("Redis: ERR with the backend's error code, not its message", async () => {
    const { host, port } = hostPort(gateway.addresses.redis!);
    // Raw RESP: the AUTH reply as sent (clients turn a refused login into their own message).
    const auth = await token('redis-refuses');
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host, port });
      let out = '';
      s.on('data', (d) => {
        out += d.toString('utf8');
        if (out.endsWith('\r\n')) {
          s.destroy();
          resolve(out);
        }
      });
      s.on('error', reject);
      s.write(`AUTH alice@redis-refuses ${auth}\r\n`);
    });
    expect(reply).toBe('-ERR jitgate could not log in to the Redis backend of "redis-refuses" (WRONGPASS)\r\n');
    expectNoBackendText(reply);
    expectLogged('redis-refuses', /WRONGPASS invalid username-password pair/);
  });
});
