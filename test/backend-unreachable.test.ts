/**
 * A backend that cannot be reached, as each protocol's client sees it: the gateway's own words
 * (`backend_unavailable` in the protocol's format), never the socket's message, which names the
 * backend's address and port. That text belongs in the gateway's log. No backend runs here: every
 * connection points at a port nothing listens on.
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

let gateway: Gateway;
let dataDir: string;
let closedPort: number;

/** A port that was free a moment ago: bound, then released. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  closedPort = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), 'jitgate-unreachable-'));
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
  - { name: pg-down, type: postgres, host: 127.0.0.1, port: ${closedPort}, database: app, user: app, password: env:PW, tls: { mode: disable } }
  - { name: my-down, type: mysql, host: 127.0.0.1, port: ${closedPort}, database: app, user: app, password: env:PW, tls: { mode: disable } }
  - { name: redis-down, type: redis, host: 127.0.0.1, port: ${closedPort}, user: app, password: env:PW, tls: { mode: disable } }
`;
  gateway = await startGateway(parseConfig(yaml, 'test.yaml', dataDir), {
    env: { PW: 'not-used-the-backend-is-down' },
    logger: createLogger({ level: 'silent' }),
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

/** What the socket said (`connect ECONNREFUSED 127.0.0.1:<port>`) stays out of what the client reads. */
function expectNoSocketText(seen: string): void {
  expect(seen).not.toContain(String(closedPort));
  expect(seen).not.toContain('127.0.0.1');
  expect(seen).not.toMatch(/connect ECONNREFUSED/);
}

describe('a backend that cannot be reached', () => {
  it('PostgreSQL: 08006 in the gateway’s words, no backend address', async () => {
    const { host, port } = hostPort(gateway.addresses.postgres!);
    const c = new pg.Client({ host, port, user: 'alice', database: 'pg-down', password: await token('pg-down') });
    const err = await c.connect().then(
      () => undefined,
      (e: Error & { code?: string; detail?: string }) => e,
    );
    await c.end().catch(() => undefined);
    expect(err?.code).toBe('08006');
    expect(err?.message).toBe('could not connect to backend for connection "pg-down"');
    expectNoSocketText(`${err?.message} ${err?.detail ?? ''}`);
  });

  it('MySQL: 1105 in the gateway’s words, no backend address', async () => {
    const { host, port } = hostPort(gateway.addresses.mysql!);
    const err = await mysql.createConnection({ host, port, user: 'alice', password: await token('my-down'), database: 'my-down' }).then(
      async (c) => {
        await c.end();
        return undefined;
      },
      (e: Error & { errno?: number }) => e,
    );
    expect(err?.errno).toBe(1105);
    expect(err?.message).toMatch(/^connection "my-down": cannot reach the backend/);
    expectNoSocketText(err?.message ?? '');
  });

  it('Redis: ERR in the gateway’s words, no backend address', async () => {
    const { host, port } = hostPort(gateway.addresses.redis!);
    // Raw RESP: the AUTH reply as sent (clients turn a refused login into their own message).
    const auth = await token('redis-down');
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
      s.write(`AUTH alice@redis-down ${auth}\r\n`);
    });
    expect(reply).toMatch(/^-ERR jitgate could not connect to the Redis backend of "redis-down"/);
    expectNoSocketText(reply);
  });
});
