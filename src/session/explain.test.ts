/**
 * PolicyTester for MySQL and Redis connections (the PostgreSQL path, with a real backend catalog,
 * is test/policy-review.test.ts): guardrails, reviews and masking refusals through the data path's
 * own decision code, Redis commands split as redis-cli splits them, and where groups come from.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { maskingFor } from '../masking/policy.js';
import { MaskingSession } from '../masking/session.js';
import { createLogger } from '../obs/log.js';
import { MysqlMasking } from '../protocols/mysql/masking.js';
import { redisMasking } from '../protocols/redis/masking.js';
import { loadPostgresParser } from '../sql/postgres.js';
import { PolicyTester, type PolicyTestInput } from './explain.js';

beforeAll(() => loadPostgresParser());

const config = parseConfig(
  `
development: true
connections:
  - { name: shop, type: mysql, host: 127.0.0.1, port: 1, database: shop, user: app, tls: { mode: disable } }
  - { name: cache, type: redis, host: 127.0.0.1, port: 1, user: default, tls: { mode: disable } }
  - { name: pgdown, type: postgres, host: 127.0.0.1, port: 1, database: app, user: app, tls: { mode: disable } }
guardrails:
  - name: no-ddl
    connections: [shop]
    except: [dba]
    deny: { kinds: [ddl] }
  - name: no-flush
    connections: [cache]
    deny: { commands: [flushall, flushdb] }
reviews:
  - name: cache-writes
    connections: [cache]
    match: { writes: true }
    approval: { approvers: [ops], approvals: 1, timeout: 5m }
masking:
  rules:
    - name: pii
      connections: ["*"]
      except: [dba]
      columns: { customers.password_hash: redact }
      keys: { "user:*:email": email }
`,
  'test.yaml',
  '/tmp',
);
const hashKey = Buffer.alloc(32);

const tester = new PolicyTester({
  config,
  masking: {
    scope: ({ connection, groups }) => {
      const { rules, detectors } = maskingFor(config.masking, connection, groups);
      return rules.length || detectors.length ? { connection, rules, detectors, hashKey } : undefined;
    },
    policyMasker: (protocol, scope) => {
      // A PostgreSQL backend whose catalog cannot be read.
      if (protocol === 'postgres') {
        return new MaskingSession({ ...scope, loadCatalog: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')) });
      }
      // A MySQL backend without views (what masking reads from MySQL at session start).
      return protocol === 'mysql' ? new MysqlMasking({ ...scope, views: () => Promise.resolve([]) }) : redisMasking(scope);
    },
  },
  lastSignIn: (user) => (user === 'erin' ? { groups: ['dba'], at: 1_700_000_000_000, issuer: 'corp' } : undefined),
  log: createLogger({ level: 'silent' }),
});

const test = (statement: string, more: Partial<PolicyTestInput> = {}) =>
  tester.test({ connection: 'shop', user: 'alice', groups: ['eng'], statement, ...more });

describe('policy test on MySQL', () => {
  it('refuses DDL by the guardrail, unless the group is exempt', async () => {
    expect(await test('DROP TABLE customers')).toMatchObject({
      protocol: 'mysql',
      outcome: 'refused',
      refused: { by: 'guardrail', rule: 'no-ddl', reasons: ['kind_denied'] },
    });
    expect((await test('DROP TABLE customers', { groups: ['dba'] })).outcome).toBe('allowed');
  });

  it('refuses copies of masked columns as masking_copy and says how MySQL columns are masked', async () => {
    const r = await test('INSERT INTO notes SELECT id, password_hash FROM customers');
    expect(r).toMatchObject({ outcome: 'refused', refused: { by: 'masking', reasons: ['masking_copy'] }, masking: { rules: ['pii'] } });
    expect(r.notes.join('\n')).toMatch(/MySQL result columns are masked by the table and column the server reports/);
  });

  it('uses the groups of the last sign-in and says so; refuses when nobody knows them', async () => {
    const r = await tester.test({ connection: 'shop', user: 'erin', statement: 'DROP TABLE customers' });
    expect(r).toMatchObject({ groups: ['dba'], groupsFrom: { kind: 'sign-in', issuer: 'corp' }, outcome: 'allowed' });
    await expect(tester.test({ connection: 'shop', user: 'zed', statement: 'select 1' })).rejects.toThrow(
      /no sign-in on record for "zed".*--groups/,
    );
    await expect(tester.test({ connection: 'nope', user: 'zed', statement: 'select 1' })).rejects.toThrow(
      /unknown connection "nope" \(configured: shop, cache, pgdown\)/,
    );
  });
});

describe('policy test on PostgreSQL', () => {
  it('says sessions would be refused when masking cannot read the catalog, without the internal error', async () => {
    const r = await tester.test({ connection: 'pgdown', user: 'alice', groups: ['eng'], statement: 'select 1' });
    expect(r).toMatchObject({ outcome: 'refused', refused: { by: 'masking', reasons: ['masking_unprovable'] } });
    expect(r.refused!.message).toMatch(/masking cannot read the backend's catalog/);
    expect(JSON.stringify(r)).not.toContain('ECONNREFUSED');
  });
});

describe('policy test on Redis', () => {
  const redis = (statement: string) => tester.test({ connection: 'cache', user: 'alice', groups: ['eng'], statement });

  it('splits the command line as redis-cli does and refuses by the guardrail', async () => {
    const r = await redis('FLUSHALL');
    expect(r).toMatchObject({
      protocol: 'redis',
      argv: ['FLUSHALL'],
      outcome: 'refused',
      refused: { by: 'guardrail', rule: 'no-flush', reasons: ['command_denied'] },
    });
  });

  it('holds writes for review with approvers, and names masked keys', async () => {
    const r = await redis('SET "user:1:email" "a b@example.com"');
    expect(r.argv).toEqual(['SET', 'user:1:email', 'a b@example.com']);
    expect(r).toMatchObject({ outcome: 'held', held: { rule: 'cache-writes', approvers: ['ops'], approvals: 1, timeoutMs: 300_000 } });
    const read = await redis('GET user:1:email');
    expect(read).toMatchObject({
      outcome: 'allowed',
      masking: { rules: ['pii'], keys: [{ key: 'user:1:email', rule: 'pii', strategy: 'email' }] },
    });
  });

  it('reports what the reply masker refuses on a masked key', async () => {
    expect(await redis('STRLEN user:1:email')).toMatchObject({
      outcome: 'refused',
      refused: { by: 'masking', reasons: ['masking_unprovable'] },
    });
  });

  it('refuses a command line with unbalanced quotes', async () => {
    await expect(redis('GET "user')).rejects.toThrow(/unbalanced quotes/);
  });
});
