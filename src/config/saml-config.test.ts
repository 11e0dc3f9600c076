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

describe('identities.saml in jitgate.yaml', () => {
  it('reads providers from a URL or a file, with defaults', () => {
    const c = parseConfig(
      `listeners:
  http: { publicUrl: "https://jitgate.example.com" }
identities:
  saml:
    - name: corp-saml
      metadata: https://idp.example.com/saml/metadata
      groupMap: { "cn=eng": [engineering] }
    - name: lab
      metadata: idp/lab-metadata.xml
      groupsAttribute: memberOf
      userAttribute: email
      requireSigned: both
      clockSkew: 2m
      signInTtl: 1h
      entityId: urn:jitgate:lab
`,
      'jitgate.yaml',
      BASE,
    );
    expect(c.identities.saml).toEqual([
      {
        name: 'corp-saml',
        metadata: { url: 'https://idp.example.com/saml/metadata' },
        groupsAttribute: 'groups',
        groupMap: { 'cn=eng': ['engineering'] },
        requireSigned: 'assertion',
        clockSkewMs: 60_000,
        signInTtlMs: 12 * 3_600_000,
      },
      {
        name: 'lab',
        metadata: { file: '/srv/jitgate/idp/lab-metadata.xml' },
        entityId: 'urn:jitgate:lab',
        userAttribute: 'email',
        groupsAttribute: 'memberOf',
        groupMap: {},
        requireSigned: 'both',
        clockSkewMs: 120_000,
        signInTtlMs: 3_600_000,
      },
    ]);
  });

  it('explains what is wrong, with the path of each problem', () => {
    const p = problems(`identities:
  oidc:
    - { name: corp, issuer: https://login.example.com, clientId: jitgate }
  saml:
    - { name: corp, metadata: https://idp.example.com/md }
    - { name: plain, metadata: "http://idp.example.com/md" }
    - { name: unsigned, metadata: md.xml, requireSigned: none }
    - { name: skewed, metadata: md.xml, clockSkew: 1h }
    - { name: long, metadata: md.xml, signInTtl: 30d }
    - { name: nometa }
    - { name: long, metadata: md.xml }
`).join('\n');
    expect(p).toContain('identities.saml[0].name: the name "corp" is already an OIDC issuer\'s');
    expect(p).toContain('identities.saml[1].metadata: a metadata URL must use https://');
    expect(p).toContain('identities.saml[2].requireSigned: expected assertion, response or both, got "none"');
    expect(p).toContain('identities.saml[3].clockSkew: must be at most 5m');
    expect(p).toContain('identities.saml[4].signInTtl: must be at most session.refreshTtl (7d)');
    expect(p).toContain('identities.saml[5].metadata: required: expected the IdP metadata');
    expect(p).toContain('identities.saml[6].name: duplicate SAML provider name "long"');
  });

  it('outside development mode, needs the public URL its SP metadata and ACS derive from', () => {
    const saml = `identities:\n  saml:\n    - { name: corp, metadata: md.xml }\n`;
    expect(problems(saml).join('\n')).toContain(
      "identities.saml: SAML sign-in needs the gateway's public URL: set listeners.http.publicUrl",
    );
    expect(
      parseConfig(`listeners:\n  http: { publicUrl: "https://jitgate.example.com" }\n${saml}`, 'jitgate.yaml', BASE).identities.saml,
    ).toHaveLength(1);
  });
});
