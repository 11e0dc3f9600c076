import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './load.js';
import { policyFor, recordingSettings } from './recording.js';

const BASE = '/srv/jitgate';
const CONNECTIONS = `connections:
  - { name: prod, host: db, database: app, user: gw }
  - { name: scratch, host: db, database: tmp, user: gw }
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

describe('recording and audit configuration', () => {
  it('reads defaults, per-connection policies, limits and paths', () => {
    const c = parseConfig(
      `${CONNECTIONS}recording:
  dir: recs
  retention: 30d
  connections:
    scratch: { mode: best-effort, retention: 7d }
  limits: { rowsPerStatement: 50 }
audit:
  auditors: [auditors, security]
  signingKey: /etc/jitgate/audit.key
  checkpointInterval: 5m
  checkpointEvery: 20
  anchor: { file: /var/lib/jitgate-anchor/head.json }
`,
      'jitgate.yaml',
      BASE,
    );
    const r = c.recording!;
    expect(r.dir).toBe('/srv/jitgate/recs');
    expect(policyFor(r, 'prod')).toEqual({ mode: 'required', retentionMs: 30 * 86_400_000 });
    expect(policyFor(r, 'scratch')).toEqual({ mode: 'best-effort', retentionMs: 7 * 86_400_000 });
    expect(r.limits).toEqual({ rowsPerStatement: 50, rowsPerSession: 100_000, valueBytes: 4096, statementBytes: 1024 * 1024 });
    expect(c.audit).toEqual({
      auditors: ['auditors', 'security'],
      signingKey: '/etc/jitgate/audit.key',
      checkpointIntervalMs: 300_000,
      checkpointEveryEntries: 20,
      anchorFile: '/var/lib/jitgate-anchor/head.json',
    });
  });

  it('takes fsyncInterval as a duration or 0 (fsync at every statement boundary)', () => {
    const at = (v: string) => parseConfig(`recording: { fsyncInterval: ${v} }\n`, 'jitgate.yaml', BASE).recording!.fsyncIntervalMs;
    expect(at('0')).toBe(0);
    expect(at('"0"')).toBe(0);
    expect(at('20ms')).toBe(20);
    expect(problems('recording: { fsyncInterval: often }\n')).toEqual([
      'jitgate.yaml:1:29: recording.fsyncInterval: expected a duration such as 500ms, 30s, 15m, 1h or 1h30m, got "often"',
    ]);
  });

  it('defaults configurations built in code to <dataDir>/recordings', () => {
    expect(recordingSettings({ dataDir: '/d' })).toMatchObject({ enabled: true, dir: '/d/recordings', defaults: { mode: 'required' } });
  });

  it('reports unknown connections, bad modes and bad durations with their positions', () => {
    expect(
      problems(`${CONNECTIONS}recording:
  mode: sometimes
  retention: 90
  connections:
    prdo: { mode: best-effort }
  limits: { rowsPerStatement: -1, colour: red }
`),
    ).toEqual([
      'jitgate.yaml:5:9: recording.mode: expected "required" or "best-effort", got "sometimes"',
      'jitgate.yaml:6:14: recording.retention: expected a duration such as 500ms, 30s, 15m, 1h or 1h30m, got 90 (add a unit, e.g. 90d)',
      'jitgate.yaml:8:5: recording.connections.prdo: no connection named "prdo" (configured: prod, scratch)',
      expect.stringMatching(
        /^jitgate\.yaml:9:31: recording\.limits\.rowsPerStatement: expected an integer between 0 and 10000000, got -1$/,
      ),
      expect.stringMatching(/recording\.limits.*colour/),
    ]);
  });
});
