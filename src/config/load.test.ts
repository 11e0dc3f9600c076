import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from './load.js';

const BASE = '/srv/jitgate';

function problems(text: string, file = 'jitgate.yaml'): string[] {
  try {
    parseConfig(text, file, BASE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

const GOOD_CONNECTION = `connections:
  - name: prod
    host: db.example.com
    database: app
    user: gw
`;

describe('parseConfig defaults', () => {
  it('an empty file gives the documented defaults', () => {
    const c = parseConfig('', 'jitgate.yaml', BASE);
    expect(c).toEqual({
      source: 'jitgate.yaml',
      development: false,
      dataDir: '/srv/jitgate/.data',
      listeners: { http: { host: '127.0.0.1', port: 8080 }, postgres: { host: '127.0.0.1', port: 5433 } },
      tls: { required: true },
      // Outside development mode /metrics wants a token (refused until one is configured).
      metrics: { auth: 'token' },
      auth: { postgres: { methods: ['scram-sha-256'] }, tokenTtlMs: 900_000, tokenUse: 'grant' },
      store: { type: 'sqlite', path: '/srv/jitgate/.data/jitgate.db' },
      connections: [],
      identities: { oidc: [], admins: { groups: [] }, session: { ttlMs: 12 * 3_600_000, refreshTtlMs: 7 * 86_400_000 } },
      policies: [],
      guardrails: [],
      reviews: [],
      agents: { maxRows: 100, holdWaitMs: 5_000, limits: [] },
      notifications: { webhooks: [] },
      recording: {
        enabled: true,
        dir: '/srv/jitgate/.data/recordings',
        defaults: { mode: 'required', retentionMs: 90 * 86_400_000 },
        connections: {},
        limits: { rowsPerStatement: 1000, rowsPerSession: 100_000, valueBytes: 4096, statementBytes: 1024 * 1024 },
        retentionCheckMs: 3_600_000,
        fsyncIntervalMs: 50,
        storage: { type: 'local' },
      },
      audit: {
        auditors: [],
        signingKey: '/srv/jitgate/.data/audit-signing.key',
        checkpointIntervalMs: 60_000,
        checkpointEveryEntries: 100,
        anchorFile: null,
      },
      log: { level: 'info' },
      shutdown: { drainTimeoutMs: 10_000 },
    });
  });

  it('fills connection defaults and makes paths absolute against the config directory', () => {
    const c = parseConfig(
      `dataDir: state
development: true
tls:
  cert: tls/c.pem
  key: /abs/k.pem
${GOOD_CONNECTION}    password: file:secrets/pg
    tls: { ca: ca.pem }
  - name: cache
    type: redis
    host: r
`,
      'x.yaml',
      BASE,
    );
    expect(c.dataDir).toBe('/srv/jitgate/state');
    expect(c.store.path).toBe('/srv/jitgate/state/jitgate.db');
    expect(c.tls).toEqual({ cert: '/srv/jitgate/tls/c.pem', key: '/abs/k.pem', required: false });
    expect(c.connections[0]).toEqual({
      name: 'prod',
      type: 'postgres',
      host: 'db.example.com',
      port: 5432,
      database: 'app',
      user: 'gw',
      password: 'file:/srv/jitgate/secrets/pg',
      tls: { mode: 'prefer', ca: '/srv/jitgate/ca.pem' },
      connectTimeoutMs: 5_000,
    });
    expect(c.connections[1]).toMatchObject({ name: 'cache', type: 'redis', port: 6379 });
  });

  it('reads durations, the listener switch and the dataDir override', () => {
    const c = parseConfig(
      `auth: { tokenTtl: 1h30m }
shutdown: { drainTimeout: 500ms }
listeners: { postgres: { enabled: false } }
`,
      'x.yaml',
      BASE,
      { dataDir: '/elsewhere' },
    );
    expect(c.auth.tokenTtlMs).toBe(5_400_000);
    expect(c.shutdown.drainTimeoutMs).toBe(500);
    expect(c.listeners.postgres).toBeUndefined();
    expect(c.dataDir).toBe('/elsewhere');
    expect(c.store.path).toBe('/elsewhere/jitgate.db');
  });

  it("reads auth.tokenUse and a connection's own tokenUse; refuses other values", () => {
    const c = parseConfig(
      `auth: { tokenUse: session }
connections:
  - { name: a, host: h, database: d, user: u }
  - { name: b, host: h, database: d, user: u, tokenUse: grant }
`,
      'x.yaml',
      BASE,
    );
    expect(c.auth.tokenUse).toBe('session');
    expect(c.connections.map((x) => x.tokenUse)).toEqual([undefined, 'grant']);
    expect(() => parseConfig('auth: { tokenUse: once }\n', 'x.yaml', BASE)).toThrow(/tokenUse/);
  });

  it('accepts every secret reference form', () => {
    for (const ref of ['env:PG_PASSWORD', 'file:/run/secrets/pg', 'secret:prod-db']) {
      const c = parseConfig(`${GOOD_CONNECTION}    password: "${ref}"\n`, 'x.yaml', BASE);
      expect(c.connections[0]!.password).toBe(ref);
    }
  });

  it('the example file at the repository root is valid', () => {
    const text = readFileSync(new URL('../../jitgate.example.yaml', import.meta.url), 'utf8');
    const c = parseConfig(text, 'jitgate.example.yaml', BASE);
    expect(c.connections.map((x) => x.name)).toEqual(['orders', 'analytics']);
    expect(c.connections[0]!.tls).toEqual({
      mode: 'verify-full',
      ca: '/srv/jitgate/certs/internal-ca.pem',
      servername: 'db.internal.example.com',
    });
  });
});

describe('parseConfig errors', () => {
  it('reports a bad port at the exact position of the value', () => {
    const text = `${GOOD_CONNECTION}  - name: staging
    host: db2
    database: app
    user: gw
    port: abc
`;
    expect(problems(text)).toEqual(['jitgate.yaml:10:11: connections[1].port: expected an integer between 1 and 65535, got "abc"']);
  });

  it('lists every problem in one error, in file order', () => {
    const text = [
      'listeners:', //                              1
      '  http: { host: 0.0.0.0, port: 80800 }', //   2
      '  postgress: {}', //                          3
      'auth:', //                                    4
      '  tokenTtl: 900', //                          5
      'connections:', //                             6
      '  - name: prod', //                           7
      '    host: db', //                             8
      '    database: app', //                        9
      '    user: gw', //                             10
      '    password: hunter2', //                    11
      '  - name: prod', //                           12
      '    host: db2', //                            13
      '    user: gw', //                             14
      '    tls: { mode: verify }', //                15
      '    extra: 1', //                             16
      'log:', //                                     17
      '  level: loud', //                            18
      '',
    ].join('\n');
    expect(problems(text)).toEqual([
      'jitgate.yaml:2:32: listeners.http.port: expected an integer between 0 and 65535, got 80800',
      'jitgate.yaml:3:3: listeners.postgress: unknown key "postgress"; did you mean "postgres"? (allowed here: http, postgres, mysql, redis)',
      'jitgate.yaml:5:13: auth.tokenTtl: expected a duration such as 500ms, 30s, 15m, 1h or 1h30m, got 900 (add a unit, e.g. 900s)',
      'jitgate.yaml:11:15: connections[0].password: a plain password is not allowed in the config; use a secret reference instead: env:NAME, file:PATH, or secret:NAME after storing it with `jitgate secrets set NAME`',
      'jitgate.yaml:12:5: connections[1].database: required for a postgres connection: the database to open on the backend',
      'jitgate.yaml:12:11: connections[1].name: duplicate connection name "prod" (first defined at line 7)',
      'jitgate.yaml:15:18: connections[1].tls.mode: expected one of "disable", "prefer", "require", "verify-full", got "verify"',
      'jitgate.yaml:16:5: connections[1].extra: unknown key "extra" (allowed here: name, type, host, port, database, user, password, tls, connectTimeout, credentials, localInfile, tokenUse)',
      'jitgate.yaml:18:10: log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "loud"',
    ]);
  });

  it('never echoes a plain password', () => {
    const err = problems(`${GOOD_CONNECTION}    password: "correct horse battery"\n`).join('\n');
    expect(err).toContain('connections[0].password: a plain password is not allowed');
    expect(err).not.toContain('correct horse');
    const nonString = problems(`${GOOD_CONNECTION}    password: 123456\n`).join('\n');
    expect(nonString).toContain('got a number');
    expect(nonString).not.toContain('123456');
  });

  it('rejects malformed references with what is wrong', () => {
    expect(problems(`${GOOD_CONNECTION}    password: "env:MY-PASS"\n`)).toEqual([
      'jitgate.yaml:6:15: connections[0].password: env: must be followed by an environment variable name',
    ]);
    expect(problems(`${GOOD_CONNECTION}    password: "secret:"\n`)[0]).toMatch(
      /^jitgate.yaml:6:15: connections\[0\]\.password: secret: must be followed by a secret name/,
    );
  });

  it('points a missing required key at its mapping', () => {
    expect(problems('connections:\n  - name: a\n    database: d\n    user: u\n')).toEqual([
      'jitgate.yaml:2:5: connections[0].host: required: expected a host name or IP address',
    ]);
  });

  it('refuses cleartext without TLS and optional TLS outside development', () => {
    expect(problems('development: true\ntls: { required: false }\nauth:\n  postgres:\n    methods: [scram-sha-256, cleartext]\n')).toEqual([
      'jitgate.yaml:5:30: auth.postgres.methods[1]: cleartext authentication sends the token as is and needs TLS on every connection: set tls.required: true, or remove cleartext',
    ]);
    // development mode makes TLS optional by default, so cleartext needs an explicit tls.required
    expect(problems('development: true\nauth: { postgres: { methods: [cleartext] } }\n')[0]).toContain(
      'jitgate.yaml:2:31: auth.postgres.methods[0]: cleartext authentication',
    );
    expect(problems('tls:\n  required: false\n')).toEqual([
      'jitgate.yaml:2:13: tls.required: TLS can be optional only in development mode: remove this line, or set development: true',
    ]);
    // with TLS required, cleartext is fine
    expect(parseConfig('auth: { postgres: { methods: [cleartext] } }\n', 'x', BASE).auth.postgres.methods).toEqual(['cleartext']);
  });

  it('needs tls.cert and tls.key together', () => {
    expect(problems('tls:\n  cert: c.pem\n')).toEqual([
      'jitgate.yaml:2:9: tls.cert: tls.key is needed as well (or remove both to use a generated certificate)',
    ]);
  });

  it('reports YAML syntax errors with positions', () => {
    expect(problems('listeners:\n  http: [1, 2\nlog: x\n')).toEqual([expect.stringMatching(/^jitgate\.yaml:3:1: YAML: /)]);
    expect(problems('log:\n  level: info\nlog:\n  level: debug\n')).toEqual(['jitgate.yaml:3:1: YAML: Map keys must be unique']);
  });

  it('reports the wrong type at the top level and for sections', () => {
    expect(problems('- a\n- b\n')).toEqual(['jitgate.yaml:1:1: expected a mapping, got a list']);
    expect(problems('connections: yes\n')).toEqual(['jitgate.yaml:1:14: connections: expected a list, got "yes"']);
  });

  it('checks duration bounds', () => {
    expect(problems('auth: { tokenTtl: 2d }\n')).toEqual(['jitgate.yaml:1:19: auth.tokenTtl: must be at most 1d, got "2d"']);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves relative paths against the file and names the file in errors', async () => {
    const file = join(dir, 'jitgate.yaml');
    writeFileSync(file, 'dataDir: st\n');
    const c = await loadConfig(file);
    expect(c.source).toBe(file);
    expect(c.dataDir).toBe(join(dir, 'st'));

    writeFileSync(file, 'dataDir: 3\n');
    await expect(loadConfig(file, { sourceName: 'jitgate.yaml' })).rejects.toThrow(
      'jitgate.yaml:1:10: dataDir: expected a file path, got 3',
    );
  });

  it('says when the file cannot be read', async () => {
    await expect(loadConfig(join(dir, 'missing.yaml'), { sourceName: 'missing.yaml' })).rejects.toThrow(
      'missing.yaml: cannot read the config file: no such file',
    );
  });
});
