/** The `credentials` section of a connection (static / ephemeral backend users). */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const conn = (extra: string, type = 'postgres') => `connections:
  - name: prod
    type: ${type}
    host: db
    database: app
    user: gw
${extra}`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'jitgate.yaml', '/srv');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('connections[].credentials', () => {
  it('is static unless configured, and static leaves the connection as it was', () => {
    expect(parseConfig(conn(''), 'x.yaml', '/srv').connections[0]?.credentials).toBeUndefined();
    expect(parseConfig(conn('    credentials: { mode: static }\n'), 'x.yaml', '/srv').connections[0]?.credentials).toEqual({
      mode: 'static',
    });
  });

  it('reads ephemeral mode with its roles and the default prefix', () => {
    const c = parseConfig(
      conn('    credentials: { mode: ephemeral, roles: [app_readonly, "Reporting Team", app_readonly] }\n'),
      'x.yaml',
      '/srv',
    );
    expect(c.connections[0]?.credentials).toEqual({ mode: 'ephemeral', roles: ['app_readonly', 'Reporting Team'], rolePrefix: 'jitgate_' });
    const p = parseConfig(conn('    credentials: { mode: ephemeral, roles: [r], rolePrefix: tmp_ }\n'), 'x.yaml', '/srv');
    expect(p.connections[0]?.credentials).toMatchObject({ rolePrefix: 'tmp_' });
  });

  it('explains what is wrong', () => {
    expect(problems(conn('    credentials: { mode: ephemeral }\n'))).toEqual([
      "jitgate.yaml:7:18: connections[0].credentials: mode: ephemeral needs `roles`: the roles each session's database user is made a member of (its only privileges)",
    ]);
    expect(problems(conn('    credentials: { mode: ephemeral, roles: [] }\n'))).toEqual([
      "jitgate.yaml:7:44: connections[0].credentials.roles: list at least one role: a session's database user has no privileges but these",
    ]);
    expect(problems(conn(`    credentials: { mode: ephemeral, roles: [${'x'.repeat(64)}] }\n`))[0]).toContain(
      'connections[0].credentials.roles: item 0: expected a role name of 1 to 63 bytes',
    );
    expect(problems(conn('    credentials: { mode: ephemeral, roles: [r], rolePrefix: pg_x }\n'))[0]).toContain(
      'role names starting with "pg_" are reserved by PostgreSQL',
    );
    expect(problems(conn('    credentials: { mode: ephemeral, roles: [r], rolePrefix: "Bad-Prefix" }\n'))[0]).toContain(
      'credentials.rolePrefix: expected a role name prefix',
    );
    expect(problems(conn('    credentials: { roles: [r] }\n'))).toEqual([
      'jitgate.yaml:7:20: connections[0].credentials.roles: only used with mode: ephemeral',
    ]);
    // MySQL connections have per-session users too (credentials/ephemeral/mysql-users.ts).
    expect(problems(conn('    credentials: { mode: ephemeral, roles: [r] }\n', 'mysql'))).toEqual([]);
    expect(problems(conn('    credentials: { mode: temporary }\n'))[0]).toContain(
      'credentials.mode: expected one of "static", "ephemeral", got "temporary"',
    );
  });
});

describe('connections[].credentials.rotate', () => {
  it('reads the interval, with static or ephemeral credentials', () => {
    const c = parseConfig(conn('    password: secret:prod-db\n    credentials: { rotate: { every: 24h } }\n'), 'x.yaml', '/srv');
    expect(c.connections[0]?.rotation).toEqual({ everyMs: 86_400_000 });
    expect(c.connections[0]?.credentials).toEqual({ mode: 'static' });
    const e = parseConfig(
      conn('    password: secret:prod-db\n    credentials: { mode: ephemeral, roles: [r], rotate: { every: 7d } }\n'),
      'x.yaml',
      '/srv',
    );
    expect(e.connections[0]?.rotation).toEqual({ everyMs: 7 * 86_400_000 });
    expect(parseConfig(conn('    password: secret:prod-db\n'), 'x.yaml', '/srv').connections[0]?.rotation).toBeUndefined();
  });

  it('needs a password in the secret store, which the gateway can write', () => {
    expect(problems(conn('    password: env:PROD_DB\n    credentials: { rotate: { every: 24h } }\n'))).toEqual([
      'jitgate.yaml:8:20: connections[0].credentials.rotate: rotation needs `password: secret:NAME`: the gateway can store a new password only in its own secret store, not in an environment variable or a file',
    ]);
    expect(problems(conn('    credentials: { rotate: { every: 24h } }\n'))[0]).toContain('rotation needs `password: secret:NAME`');
    expect(problems(conn('    password: secret:prod-db\n    credentials: { rotate: { every: 10s } }\n'))[0]).toContain(
      'connections[0].credentials.rotate.every',
    );
    expect(problems(conn('    password: secret:prod-db\n    credentials: { rotate: { each: 1d } }\n'))[0]).toContain(
      'connections[0].credentials.rotate',
    );
  });
});
