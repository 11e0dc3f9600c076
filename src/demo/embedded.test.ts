import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_POLICIES, DEMO_USERS, EMBEDDED_CONNECTIONS, connectHint, embeddedPorts, startEmbeddedDefault } from './embedded.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'jitgate-embedded-'));
  dirs.push(d);
  return d;
}

describe('startEmbeddedDefault', () => {
  it('starts the demo database and returns a development config pointing at it', async () => {
    const dataDir = await tmp();
    const printed: string[] = [];
    const embedded = await startEmbeddedDefault(dataDir, { env: {}, write: (t) => printed.push(t) });
    try {
      const { config } = embedded;
      expect(config).toMatchObject({
        source: '<embedded default>',
        development: true,
        dataDir,
        listeners: { http: { host: '127.0.0.1', port: 8080 }, postgres: { host: '127.0.0.1', port: 5433 } },
        tls: { required: false },
        auth: { postgres: { methods: ['scram-sha-256'] }, tokenTtlMs: 8 * 3600_000 },
        store: { type: 'sqlite', path: path.join(dataDir, 'jitgate.db') },
        identities: { oidc: [], admins: { groups: ['admins'] }, devIdp: { agent: { clientId: 'demo-agent', groups: ['agents'] } } },
        policies: DEMO_POLICIES,
        notifications: { webhooks: [] },
        log: { level: 'info' },
        shutdown: { drainTimeoutMs: 10_000 },
      });
      expect(config.tls.cert).toBeUndefined();
      expect(config.connections).toHaveLength(1);
      const demo = config.connections[0];
      expect(demo).toMatchObject({ name: 'demo', type: 'postgres', host: '127.0.0.1', database: 'postgres', user: 'postgres', tls: { mode: 'disable' } });
      expect(demo?.password).toBeUndefined();
      expect(EMBEDDED_CONNECTIONS).toEqual(['demo']);

      // The connection really reaches the demo database, as the gateway's backend side will.
      const c = new pg.Client({ host: demo?.host, port: demo?.port, user: demo?.user, database: demo?.database });
      await c.connect();
      expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(200);
      await c.end();

      embedded.printConnectHint({ http: 'http://127.0.0.1:8080', postgres: '127.0.0.1:5433' }, 'jgt_abc123');
      const lines = printed.join('').trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe('PGPASSWORD=jgt_abc123 psql "postgresql://alice@127.0.0.1:5433/demo?sslmode=require"');
      expect(lines[1]).toContain(`mint more with: jitgate token --user alice --connection demo --data-dir ${dataDir}`);
    } finally {
      await embedded.close();
    }
  });

  it('rejects a malformed port override before starting anything', async () => {
    const dataDir = await tmp();
    await expect(startEmbeddedDefault(dataDir, { env: { JITGATE_PG_PORT: 'abc' } })).rejects.toThrow(
      'JITGATE_PG_PORT must be a port number from 0 to 65535 (got "abc")',
    );
    await expect(fs.stat(path.join(dataDir, 'demo-pg'))).rejects.toThrow();
  });
});

describe('embeddedPorts', () => {
  it('defaults to 8080 and 5433 and takes overrides from the environment', () => {
    expect(embeddedPorts({})).toEqual({ http: 8080, postgres: 5433, demo: 0 });
    expect(embeddedPorts({ JITGATE_PG_PORT: '6543', JITGATE_HTTP_PORT: '0', JITGATE_DEMO_DB_PORT: ' 7000 ' })).toEqual({
      http: 0,
      postgres: 6543,
      demo: 7000,
    });
    expect(embeddedPorts({ JITGATE_PG_PORT: '' })).toMatchObject({ postgres: 5433 });
    for (const bad of ['70000', '-1', '5433x', '1e3', '0x10']) {
      expect(() => embeddedPorts({ JITGATE_HTTP_PORT: bad }), bad).toThrow(/JITGATE_HTTP_PORT must be a port number/);
    }
  });
});

describe('connectHint', () => {
  it('prints one pasteable psql line and one line on minting tokens', () => {
    expect(connectHint({ http: 'http://127.0.0.1:8080', postgres: '127.0.0.1:5433' })).toEqual([
      'psql "postgresql://alice@127.0.0.1:5433/demo?sslmode=require"',
      '(the password is a jitgate access token; mint one with: jitgate token --user alice --connection demo)',
    ]);
  });

  it('quotes tokens for the shell and handles IPv6 and wildcard listen addresses', () => {
    expect(connectHint({ http: 'x', postgres: '[::1]:5433' }, { token: "it's" })[0]).toBe(
      `PGPASSWORD='it'\\''s' psql "postgresql://alice@[::1]:5433/demo?sslmode=require"`,
    );
    expect(connectHint({ http: 'x', postgres: '0.0.0.0:6000' })[0]).toContain('@127.0.0.1:6000/');
    expect(connectHint({ http: 'x', postgres: 'postgresql://[::]:6000' })[0]).toContain('@[::1]:6000/');
  });

  it('says so when the PostgreSQL listener is off', () => {
    expect(connectHint({ http: 'http://127.0.0.1:8080' })[0]).toContain('PostgreSQL listener is disabled');
  });
});

describe('DEMO_USERS', () => {
  it('has an engineer, an approver, an auditor and an admin, each with groups', () => {
    expect(DEMO_USERS.map((u) => [u.user, u.role])).toEqual([
      ['alice', 'engineer'],
      ['bob', 'approver'],
      ['carol', 'auditor'],
      ['dave', 'admin'],
    ]);
    for (const u of DEMO_USERS) expect(u.groups.length).toBeGreaterThan(0);
  });
});
