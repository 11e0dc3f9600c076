import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_USERS, EMBEDDED_CONNECTIONS, QUICKSTART_USER, connectHint, embeddedPorts, startEmbeddedDefault } from './embedded.js';

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
  it('starts the demo database and returns a development config, read from YAML, with every control on', async () => {
    const dataDir = await tmp();
    const embedded = await startEmbeddedDefault(dataDir, { env: {} });
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
        notifications: { webhooks: [] },
        log: { level: 'info' },
        shutdown: { drainTimeoutMs: 10_000 },
      });
      expect(config.identities.devIdp?.users.map((u) => u.user)).toEqual(DEMO_USERS.map((u) => u.user));
      // carol's part: the auditor role.
      expect(config.audit?.auditors).toEqual(['auditors']);
      expect(DEMO_USERS.find((u) => u.user === 'carol')?.groups).toContain('auditors');
      // Access: admins and the quick-start user at once, engineers ask.
      expect(config.policies.map((p) => [p.name, p.groups, p.access?.approval])).toEqual([
        ['demo-admins', ['admins'], 'auto'],
        ['demo-oncall', ['oncall'], 'auto'],
        ['demo-engineers', ['engineering', 'security'], 'required'],
      ]);
      expect(DEMO_USERS.find((u) => u.user === QUICKSTART_USER)?.groups).toContain('oncall');
      expect(DEMO_USERS.find((u) => u.user === 'alice')?.groups).not.toContain('oncall');
      // The controls, as a YAML user would have written them (the console shows these).
      expect(config.masking?.rules).toEqual([
        {
          name: 'customer-pii',
          connections: ['demo'],
          groups: ['*'],
          except: ['admins'],
          columns: [
            { pattern: 'customers.email', strategy: { kind: 'email' } },
            { pattern: 'customers.phone', strategy: { kind: 'phone' } },
            { pattern: 'customers.card_number', strategy: { kind: 'redact' } },
            { pattern: 'customers.password_hash', strategy: { kind: 'hash' } },
          ],
        },
      ]);
      expect(config.guardrails).toMatchObject([{ name: 'no-destructive', deny: { kinds: ['ddl', 'truncate'], unboundedWrites: true } }]);
      expect(config.reviews).toMatchObject([
        {
          name: 'reviewed-writes',
          except: ['admins'],
          match: { kinds: ['insert', 'update', 'delete', 'merge'] },
          approval: { approvers: ['approvers', 'admins'] },
        },
      ]);
      expect(embedded.yaml).toContain('dev: true');

      expect(config.tls.cert).toBeUndefined();
      expect(config.connections).toHaveLength(1);
      const demo = config.connections[0];
      expect(demo).toMatchObject({
        name: 'demo',
        type: 'postgres',
        host: '127.0.0.1',
        database: 'postgres',
        user: 'postgres',
        tls: { mode: 'disable' },
      });
      expect(demo?.password).toBeUndefined();
      expect(EMBEDDED_CONNECTIONS).toEqual(['demo']);
      expect(embedded.dataDirFlag).toBe(` --data-dir ${dataDir}`);

      // The connection really reaches the demo database, as the gateway's backend side will.
      const c = new pg.Client({ host: demo?.host, port: demo?.port, user: demo?.user, database: demo?.database });
      await c.connect();
      expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(200);
      await c.end();
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
      'psql "postgresql://erin@127.0.0.1:5433/demo?sslmode=require"',
      '(the password is a jitgate access token; mint one with: jitgate token --user erin --connection demo)',
    ]);
  });

  it('quotes tokens for the shell and handles IPv6 and wildcard listen addresses', () => {
    expect(connectHint({ http: 'x', postgres: '[::1]:5433' }, { token: "it's" })[0]).toBe(
      `PGPASSWORD='it'\\''s' psql "postgresql://erin@[::1]:5433/demo?sslmode=require"`,
    );
    expect(connectHint({ http: 'x', postgres: '0.0.0.0:6000' })[0]).toContain('@127.0.0.1:6000/');
    expect(connectHint({ http: 'x', postgres: 'postgresql://[::]:6000' })[0]).toContain('@[::1]:6000/');
  });

  it('says so when the PostgreSQL listener is off', () => {
    expect(connectHint({ http: 'http://127.0.0.1:8080' })[0]).toContain('PostgreSQL listener is disabled');
  });
});

describe('DEMO_USERS', () => {
  it('has an engineer, an approver, an auditor, an admin and the on-call engineer of the quick start, each with groups and a part', () => {
    expect(DEMO_USERS.map((u) => [u.user, u.role])).toEqual([
      ['alice', 'engineer'],
      ['bob', 'approver'],
      ['carol', 'auditor'],
      ['dave', 'admin'],
      ['erin', 'on-call engineer'],
    ]);
    for (const u of DEMO_USERS) {
      expect(u.groups.length).toBeGreaterThan(0);
      expect(u.part).not.toBe('');
    }
  });
});
