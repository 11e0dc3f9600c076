import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

const BASE = '/srv/jitgate';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'jitgate.yaml', BASE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

describe('identities: in jitgate.yaml', () => {
  it('defaults: no issuers, no admins, 12h sessions within 7d logins', () => {
    expect(parseConfig('', 'jitgate.yaml', BASE).identities).toEqual({
      oidc: [],
      admins: { groups: [] },
      session: { ttlMs: 12 * 3_600_000, refreshTtlMs: 7 * 86_400_000 },
    });
  });

  it('reads an issuer with every option, applying defaults and resolving file: references', () => {
    const c = parseConfig(
      `identities:
  oidc:
    - name: corp
      issuer: https://login.example.com/realms/corp
      clientId: jitgate
      clientSecret: file:secrets/oidc
      groupMap: { "/Engineering": [engineering, staff], ops: platform }
      serviceAccounts:
        reporting-agent: { name: reporting-bot, groups: [analytics] }
        bare: { name: bare-bot }
    - name: partner
      issuer: http://127.0.0.1:9000
      clientId: gw
      audience: api://jitgate
      groupsClaim: realm_access.roles
      userClaim: email
      scopes: [openid, groups]
      jwksRefreshCooldown: 0s
  admins: { groups: [platform-admins] }
  session: { ttl: 1h, refreshTtl: 30d }
`,
      'jitgate.yaml',
      BASE,
    );
    expect(c.identities).toEqual({
      oidc: [
        {
          name: 'corp',
          issuer: 'https://login.example.com/realms/corp',
          clientId: 'jitgate',
          clientSecret: 'file:/srv/jitgate/secrets/oidc',
          audience: 'jitgate',
          groupsClaim: 'groups',
          groupMap: { '/Engineering': ['engineering', 'staff'], ops: ['platform'] },
          serviceAccounts: { 'reporting-agent': { name: 'reporting-bot', groups: ['analytics'] }, bare: { name: 'bare-bot', groups: [] } },
          scopes: ['openid', 'profile', 'email'],
          jwksCooldownMs: 30_000,
        },
        {
          name: 'partner',
          issuer: 'http://127.0.0.1:9000',
          clientId: 'gw',
          audience: 'api://jitgate',
          groupsClaim: 'realm_access.roles',
          userClaim: 'email',
          groupMap: {},
          serviceAccounts: {},
          scopes: ['openid', 'groups'],
          jwksCooldownMs: 0,
        },
      ],
      admins: { groups: ['platform-admins'] },
      session: { ttlMs: 3_600_000, refreshTtlMs: 30 * 86_400_000 },
    });
  });

  it('reports every problem with its position, never echoing a plain secret', () => {
    const found = problems(`identities:
  oidc:
    - name: corp
      issuer: http://idp.example.com
      clientId: jitgate
      clientSecret: hunter2hunter2
      groupsClaim: [groups]
      scopes: [profile]
      serviceAccounts:
        jitgate: { name: self }
    - name: corp
      issuer: https://idp.example.com?x=1
      clientID: typo
  admins: { groups: [platform admins] }
  session: { ttl: 8h, refreshTtl: 1h, idle: 5m }
`);
    expect(found).toEqual([
      'jitgate.yaml:4:15: identities.oidc[0].issuer: the issuer must use https:// (plain http:// only for 127.0.0.1, [::1] or localhost)',
      'jitgate.yaml:6:21: identities.oidc[0].clientSecret: a plain client secret is not allowed in the config; use a secret reference instead: env:NAME, file:PATH or secret:NAME',
      'jitgate.yaml:7:20: identities.oidc[0].groupsClaim: expected a claim name such as groups or preferred_username, got a list',
      'jitgate.yaml:8:15: identities.oidc[0].scopes: the scopes must include openid (the login needs an ID token)',
      `jitgate.yaml:10:9: identities.oidc[0].serviceAccounts.jitgate: the gateway's own client (clientId "jitgate") cannot be a service account: every user's token names it`,
      'jitgate.yaml:11:7: identities.oidc[1].clientId: required: expected the client id the gateway has at this issuer',
      'jitgate.yaml:11:13: identities.oidc[1].name: duplicate issuer name "corp" (first defined at line 3)',
      'jitgate.yaml:12:15: identities.oidc[1].issuer: the issuer URL must not have a query, a fragment or credentials',
      'jitgate.yaml:13:7: identities.oidc[1].clientID: unknown key "clientID"; did you mean "clientId"? (allowed here: name, issuer, clientId, clientSecret, audience, groupsClaim, userClaim, groupMap, serviceAccounts, scopes, jwksRefreshCooldown)',
      'jitgate.yaml:14:21: identities.admins.groups: item 0: expected a group name without spaces or commas, got "platform admins"',
      'jitgate.yaml:15:35: identities.session.refreshTtl: must be at least the session ttl (8h): a login cannot end before its first session',
      'jitgate.yaml:15:39: identities.session.idle: unknown key "idle" (allowed here: ttl, refreshTtl)',
    ]);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('bounds session lifetimes', () => {
    expect(problems('identities: { session: { ttl: 30s } }')).toEqual([
      'jitgate.yaml:1:31: identities.session.ttl: must be at least 1m, got "30s"',
    ]);
    expect(problems('identities: { session: { refreshTtl: 100d } }')).toEqual([
      'jitgate.yaml:1:38: identities.session.refreshTtl: must be at most 90d, got "100d"',
    ]);
  });
});
