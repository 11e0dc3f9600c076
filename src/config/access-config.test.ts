/** The `policies:` and `notifications:` sections: shapes, defaults and positioned problems. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const BASE = '/srv/jitgate';
const CONNECTIONS = `connections:
  - { name: orders, host: db, database: orders, user: gw }
  - { name: prod-users, host: db, database: users, user: gw }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'jitgate.yaml', BASE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('policies', () => {
  it('builds access rules with defaults', () => {
    const c = parseConfig(
      `${CONNECTIONS}policies:
  - name: engineers
    connections: [orders, "prod-*"]
    groups: [engineering]
    access:
      approvers: [approvers, dba]
      approvals: 2
      maxDuration: 4h
      breakGlass: true
  - connections: orders
    users: [sam]
    access: { approval: auto, requireReason: false, pendingExpiry: 30m }
  - connections: ["*"]
    groups: ["*"]
`,
      'jitgate.yaml',
      BASE,
    );
    expect(c.policies).toEqual([
      {
        name: 'engineers',
        connections: ['orders', 'prod-*'],
        groups: ['engineering'],
        users: [],
        access: {
          approval: 'required',
          approvers: ['approvers', 'dba'],
          approvals: 2,
          maxDurationMs: 4 * 3_600_000,
          breakGlass: true,
          pendingExpiryMs: 3_600_000,
          requireReason: true,
        },
      },
      {
        name: 'policy-2',
        connections: ['orders'],
        groups: [],
        users: ['sam'],
        access: {
          approval: 'auto',
          approvers: [],
          approvals: 1,
          maxDurationMs: 3_600_000,
          breakGlass: false,
          pendingExpiryMs: 30 * 60_000,
          requireReason: false,
        },
      },
      { name: 'policy-3', connections: ['*'], groups: ['*'], users: [] },
    ]);
  });

  it('reports every problem at its position', () => {
    expect(
      problems(`${CONNECTIONS}policies:
  - name: a
    connections: [order]
    groups: [eng]
    access: { approvals: 0 }
  - name: a
    connections: [orders]
    access: { approval: sometimes, aproval: auto }
`),
    ).toEqual([
      'jitgate.yaml:6:19: policies[0].connections[0]: no connection named "order" (configured: orders, prod-users)',
      'jitgate.yaml:8:13: policies[0].access: approval: required needs `approvers` (one or more group names)',
      'jitgate.yaml:8:26: policies[0].access.approvals: expected an integer from 1 to 10, got 0',
      'jitgate.yaml:9:5: policies[1]: say whom the policy applies to: `groups` (or "*" for everyone signed in) and/or `users`',
      'jitgate.yaml:9:11: policies[1].name: duplicate policy name "a" (first defined at line 5)',
      'jitgate.yaml:11:25: policies[1].access.approval: expected one of "auto", "required", got "sometimes"',
      'jitgate.yaml:11:36: policies[1].access.aproval: unknown key "aproval"; did you mean "approval"? ' +
        '(allowed here: approval, approvers, approvals, maxDuration, breakGlass, pendingExpiry, requireReason, escalate)',
    ]);
  });
});

describe('escalation', () => {
  it('reads access.escalate as milliseconds and groups', () => {
    const c = parseConfig(
      `connections:
  - { name: a, host: h, database: d, user: u }
policies:
  - { name: p, connections: [a], groups: [eng], access: { approvers: [leads], escalate: { after: 10m, to: [security, dba] } } }
`,
      'x.yaml',
      BASE,
    );
    expect(c.policies[0]!.access!.escalate).toEqual({ afterMs: 600_000, to: ['security', 'dba'] });
  });
});

describe('notifications', () => {
  it('webhooks with defaults; secrets are references', () => {
    const c = parseConfig(
      `notifications:
  webhooks:
    - url: https://hooks.example.com/jitgate
      secret: env:HOOK_SECRET
    - name: slack
      url: https://hooks.slack.com/services/T/B/X
      format: slack
      events: [break_glass, revocation]
      maxAttempts: 3
      initialBackoff: 2s
`,
      'jitgate.yaml',
      BASE,
    );
    expect(c.notifications.webhooks).toEqual([
      {
        name: 'webhook-1',
        url: 'https://hooks.example.com/jitgate',
        secret: 'env:HOOK_SECRET',
        format: 'json',
        events: ['request', 'approval', 'denial', 'revocation', 'break_glass', 'expiry', 'review', 'review_decision', 'escalation'],
        timeoutMs: 5000,
        maxAttempts: 6,
        initialBackoffMs: 1000,
      },
      {
        name: 'slack',
        url: 'https://hooks.slack.com/services/T/B/X',
        format: 'slack',
        events: ['break_glass', 'revocation'],
        timeoutMs: 5000,
        maxAttempts: 3,
        initialBackoffMs: 2000,
      },
    ]);
  });

  it('refuses a plain secret, a non-http URL and unknown events', () => {
    const p = problems(`notifications:
  webhooks:
    - url: ftp://example.com
      secret: hunter2
      events: [request, lunch]
`);
    expect(p[0]).toBe('jitgate.yaml:3:12: notifications.webhooks[0].url: expected an http:// or https:// URL, got "ftp://example.com"');
    expect(p[1]).toMatch(/^jitgate.yaml:4:15: notifications.webhooks\[0\].secret: a plain password is not allowed/);
    expect(p[2]).toBe(
      'jitgate.yaml:5:15: notifications.webhooks[0].events: item 1: expected one of request, approval, denial, revocation, break_glass, expiry, review, review_decision, escalation, got "lunch"',
    );
    expect(p.join('\n')).not.toContain('hunter2');
  });
});
