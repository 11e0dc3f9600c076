import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

function problems(text: string): string {
  try {
    parseConfig(text, 'jitgate.yaml', '/srv');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
}

const redisConnection = '  - { name: cache, type: redis, host: 10.0.0.1, password: env:R }\n';

describe('redis configuration', () => {
  it('a redis connection turns the Redis listener on, with its defaults', () => {
    const c = parseConfig(`connections:\n${redisConnection}`, 'jitgate.yaml', '/srv');
    expect(c.listeners.redis).toEqual({ host: '127.0.0.1', port: 6380 });
    expect(c.connections[0]).toMatchObject({ type: 'redis', port: 6379, database: '0', user: 'default' });
    expect(
      parseConfig('listeners: { redis: { enabled: false } }\n' + `connections:\n${redisConnection}`, 'j.yaml', '/srv').listeners.redis,
    ).toBeUndefined();
  });

  it('guardrails take Redis commands, categories and case-kept key globs', () => {
    const c = parseConfig(
      'guardrails:\n  - name: r\n    deny: { commands: [FLUSHALL, "config|set"], categories: ["@Scripting"], keys: ["Secret:*"] }\n',
      'j.yaml',
      '/srv',
    );
    expect(c.guardrails![0]!.deny).toMatchObject({ commands: ['flushall', 'config|set'], categories: ['scripting'], keys: ['Secret:*'] });
  });

  it('ephemeral credentials on redis need acl rules, never password or state rules', () => {
    const ok = parseConfig(
      `connections:\n  - { name: cache, type: redis, host: h, credentials: { mode: ephemeral, acl: ["+@read", "~a:*"] } }\n`,
      'j.yaml',
      '/srv',
    );
    expect(ok.connections[0]!.credentials).toMatchObject({ mode: 'ephemeral', acl: ['+@read', '~a:*'] });
    expect(problems(`connections:\n  - { name: cache, type: redis, host: h, credentials: { mode: ephemeral } }\n`)).toMatch(
      /mode: ephemeral on a redis connection needs `acl`/,
    );
    expect(problems(`connections:\n  - { name: cache, type: redis, host: h, credentials: { mode: ephemeral, acl: [">pw"] } }\n`)).toMatch(
      /">pw" is set by the gateway/,
    );
    expect(
      problems(
        `connections:\n  - { name: db, host: h, database: d, user: u, credentials: { mode: ephemeral, roles: [r], acl: ["+@all"] } }\n`,
      ),
    ).toMatch(/acl: only used on redis connections/);
  });

  it('masking rules take Redis key and field patterns', () => {
    const c = parseConfig(
      'masking:\n  rules:\n    - name: m\n      keys: { "User:*": email }\n      fields: { ssn: { strategy: partial, keep: 4 } }\n',
      'j.yaml',
      '/srv',
    );
    expect(c.masking!.rules[0]).toMatchObject({
      columns: [],
      keys: [{ pattern: 'User:*', strategy: { kind: 'email' } }],
      fields: [{ pattern: 'ssn', strategy: { kind: 'partial', keepLast: 4 } }],
    });
  });
});
