import { describe, expect, it } from 'vitest';
import { loopbackRedirectProblem, pkceChallenge } from './logins.js';

describe('login helpers', () => {
  it.each([
    ['http://127.0.0.1:49152/callback', undefined],
    ['http://[::1]:8000/callback', undefined],
    ['http://localhost:8000/cb', undefined],
    ['http://127.0.0.1/callback', 'redirect_uri must be http://127.0.0.1:PORT/... (the loopback server of `jitgate login`)'],
    ['https://127.0.0.1:8000/callback', 'redirect_uri must be http://127.0.0.1:PORT/... (the loopback server of `jitgate login`)'],
    ['http://evil.example:8000/callback', 'redirect_uri must be http://127.0.0.1:PORT/... (the loopback server of `jitgate login`)'],
    ['http://127.0.0.1:8000/cb#x', 'redirect_uri must not have a fragment or credentials'],
    ['http://u:p@127.0.0.1:8000/cb', 'redirect_uri must not have a fragment or credentials'],
    ['not a url', 'redirect_uri is not a URL'],
  ])('redirect %s', (uri, problem) => {
    expect(loopbackRedirectProblem(uri)).toBe(problem);
  });

  it('PKCE S256 matches RFC 7636 appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
});
