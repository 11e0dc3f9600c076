import { describe, expect, it } from 'vitest';
import { detect, ibanValid, luhnValid, redactFindings } from './detectors.js';
import { applyStrategy, maskDigits, maskEmail, partial } from './strategies.js';

const ctx = { hashKey: Buffer.from('k'.repeat(32)) };

describe('strategies', () => {
  it.each([
    [{ kind: 'redact' } as const, 'secret', '[redacted]'],
    [{ kind: 'null' } as const, 'secret', null],
    [{ kind: 'partial', keepLast: 4 } as const, '4111111111111111', '************1111'],
    [{ kind: 'partial', keepLast: 4 } as const, 'abc', '***'],
    [{ kind: 'email' } as const, 'jane.doe@example.com', 'j*******@example.com'],
    [{ kind: 'phone' } as const, '+1 415-555-0134', '+X XXX-XXX-XX34'],
    [{ kind: 'card' } as const, '4111 1111 1111 1111', 'XXXX XXXX XXXX 1111'],
  ])('%o masks %s as %s', (strategy, value, expected) => {
    expect(applyStrategy(strategy, value, ctx)).toBe(expected);
  });

  it('hashes deterministically under one key and differently under another', () => {
    const a = applyStrategy({ kind: 'hash' }, 'alice@example.com', ctx);
    expect(a).toBe(applyStrategy({ kind: 'hash' }, 'alice@example.com', ctx));
    expect(a).not.toBe(applyStrategy({ kind: 'hash' }, 'bob@example.com', ctx));
    expect(a).not.toBe(applyStrategy({ kind: 'hash' }, 'alice@example.com', { hashKey: Buffer.from('x'.repeat(32)) }));
    expect(a).not.toContain('alice');
  });

  it('keeps shapes in format-preserving masks', () => {
    expect(maskEmail('x@y.io')).toBe('x*@y.io');
    expect(maskDigits('12-34', 0)).toBe('XX-XX');
    expect(partial('ünïcødé', 2)).toBe('*****dé');
  });
});

describe('detectors', () => {
  const cases: Array<[string, string, string[]]> = [
    ['email', 'contact jane.doe+x@mail.example.co.uk today', ['email']],
    ['card (Luhn-valid)', 'card 4111 1111 1111 1111 on file', ['card']],
    ['card (Luhn-invalid is not a card)', 'order 4111 1111 1111 1112', []],
    ['IBAN (checksum)', 'pay to DE89 3704 0044 0532 0130 00 please', ['iban']],
    ['IBAN with a wrong checksum', 'DE00 3704 0044 0532 0130 00', []],
    ['US SSN', 'ssn 123-45-6789', ['ssn']],
    ['phone', 'call +1 (415) 555-0134', ['phone']],
    ['IPv4', 'from 10.1.2.3 at noon', ['ip']],
    ['IPv6', 'peer 2001:db8::8a2e:370:7334', ['ip']],
    ['JWT', 'auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.sig_nature-x', ['jwt']],
    ['AWS key id', 'AKIAIOSFODNN7EXAMPLE is the key', ['cloud_key']],
    ['private key', 'k=-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----', ['private_key']],
    ['nothing sensitive', 'select 42 rows in 1.5 s on 2026-01-01', []],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    expect(detect(text).map((f) => f.detector)).toEqual(expected);
  });

  it('redacts every finding in place and reports them', () => {
    const r = redactFindings('mail jane@example.com or call +44 20 7946 0958');
    expect(r.text).toBe('mail [email] or call [phone]');
    expect(r.findings).toHaveLength(2);
  });

  it('honours the enabled list', () => {
    expect(detect('jane@example.com 10.0.0.1', ['ip']).map((f) => f.detector)).toEqual(['ip']);
  });

  it('checks checksums', () => {
    expect(luhnValid('4242424242424242')).toBe(true);
    expect(luhnValid('4242424242424241')).toBe(false);
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
  });
});
