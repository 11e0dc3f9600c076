/**
 * A MySQL `KILL [QUERY] id` that reaches another gateway instance than the one serving that
 * connection (a load balancer in front of two): two instances on one store, a real MariaDB and the
 * mysql2 driver. Connection ids are unique across instances; the instance the KILL reaches checks
 * the owner as MySQL does and passes it on through the store; the serving instance stops the query
 * or ends the session.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { waitUntil } from './support/wait.js';

let my: MariadbServer;
let a: MysqlTestGateway;
let b: Gateway;
let bPort: number;

beforeAll(async () => {
  my = await startMariadb();
  a = await startMysqlTestGateway(my);
  // Instance B: the same configuration, so the same store, in the same process.
  b = await startGateway(a.config, {
    env: { MY_NATIVE: my.users.native.password, MY_ADMIN: my.users.admin.password },
    logger: createLogger({ level: 'silent' }),
  });
  bPort = Number(b.addresses.mysql!.split(':').pop());
}, 60_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await my?.cleanup();
});

async function connect(port: number, user = 'alice'): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: a.host,
    port,
    user,
    password: await a.token({ user }),
    database: 'app',
    ssl: { rejectUnauthorized: false },
  });
}

const sleeping = () => my.root("SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30) AS s'").trim();

describe('MySQL KILL between instances', () => {
  it('KILL QUERY through B stops the query A runs, for its owner only', async () => {
    const sleeper = await connect(a.port);
    const killer = await connect(bPort);
    const bob = await connect(bPort, 'bob');
    try {
      const running = sleeper.query('SELECT SLEEP(30) AS s').then(
        ([rows]) => ({ rows }),
        (err: Error) => ({ err }),
      );
      await waitUntil('SLEEP(30) to run on the backend', () => sleeping() === '1', { intervalMs: 25, seen: sleeping });

      await expect(bob.query(`KILL QUERY ${sleeper.threadId}`)).rejects.toThrow(`You are not owner of thread ${sleeper.threadId}`);
      await expect(bob.query('KILL 4242')).rejects.toThrow('Unknown thread id: 4242');
      expect(sleeping()).toBe('1');

      await killer.query(`KILL QUERY ${sleeper.threadId}`);
      const outcome = await running;
      // MariaDB ends an interrupted SLEEP early with 1 (or the query with 1317).
      if ('rows' in outcome) expect(outcome.rows).toEqual([{ s: 1 }]);
      else expect(outcome.err.message).toMatch(/interrupted/);
      const [still] = await sleeper.query('SELECT 7 AS v');
      expect(still).toEqual([{ v: 7 }]);
    } finally {
      await Promise.all([sleeper, killer, bob].map((c) => c.end().catch(() => undefined)));
    }
  }, 40_000);

  it('KILL through B ends the session A serves, and the store says killed', async () => {
    const victim = await connect(a.port, 'carol');
    const live = await a.gateway.store.listSessions({ active: true, user: 'carol' });
    expect(live).toHaveLength(1);
    const killer = await connect(bPort, 'carol');
    try {
      await killer.query(`KILL ${victim.threadId}`);
      await waitUntil(
        'the killed session to end',
        async () => (await a.gateway.store.listSessions({ user: 'carol' })).find((s) => s.id === live[0]!.id)?.endReason,
      );
      expect((await a.gateway.store.listSessions({ user: 'carol' })).find((s) => s.id === live[0]!.id)?.endReason).toBe('killed');
      await expect(victim.query('SELECT 1')).rejects.toThrow();
      const [alive] = await killer.query('SELECT 2 AS v');
      expect(alive).toEqual([{ v: 2 }]);
    } finally {
      await Promise.all([victim, killer].map((c) => c.end().catch(() => undefined)));
    }
  }, 30_000);
});
