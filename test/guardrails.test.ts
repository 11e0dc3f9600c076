/**
 * Guardrails end to end: psql and the pg driver through the gateway to a real PostgreSQL. A refused
 * statement never reaches the backend, the client gets 42501 naming the rule and reason, and the
 * session goes on.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  await server.query('create table payroll (who text, amount int); grant all on payroll to public');
  gw = await startTestGateway(server, {
    extraYaml: `
guardrails:
  - name: no-ddl
    connections: [app]
    deny: { kinds: [ddl, truncate, grant, revoke] }
  - name: no-file-access
    deny: { functions: [pg_read_file, pg_ls_dir, lo_export, "dblink*"] }
  - name: hands-off-payroll
    deny: { tables: [payroll] }
    reason: payroll is read through the HR system
  - name: careful-writes
    deny: { unboundedWrites: true }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function itemCount(): Promise<number> {
  return (await server.query('select count(*)::int n from items')).rows[0]!.n;
}

describe('guardrails', () => {
  it('refuses what the rules deny in a psql session, names the rule, and the session goes on', async () => {
    const before = await itemCount();
    const r = await psql(gw.dsn({}), await gw.token(), ['-v', 'ON_ERROR_STOP=0', '-At'], {
      input: [
        'delete from items;',
        "select pg_catalog.pg_read_file('/etc/passwd');",
        'select * from public.payroll;',
        'drop table items;',
        'selec broken sql;',
        'select count(*) from items;',
      ].join('\n'),
    });
    expect(r.stderr).toContain('guardrail "careful-writes": DELETE without WHERE on items (unbounded_write)');
    expect(r.stderr).toContain('guardrail "no-file-access": SELECT calls pg_catalog.pg_read_file() (function_denied)');
    expect(r.stderr).toContain(
      'guardrail "hands-off-payroll": SELECT touches public.payroll (table_denied) — payroll is read through the HR system',
    );
    expect(r.stderr).toContain('guardrail "no-ddl": DROP TABLE is not allowed (kind_denied)');
    expect(r.stderr).toContain('could not be parsed');
    expect(r.stdout.trim()).toBe(String(before));
    expect(await itemCount()).toBe(before);
    expect((await server.query("select to_regclass('items') is not null as present")).rows[0]!.present).toBe(true);
  });

  it('refuses in the extended protocol with SQLSTATE 42501 and reason detail', async () => {
    const c = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: await gw.token() });
    await c.connect();
    try {
      const err = await c.query('update items set name = $1', ['x']).then(
        () => undefined,
        (e: Error & { code?: string; detail?: string }) => e,
      );
      expect(err?.code).toBe('42501');
      expect(err?.detail).toBe('reason: unbounded_write');
      const ok = await c.query('update items set name = name where id = $1', [1]);
      expect(ok.rowCount).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('leaves other connections alone when a rule names only some', async () => {
    const r = await psql(gw.dsn({ connection: 'app-md5' }), await gw.token({ connection: 'app-md5' }), [
      '-At',
      '-c',
      'create temp table scratch (a int)',
    ]);
    expect(r.stderr).toBe('');
  });
});
