/**
 * The rules of a connection in words, from a configuration parsed as the gateway parses it: each
 * kind of rule reads as what it does, scopes read as who, and "applies to you" follows groups and
 * exemptions.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { describeConnectionRules } from './describe.js';

const config = parseConfig(
  `
development: true
connections:
  - { name: prod-db, host: 127.0.0.1, port: 5432, database: app, user: gw, tls: { mode: disable } }
  - { name: cache, type: redis, host: 127.0.0.1, port: 6379, tls: { mode: disable } }
policies:
  - name: oncall
    connections: [prod-*]
    groups: [oncall]
    users: [erin]
    access: { approval: auto, maxDuration: 30m, breakGlass: true, requireReason: false }
  - name: cache-readers
    connections: [cache]
    groups: ['*']
    access: { approvers: [sre], approvals: 2, maxDuration: 1d, escalate: { after: 10m, to: [leads] } }
guardrails:
  - name: safe-writes
    connections: ['*']
    except: [dba]
    deny: { unboundedWrites: true, multiStatement: true, tables: [billing.*] }
  - name: no-flush
    connections: [cache]
    deny: { commands: [flushall], categories: [dangerous] }
reviews:
  - name: prod-writes
    connections: [prod-*]
    match: { writes: true }
    approval: { approvers: [dba], approvals: 1, timeout: 15m }
    reason: production writes are reviewed
masking:
  rules:
    - name: cards
      connections: [prod-db]
      except: [auditors]
      columns: { "payments.card": { strategy: partial, keep: 4 }, "*.password_hash": hash }
    - name: sessions
      connections: [cache]
      keys: { "session:*": redact }
  detectors:
    - { connections: [prod-db], use: [email, cloud_key], except: [auditors] }
`,
  'describe.yaml',
  '/tmp',
);

describe('describeConnectionRules', () => {
  it('reads a PostgreSQL connection: auto access, guardrails, a review rule, column masks and detectors', () => {
    const rules = describeConnectionRules(config, 'prod-db', { user: 'erin', groups: ['engineering'] });
    expect(rules.policies).toEqual([
      {
        name: 'oncall',
        who: 'group oncall and user erin',
        what: [
          'access is granted at once, without an approver',
          'grants last up to 30 minutes',
          'a reason is optional',
          'break-glass (self-approved emergency access, with a reason) is allowed',
        ],
        reason: null,
        appliesToYou: true,
      },
    ]);
    expect(rules.guardrails).toEqual([
      {
        name: 'safe-writes',
        who: 'everyone except dba',
        what: [
          'refuses statements on billing.*',
          'refuses UPDATE or DELETE without a WHERE clause',
          'refuses several statements in one query',
        ],
        reason: null,
        appliesToYou: true,
      },
    ]);
    expect(rules.reviews).toEqual([
      {
        name: 'prod-writes',
        who: 'everyone',
        what: [
          'holds any statement that changes data, schema, privileges or settings',
          'until 1 approval from dba (refused if undecided after 15 minutes)',
        ],
        reason: 'production writes are reviewed',
        appliesToYou: true,
      },
    ]);
    expect(rules.masking.map((m) => [m.name, m.who, m.what])).toEqual([
      [
        'cards',
        'everyone except auditors',
        ['column payments.card: all but the last 4 characters hidden', 'column *.password_hash: replaced by a stable hash'],
      ],
      ['content detectors', 'everyone except auditors', ['values that look like email, cloud key are masked wherever they appear']],
    ]);
  });

  it('reads a Redis connection and marks what does not apply to the reader', () => {
    const rules = describeConnectionRules(config, 'cache', { user: 'dan', groups: ['dba'] });
    expect(rules.policies[0]!.what).toEqual([
      'access needs 2 approvals from sre; a request waits 1 hour at most',
      'grants last up to 1 day',
      'a request must say why',
      'after 10 minutes undecided, leads may approve too',
    ]);
    expect(rules.guardrails.map((g) => [g.name, g.appliesToYou, g.what])).toEqual([
      ['safe-writes', false, expect.any(Array)],
      ['no-flush', true, ['refuses the commands FLUSHALL', 'refuses commands in the categories dangerous']],
    ]);
    expect(rules.reviews).toEqual([]);
    expect(rules.masking).toEqual([
      { name: 'sessions', who: 'everyone', what: ['key session:*: hidden'], reason: null, appliesToYou: true },
    ]);
  });
});
