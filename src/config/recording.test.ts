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

  it('reads object storage for recordings, with credentials as secret references', () => {
    const storage = (yaml: string) => parseConfig(yaml, 'jitgate.yaml', BASE).recording!.storage;
    expect(
      storage(`recording:
  storage:
    type: s3
    bucket: jitgate-recordings
    prefix: prod/
    endpoint: https://minio.internal:9000/
    credentials: { accessKeyId: env:S3_KEY, secretAccessKey: file:secrets/s3 }
`),
    ).toEqual({
      type: 's3',
      bucket: 'jitgate-recordings',
      prefix: 'prod/',
      endpoint: 'https://minio.internal:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'env:S3_KEY', secretAccessKey: 'file:/srv/jitgate/secrets/s3' },
    });
    // AWS itself: virtual-hosted buckets, the SDK's own credential chain.
    expect(storage('recording: { storage: { type: s3, bucket: recs, region: eu-west-1 } }\n')).toEqual({
      type: 's3',
      bucket: 'recs',
      prefix: '',
      endpoint: null,
      region: 'eu-west-1',
      forcePathStyle: false,
      credentials: null,
    });
    const local = parseConfig('recording: { storage: { type: local, dir: /var/recs } }\n', 'jitgate.yaml', BASE).recording!;
    expect(local.storage).toEqual({ type: 'local' });
    expect(local.dir).toBe('/var/recs');
    expect(recordingSettings({ dataDir: '/d' }).storage).toEqual({ type: 'local' });
  });

  it('refuses plain secrets, bad buckets and endpoints, unknown types and two recording directories', () => {
    expect(
      problems('recording: { storage: { type: s3, bucket: recs, credentials: { accessKeyId: AKIA123, secretAccessKey: env:S } } }\n'),
    ).toEqual([
      expect.stringMatching(
        /recording\.storage\.credentials\.accessKeyId: a plain secret is not allowed in the config; use a secret reference/,
      ),
    ]);
    expect(problems('recording: { storage: { type: s3, bucket: My_Bucket, endpoint: ftp://x } }\n')).toEqual([
      expect.stringMatching(/recording\.storage\.bucket: expected a bucket name .*got "My_Bucket"/),
      expect.stringMatching(/recording\.storage\.endpoint: expected an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x"/),
    ]);
    expect(problems('recording: { storage: { type: gcs, bucket: recs } }\n')).toEqual([
      expect.stringMatching(/recording\.storage\.type: expected "local" or "s3", got "gcs"/),
    ]);
    expect(problems('recording: { dir: a, storage: { type: local, dir: b } }\n')).toEqual([
      expect.stringMatching(/recording\.storage\.dir: set either recording\.dir or recording\.storage\.dir, not both/),
    ]);
  });
});
