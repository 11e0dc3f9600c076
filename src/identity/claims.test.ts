import { describe, expect, it } from 'vitest';
import { groupValues, identityFromAccessToken, identityFromUserClaims, looksLikeClientToken, mapGroups, userFromClaims } from './claims.js';

const rules = {
  groupsClaim: 'groups',
  groupMap: { 'eng-team': ['engineering'], ops: ['platform', 'oncall'] },
  serviceAccounts: { 'reporting-agent': { name: 'reporting-bot', groups: ['reporting'] } },
};

describe('claims', () => {
  it.each([
    [{ preferred_username: 'alice', email: 'a@x', sub: 's1' }, undefined, 'alice'],
    [{ email: 'a@x', sub: 's1' }, undefined, 'a@x'],
    [{ sub: 's1' }, undefined, 's1'],
    [{ preferred_username: '', email: 'a@x' }, undefined, 'a@x'],
    [{ upn: 'alice@corp', preferred_username: 'x' }, 'upn', 'alice@corp'],
    [{ preferred_username: 'x' }, 'upn', undefined],
    [{ ext: { login: 'nested' } }, 'ext.login', 'nested'],
  ])('user of %j with userClaim %s is %s', (claims, userClaim, expected) => {
    expect(userFromClaims(claims, userClaim)).toBe(expected);
  });

  it.each([
    [{ groups: ['a', 'b', '', 3] }, 'groups', ['a', 'b']],
    [{ groups: 'solo' }, 'groups', ['solo']],
    [{ groups: { a: 1 } }, 'groups', []],
    [{ realm_access: { roles: ['r1'] } }, 'realm_access.roles', ['r1']],
    [{ 'https://corp/groups': ['g'] }, 'https://corp/groups', ['g']],
    [{}, 'groups', []],
  ])('groups of %j from %s', (claims, claim, expected) => {
    expect(groupValues(claims, claim)).toEqual(expected);
  });

  it('maps group values through groupMap, keeps unmapped ones, dedupes and sorts', () => {
    expect(mapGroups(['ops', 'eng-team', 'zeta', 'platform'], rules.groupMap)).toEqual(['engineering', 'oncall', 'platform', 'zeta']);
    expect(mapGroups(['toString', 'constructor'], rules.groupMap)).toEqual(['constructor', 'toString']);
  });

  it('a configured client is its service account, with its groups and any groups the token carries', () => {
    expect(identityFromAccessToken({ sub: 'reporting-agent', client_id: 'reporting-agent', groups: ['eng-team'] }, rules)).toEqual({
      ok: true,
      identity: { user: 'svc:reporting-bot', groups: ['engineering', 'reporting'], kind: 'service', subject: 'reporting-agent' },
    });
    expect(identityFromAccessToken({ azp: 'reporting-agent', sub: 'uuid-1' }, rules)).toMatchObject({
      ok: true,
      identity: { user: 'svc:reporting-bot', kind: 'service' },
    });
  });

  it('a token for a client that is not configured is refused, however it spells it', () => {
    for (const claims of [
      { sub: 'rogue', client_id: 'rogue' },
      { client_id: 'rogue' },
      { sub: 'x@clients', azp: 'rogue', gty: 'client-credentials' },
      { sub: 'uuid', azp: 'rogue', preferred_username: 'service-account-rogue' },
    ]) {
      expect(looksLikeClientToken(claims)).toBe(true);
      expect(identityFromAccessToken(claims, rules)).toEqual({ ok: false, reason: 'client "rogue" is not a configured service account' });
    }
  });

  it('a person: name from the claims, mapped groups', () => {
    expect(identityFromAccessToken({ sub: 'u1', azp: 'jitgate', preferred_username: 'alice', groups: ['eng-team'] }, rules)).toEqual({
      ok: true,
      identity: { user: 'alice', groups: ['engineering'], kind: 'human', subject: 'u1' },
    });
    expect(identityFromUserClaims({ groups: [] }, { ...rules, userClaim: 'upn' })).toEqual({
      ok: false,
      reason: 'the token has no upn claim to name the user',
    });
  });

  it('a person cannot be named into the API keys’ or service accounts’ namespace', () => {
    for (const name of ['apikey:ci-deploy', 'svc:reporting-bot', 'APIKEY:x', 'Svc:x']) {
      expect(identityFromUserClaims({ sub: 'u2', preferred_username: name }, rules)).toEqual({
        ok: false,
        reason: `the user name ${JSON.stringify(name)} starts with a prefix reserved for API keys and service accounts`,
      });
    }
  });
});
