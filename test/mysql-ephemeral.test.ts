/**
 * Per-session MySQL users: each session logs in to MariaDB as a user made for it (granted the
 * configured role, limited to one connection), dropped when the session ends; the janitor removes
 * what a crash left behind and never touches a user jitgate did not record.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { waitUntil } from './support/wait.js';

let my: MariadbServer;
let gw: MysqlTestGateway;

beforeAll(async () => {
  my = await startMariadb();
  gw = await startMysqlTestGateway(my, {
    extraConnections: [
      `{ name: eph, type: mysql, host: 127.0.0.1, port: ${my.port}, database: app, user: ${my.users.admin.user}, password: env:MY_ADMIN, tls: { mode: require }, credentials: { mode: ephemeral, roles: [app_reader] } }`,
    ],
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

const jitgateUsers = () => my.root("SELECT User FROM mysql.user WHERE User LIKE 'jitgate\\_%' ORDER BY User").split('\n').filter(Boolean);

describe('ephemeral MySQL users', () => {
  it('gives each session a user of its own with the configured role, dropped at session end', async () => {
    const c = await mysql.createConnection({
      host: gw.host,
      port: gw.port,
      user: 'alice',
      password: await gw.token({ connection: 'eph' }),
      database: 'eph',
      ssl: { rejectUnauthorized: false },
    });
    const [[who]] = (await c.query('SELECT CURRENT_USER() AS u, CURRENT_ROLE() AS r')) as unknown as [[{ u: string; r: string }]];
    expect(who.u).toMatch(/^jitgate_[0-9a-f]{12}@%$/);
    expect(who.r).toBe('app_reader');
    expect(jitgateUsers()).toEqual([who.u.split('@')[0]]);
    const [rows] = await c.query('SELECT COUNT(*) AS n FROM items');
    expect(rows).toEqual([{ n: 3 }]);
    await expect(c.query("INSERT INTO items (id, name) VALUES (60, 'no')")).rejects.toMatchObject({ errno: 1142 });
    const limits = my.root(`SELECT max_user_connections FROM mysql.user WHERE User = '${who.u.split('@')[0]}'`).trim();
    expect(limits).toBe('1');
    await c.end();
    await waitUntil('the session user to be dropped', () => jitgateUsers().length === 0, { intervalMs: 25, seen: jitgateUsers });
  });

  it('the janitor drops users the store recorded for sessions that are gone, and leaves look-alikes alone', async () => {
    const repo = gw.gateway.credentials.repository;
    const orphan = 'jitgate_0123456789ab';
    my.root(`CREATE USER '${orphan}'@'%' IDENTIFIED BY 'x'; CREATE USER 'jitgate_ffffffffffff'@'%' IDENTIFIED BY 'y'`);
    repo.recordCreating({
      connection: 'eph',
      name: orphan,
      sessionId: '01234567-89ab-4000-8000-000000000000',
      user: 'alice',
      validUntil: Date.now() + 60_000,
      createdAt: Date.now(),
    });
    await gw.gateway.credentials.sweep();
    expect(jitgateUsers()).toEqual(['jitgate_ffffffffffff']);
    expect(repo.pending('eph')).toEqual([]);
    my.root("DROP USER 'jitgate_ffffffffffff'@'%'");
  });
});
