import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';

describe('guardrails config', () => {
  it('builds rules with defaults', () => {
    const c = parseConfig('guardrails:\n  - name: ro\n    deny: { readOnly: true }\n', 'jitgate.yaml', '/srv');
    expect(c.guardrails).toEqual([
      {
        name: 'ro',
        connections: ['*'],
        groups: ['*'],
        except: [],
        deny: { kinds: [], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: true },
      },
    ]);
  });

  it('reports an unknown statement kind and an unknown key at their positions', () => {
    const text = 'guardrails:\n  - name: x\n    deny: { kinds: [select, dorp] , tablez: [a] }\n';
    let error: unknown;
    try {
      parseConfig(text, 'jitgate.yaml', '/srv');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/jitgate\.yaml:3:\d+: guardrails\[0\]\.deny\.kinds: item 1: expected one of select, .*got "dorp"/);
    expect(message).toMatch(/guardrails\[0\]\.deny.*tablez/);
  });
});

describe('guardrails config: settings, COPY ends and allowed code', () => {
  it('reads deny.settings, deny.copy and allow', () => {
    const text =
      'guardrails:\n  - name: finer\n    deny: { settings: [Role, session_authorization], copy: [PROGRAM, file] }\n    allow: { functions: ["app.*"], do: true }\n';
    const [g] = parseConfig(text, 'jitgate.yaml', '/srv').guardrails!;
    expect(g?.deny.settings).toEqual(['role', 'session_authorization']);
    expect(g?.deny.copy).toEqual(['program', 'file']);
    expect(g?.allow).toEqual({ functions: ['app.*'], do: true, code: false });
  });

  it('refuses an unknown COPY end', () => {
    expect(() => parseConfig('guardrails:\n  - name: x\n    deny: { copy: [pipe] }\n', 'jitgate.yaml', '/srv')).toThrow(
      /deny\.copy: item 0: expected one of program, file, stdin, stdout, got "pipe"/,
    );
  });
});
