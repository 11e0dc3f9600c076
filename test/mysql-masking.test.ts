/**
 * Masking on MySQL connections with the real MariaDB: values of masked source columns (found from
 * the column definitions' original table and column) in text and binary rows, expressions over
 * masked columns, content detectors, copies of masked data refused, data-quoting errors, and the
 * recording holding only what the client saw.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { settledSession } from './support/recording.js';

let my: MariadbServer;
let gw: MysqlTestGateway;

beforeAll(async () => {
  my = await startMariadb();
  gw = await startMysqlTestGateway(my, {
    extraYaml: `
masking:
  rules:
    - name: pii
      connections: [app]
      columns:
        customers.email: email
        "*.card": card
  detectors:
    - connections: [app]
      use: [card, email]
`,
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

async function connect(user = 'alice', connection = 'app'): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user,
    password: await gw.token({ user, connection }),
    database: connection,
    ssl: { rejectUnauthorized: false },
  });
}

describe('masking MySQL results', () => {
  it('masks source columns in text rows, aliases included, and runs detectors over the rest', async () => {
    const c = await connect();
    const [rows] = await c.query('SELECT id, name, email AS contact, card, note FROM customers ORDER BY id');
    expect(rows).toEqual([
      {
        id: 1,
        name: 'Jane Doe',
        contact: 'j*******@example.com',
        card: 'XXXX XXXX XXXX 1111',
        note: expect.not.stringContaining('4111111111111111'),
      },
      { id: 2, name: 'John Roe', contact: 'j***@example.org', card: 'XXXX XXXX XXXX 0004', note: null },
    ]);
    await c.end();
  });

  it('masks binary rows of prepared statements the same way', async () => {
    const c = await connect();
    const [rows] = await c.execute('SELECT email, card, id FROM customers WHERE id = ?', [1]);
    expect(rows).toEqual([{ email: 'j*******@example.com', card: 'XXXX XXXX XXXX 1111', id: 1 }]);
    await c.end();
  });

  it('redacts expressions over masked columns and leaves expressions over clear ones alone', async () => {
    const c = await connect();
    const [rows] = await c.query("SELECT CONCAT(email, '') AS e, UPPER(name) AS n FROM customers WHERE id = 1");
    expect(rows).toEqual([{ e: '[redacted]', n: 'JANE DOE' }]);
    const [union] = await c.query('SELECT email FROM customers WHERE id = 1 UNION SELECT name FROM items WHERE id = 1');
    expect(union).toEqual([{ email: '[redacted]' }, { email: '[redacted]' }]);
    // Derived tables and CTEs name themselves as their columns' origin: judged as expressions.
    for (const sql of [
      'SELECT x FROM (SELECT email AS x FROM customers) t WHERE x LIKE "jane%"',
      'WITH w AS (SELECT email AS y FROM customers) SELECT y FROM w WHERE y LIKE "jane%"',
      'SELECT (SELECT email FROM customers LIMIT 1) AS s',
    ]) {
      const [r] = await c.query(sql);
      expect(Object.values((r as Array<Record<string, unknown>>)[0]!), sql).toEqual(['[redacted]']);
    }
    await c.end();
  });

  it('views: a view over masked columns is masked under any column name, nested views too, and cannot be copied out', async () => {
    my.root(`
      CREATE OR REPLACE VIEW app.contacts AS SELECT id, email AS contact, card AS pan FROM app.customers;
      CREATE OR REPLACE VIEW app.contacts2 AS SELECT id AS n, contact AS c FROM app.contacts;
      CREATE OR REPLACE VIEW app.clean_names AS SELECT id, name FROM app.customers;
      CREATE TABLE IF NOT EXISTS app.scratch (v TEXT);
      GRANT ALL ON app.* TO '${my.users.native.user}'@'%';`);
    const c = await connect();
    try {
      const [direct] = await c.query('SELECT contact, pan FROM contacts WHERE id = 1');
      expect(JSON.stringify(direct)).not.toContain('jane.doe@example.com');
      expect(JSON.stringify(direct)).not.toContain('4111 1111 1111 1111');
      const [nested] = await c.query('SELECT c FROM contacts2 WHERE n = 1');
      expect(JSON.stringify(nested)).not.toContain('jane.doe@example.com');
      const [expr] = await c.query("SELECT CONCAT(contact, '') AS e FROM contacts WHERE id = 1");
      expect(expr).toEqual([{ e: '[redacted]' }]);
      const [bin] = await c.execute('SELECT contact FROM contacts WHERE id = ?', [1]);
      expect(JSON.stringify(bin)).not.toContain('jane.doe@example.com');
      // A view over clear columns stays clear.
      const [clean] = await c.query('SELECT name FROM clean_names WHERE id = 1');
      expect(clean).toEqual([{ name: 'Jane Doe' }]);
      await expect(c.query('INSERT INTO scratch SELECT contact FROM contacts')).rejects.toThrow(/masking_copy|masked/);
      expect(my.root('SELECT COUNT(*) FROM app.scratch').trim()).toBe('0');
    } finally {
      await c.end();
    }
  });

  it('refuses statements that would copy masked data out of reach, and masks data quoted in errors', async () => {
    const c = await connect();
    await expect(c.query('INSERT INTO items (id, name) SELECT id + 100, email FROM customers')).rejects.toMatchObject({
      errno: 1142,
      message: expect.stringContaining(
        'jitgate: statement refused by masking: INSERT would carry masked column email where it could be read unmasked (masking_copy)',
      ),
    });
    await expect(c.query('SELECT email INTO @e FROM customers WHERE id = 1')).rejects.toMatchObject({ errno: 1142 });
    expect(my.root('SELECT COUNT(*) FROM app.items WHERE id > 100').trim()).toBe('0');
    const err = await c.query("INSERT INTO customers (id, email) VALUES (1, 'x@example.com')").then(
      () => undefined,
      (e: { errno: number; message: string }) => e,
    );
    expect(err?.errno).toBe(1062);
    expect(err?.message).toBe("Duplicate entry '[redacted]' for key '[redacted]'");
    await c.end();
  });

  it('leaves connections without rules unmasked', async () => {
    const c = await connect('alice', 'app-plain');
    const [rows] = await c.query('SELECT email FROM customers WHERE id = 1');
    expect(rows).toEqual([{ email: 'jane.doe@example.com' }]);
    await c.end();
  });

  it('records what the client saw: masked values only (mariadb CLI)', async () => {
    const r = await mysqlCli(gw, {
      user: 'masked-cli',
      token: await gw.token({ user: 'masked-cli' }),
      sql: 'SELECT email, card FROM customers ORDER BY id',
      args: ['--ssl'],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('email\tcard\nj*******@example.com\tXXXX XXXX XXXX 1111\nj***@example.org\tXXXX XXXX XXXX 0004\n');
    const s = await settledSession(gw as unknown as TestGateway, { user: 'masked-cli' });
    const text = JSON.stringify((await gw.gateway.recording.read(s.id))!.result.events);
    expect(text).toContain('j*******@example.com');
    expect(text.includes('jane.doe@example.com')).toBe(false);
    expect(text.includes('4111 1111 1111 1111')).toBe(false);
  });
});
