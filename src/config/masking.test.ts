import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

function problems(text: string): string {
  try {
    parseConfig(text, 'jitgate.yaml', '/srv');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a config error');
}

describe('masking config', () => {
  it('builds rules and detectors with defaults', () => {
    const c = parseConfig(
      'masking:\n  rules:\n    - name: pii\n      except: [dba]\n      columns:\n        users.email: email\n        "public.users.ssn": { strategy: partial, keep: 2 }\n        ssn2: { strategy: partial }\n  detectors:\n    - use: all\n    - connections: [prod]\n      use: [email, card]\n',
      'jitgate.yaml',
      '/srv',
    );
    expect(c.masking?.rules).toEqual([
      {
        name: 'pii',
        connections: ['*'],
        groups: ['*'],
        except: ['dba'],
        columns: [
          { pattern: 'users.email', strategy: { kind: 'email' } },
          { pattern: 'public.users.ssn', strategy: { kind: 'partial', keepLast: 2 } },
          { pattern: 'ssn2', strategy: { kind: 'partial', keepLast: 4 } },
        ],
      },
    ]);
    expect(c.masking?.detectors[0]!.detectors).toContain('private_key');
    expect(c.masking?.detectors[1]).toEqual({ connections: ['prod'], detectors: ['email', 'card'], except: [] });
  });

  it('reports a wrong strategy, a bad pattern, a bad keep, an unknown detector and a plain hash key at their positions', () => {
    const m = problems(
      'masking:\n  hashKey: hunter2\n  rules:\n    - name: x\n      columns:\n        users.email: scramble\n        a.b.c.d: redact\n        t.c: { strategy: hash, keep: 3 }\n    - name: y\n      columns: { t.c: { strategy: partial, keep: -1 } }\n  detectors:\n    - use: [email, dna]\n',
    );
    expect(m).toMatch(/jitgate\.yaml:2:\d+: masking\.hashKey: a plain key is not allowed/);
    expect(m).toMatch(
      /masking\.rules\[0\]\.columns: column "users\.email": expected a strategy \(redact, partial, hash, null, email, phone, card\), got "scramble"/,
    );
    expect(m).toMatch(/masking\.rules\[1\]\.columns: column "t\.c": keep: expected an integer between 0 and 64, got -1/);
    expect(m).toMatch(/masking\.detectors\[0\]\.use: item 1: expected one of email, .*got "dna"/);
  });

  it('reports an unknown key in a rule', () => {
    expect(problems('masking:\n  rules:\n    - name: x\n      colums: { a: redact }\n')).toMatch(/masking\.rules\[0\].*colums/);
  });
});
