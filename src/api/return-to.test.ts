import { describe, expect, it } from 'vitest';
import { safeReturnTo } from './return-to.js';

describe('safeReturnTo', () => {
  it('keeps paths on this gateway, with query and fragment', () => {
    for (const [given, kept] of [
      ['/', '/'],
      ['/approvals', '/approvals'],
      ['/sessions/abc?tab=events#e12', '/sessions/abc?tab=events#e12'],
      ['/a/../b', '/b'],
      ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
      ['/reviews?next=//evil.example', '/reviews?next=//evil.example'],
    ] as const) {
      expect(safeReturnTo(given), given).toBe(kept);
    }
  });

  it('sends everything that could leave the gateway to /', () => {
    const payloads = [
      null,
      undefined,
      '',
      'approvals',
      '//evil.example',
      '///evil.example',
      '/\\evil.example',
      '\\\\evil.example',
      '/\t/evil.example/phish',
      '/\n/evil.example',
      '/\r\n/evil.example',
      '/\u0000/evil.example',
      '/ /evil.example',
      '/\u00a0/evil.example',
      '/\u202e/evil.example',
      '/\u200b/evil.example',
      '/\ufeff/evil.example',
      '/\u0085/evil.example',
      'https:evil.example',
      'https://evil.example',
      'http:/evil.example',
      'javascript:alert(1)',
      ' /approvals',
      '/.//evil.example',
      '/./\\evil.example',
      '/approvals\r\nSet-Cookie: x=1',
      '/' + 'a'.repeat(3000),
    ];
    for (const p of payloads) expect(safeReturnTo(p), JSON.stringify(p)).toBe('/');
    // The same payloads as they arrive percent-encoded in the query string, decoded once by the router.
    for (const encoded of [
      '%2F%09%2Fevil.example%2Fphish',
      '%2F%0A%2Fevil.example',
      '%2F%5Cevil.example',
      '%2F%2Fevil.example',
      'https%3Aevil.example',
      '%2F%E2%80%AE%2Fevil.example',
    ]) {
      const decoded = new URLSearchParams(`returnTo=${encoded}`).get('returnTo');
      expect(safeReturnTo(decoded), encoded).toBe('/');
    }
  });

  it('resolves what it keeps on this gateway’s origin', () => {
    for (const p of ['/x', '/a/b?c=d', '/%2e%2e/%2e%2e/x', '/x#//evil.example']) {
      const kept = safeReturnTo(p);
      expect(new URL(kept, 'http://gw.test').origin).toBe('http://gw.test');
    }
  });
});
