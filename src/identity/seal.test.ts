import { describe, expect, it } from 'vitest';
import { openUpstream, sealUpstream } from './seal.js';

describe('sealing the IdP refresh token under the gateway refresh token', () => {
  it('opens only with the same refresh token and family, and does not contain the secret', () => {
    const sealed = sealUpstream('idp-refresh-secret', 'jgr_one', 'login_a');
    expect(sealed.includes(Buffer.from('idp-refresh-secret'))).toBe(false);
    expect(openUpstream(sealed, 'jgr_one', 'login_a')).toBe('idp-refresh-secret');
    expect(openUpstream(sealed, 'jgr_two', 'login_a')).toBeUndefined();
    expect(openUpstream(sealed, 'jgr_one', 'login_b')).toBeUndefined();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(openUpstream(tampered, 'jgr_one', 'login_a')).toBeUndefined();
    expect(openUpstream(Buffer.alloc(3), 'jgr_one', 'login_a')).toBeUndefined();
  });

  it('uses a fresh IV every time', () => {
    expect(sealUpstream('s', 'jgr_x', 'f').equals(sealUpstream('s', 'jgr_x', 'f'))).toBe(false);
  });
});
