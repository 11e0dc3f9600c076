/**
 * The gateway rotates its own MariaDB password (issue 17): `jitgate credentials rotate` while
 * mysql2 clients connect through the gateway over and over, with none failing; the old password
 * refused by the server afterwards; the server told only the password's hash (its general log holds
 * no cleartext); `credentials status` warning about a global privilege the sessions do not need.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SecretStore } from '../src/credentials/secret-store.js';
import { MASTER_KEY, startRotationGateway, type RotationGateway } from './support/rotation.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';

let server: MariadbServer;
let gw: RotationGateway;

beforeAll(async () => {
  server = await startMariadb();
  server.root("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;");
  gw = await startRotationGateway({
    listeners: ['mysql'],
    secrets: { 'shop-my': server.users.native.password },
    connections: [
      `{ name: shop, type: mysql, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.native.user}, password: secret:shop-my, tls: { mode: disable } }`,
    ],
  });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function directLogin(password: string): Promise<string> {
  try {
    const c = await mysql.createConnection({
      host: server.host,
      port: server.port,
      user: server.users.native.user,
      password,
      database: 'app',
    });
    await c.query('SELECT 1');
    await c.end();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('jitgate credentials rotate on MariaDB', () => {
  it('rotates while mysql2 clients reconnect through the gateway, with none failing', async () => {
    const old = server.users.native.password;
    const { host, port } = gw.listener('mysql');
    const connect = async () =>
      mysql.createConnection({
        host,
        port,
        user: 'alice',
        password: await gw.token('shop'),
        database: 'shop',
        ssl: { rejectUnauthorized: false },
      });
    const early = await connect();

    let rotated = false;
    let afterRotation = 0;
    const failures: string[] = [];
    let done = 0;
    // Four workers, each a fresh gateway session (and backend login) per query, a bounded number of times.
    const worker = async () => {
      for (let i = 0; i < 60; i++) {
        try {
          const c = await connect();
          const [rows] = await c.query('SELECT COUNT(*) AS n FROM items');
          expect(rows).toEqual([{ n: 3 }]);
          await c.end();
          done++;
          if (rotated) afterRotation++;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Promise.all([worker(), worker(), worker(), worker()]);
    await vi.waitFor(() => expect(done).toBeGreaterThan(30), { timeout: 60_000, interval: 20 });
    const r = await gw.cli('dave', ['credentials', 'rotate', 'shop']);
    rotated = true;
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    await workers;
    expect(failures).toEqual([]);
    expect(done).toBe(240);
    expect(afterRotation).toBeGreaterThan(0);

    // The session from before the rotation still has its backend connection.
    const [rows] = await early.query('SELECT name FROM items WHERE id = 1');
    expect(rows).toEqual([{ name: 'apple' }]);
    await early.end();

    expect(await directLogin(old)).toBe('ER_ACCESS_DENIED_ERROR');
    const stored = (await new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') }).get('shop-my'))!;
    expect(stored).not.toBe(old);
    expect(await directLogin(stored)).toBe('ok');
    // MariaDB was sent the hash (SET PASSWORD = '*…'), never the password.
    const general = server.root("SELECT argument FROM mysql.general_log WHERE argument LIKE 'SET PASSWORD%'");
    expect(general).toMatch(/^SET PASSWORD = '\*[0-9A-F]{40}'$/m);
    expect(server.root('SELECT argument FROM mysql.general_log')).not.toContain(stored);

    expect(await gw.audited('credentials.rotated', 'shop')).toEqual([
      {
        actor: 'dave',
        data: { connection: 'shop', protocol: 'mysql', backendUser: server.users.native.user, secret: 'secret:shop-my', scheduled: false },
      },
    ]);
  }, 180_000);

  it('credentials status warns about a global privilege the sessions do not need', async () => {
    const r = await gw.cli('dave', ['credentials', 'status']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`shop (mysql, backend user ${server.users.native.user})`);
    expect(r.out).toMatch(/ {2}rotation {6}last rotated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; no schedule/);
    expect(r.out).toContain(`  warning       ${server.users.native.user} has FILE: it can read and write files on the database server`);
  });
});
