/**
 * The `recording:` and `audit:` sections of `jitgate.yaml`. Kept apart from ./schema.ts (like
 * ./identities.ts) so recording can grow without touching the rest of the file's shape; schema.ts
 * plugs the schemas, the cross-check and the builders into the whole.
 *
 * ```yaml
 * recording:
 *   dir: /var/lib/jitgate/recordings   # default <dataDir>/recordings
 *   mode: required                     # every connection: required (fail closed) | best-effort
 *   retention: 90d                     # how long recordings of ended sessions are kept
 *   connections:                       # per connection, overriding mode and/or retention
 *     scratch: { mode: best-effort, retention: 7d }
 *   limits:                            # what one recording may hold; the rest is counted, marked truncated
 *     rowsPerStatement: 1000
 *     rowsPerSession: 100000
 *     valueBytes: 4096                 # longer values (result cells, bound parameters) are cut
 *     statementBytes: 1048576          # longer statement texts are cut
 *   retentionCheck: 1h                 # how often expired recordings are looked for
 *   fsyncInterval: 50ms                # least time between fsyncs of one recording (0: every statement)
 *   storage:                           # where finished recordings are kept (default: local files in dir)
 *     type: s3                         # local | s3 (any S3-compatible store: AWS S3, MinIO, Ceph, GCS)
 *     bucket: jitgate-recordings
 *     prefix: prod/                    # prepended to every object key
 *     endpoint: https://minio.internal:9000   # omit for AWS
 *     region: eu-west-1                # default us-east-1
 *     forcePathStyle: true             # bucket in the path, not the host (default: true with an endpoint)
 *     credentials:                     # secret references; omit to use the AWS default chain
 *       accessKeyId: env:S3_ACCESS_KEY_ID
 *       secretAccessKey: file:/run/secrets/s3-secret
 * audit:
 *   auditors: [auditors]               # groups that may read every session's recording
 *   signingKey: audit-signing.key      # Ed25519 private key (PEM); generated on first start
 *   checkpointInterval: 1m             # how often the chain's head is signed (if anything is new)
 *   checkpointEvery: 100               # ...and after this many entries
 *   anchor:                            # the signed head, kept outside the data directory
 *     file: /var/lib/jitgate-anchor/audit-head.json
 * ```
 *
 * `mode: required` means a session whose recording cannot be written has its statements refused
 * (reason `recording_unavailable`); `best-effort` lets them run unrecorded, with a warning and an
 * audit entry.
 *
 * With `storage.type: s3` a recording is still written to `dir` while its session lives (durable at
 * every statement boundary, whatever the network does); once finished and compressed it is uploaded
 * and its local file removed. `storage: { type: local, dir }` is another way to write `dir`.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { Bad, bool, describeValue as describe, duration as durationIn, isObj, leaf, text } from './leaf.js';
import type { SchemaProblem } from './schema.js';
import { SECRET_REF_HINT, tryParseSecretRef } from '../core/secret-ref.js';

export type RecordingMode = 'required' | 'best-effort';

export interface RecordingPolicy {
  mode: RecordingMode;
  /** Recordings of ended sessions are deleted this long after the session ended (unless on hold). */
  retentionMs: number;
}

export interface RecordingLimits {
  rowsPerStatement: number;
  rowsPerSession: number;
  /** Longest result value or bound parameter kept, in bytes (UTF-8); longer ones are cut and marked. */
  valueBytes: number;
  /** Longest statement text kept, in bytes; a longer one is cut and marked. */
  statementBytes: number;
}

export interface RecordingConfig {
  /** Off only by explicit choice (`enabled: false`); then nothing is recorded and nothing fails closed. */
  enabled: boolean;
  /** Absolute directory of the local recording files. */
  dir: string;
  /** Policy of connections not listed in `connections`. */
  defaults: RecordingPolicy;
  connections: Record<string, RecordingPolicy>;
  limits: RecordingLimits;
  /** How often the retention job runs. */
  retentionCheckMs: number;
  /**
   * Least time between two fsyncs of one recording (0: at every statement boundary). Every boundary
   * is written to the file at once, so a gateway crash loses at most the statement in flight; this
   * bounds what a machine crash can lose, at a bounded cost for busy sessions.
   */
  fsyncIntervalMs: number;
  storage: RecordingStorage;
}

/** Where finished recordings are kept. */
export type RecordingStorage = { type: 'local' } | S3StorageConfig;

export interface S3StorageConfig {
  type: 's3';
  bucket: string;
  /** Prepended to each recording's location to make its object key ('' for none). */
  prefix: string;
  /** An S3-compatible service's URL; null for AWS itself. */
  endpoint: string | null;
  region: string;
  forcePathStyle: boolean;
  /** Secret references; null: the AWS SDK's default credential chain (environment, instance role). */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
}

export interface AuditConfig {
  /** Members of these groups may read every session's recording (admins may as well). */
  auditors: string[];
  /** Absolute path of the Ed25519 private key (PEM) that signs audit checkpoints. */
  signingKey: string;
  checkpointIntervalMs: number;
  /** Sign after this many entries as well (0: only on the interval). */
  checkpointEveryEntries: number;
  /**
   * Absolute path of the file the last signed checkpoint is written to (atomically), meant to be
   * outside the data directory; `jitgate audit verify` fails when the log no longer reaches it.
   */
  anchorFile: string | null;
}

export const RECORDING_DEFAULTS = {
  dirName: 'recordings',
  mode: 'required' as RecordingMode,
  retentionMs: 90 * 86_400_000,
  limits: { rowsPerStatement: 1000, rowsPerSession: 100_000, valueBytes: 4096, statementBytes: 1024 * 1024 } satisfies RecordingLimits,
  retentionCheckMs: 3_600_000,
  fsyncIntervalMs: 50,
};

export const AUDIT_DEFAULTS = {
  signingKeyName: 'audit-signing.key',
  checkpointIntervalMs: 60_000,
  checkpointEveryEntries: 100,
};

const MAX_RETENTION_MS = 100 * 366 * 86_400_000;

const path = () => text('a file path');
/** Retention-scale durations: a bare number is hinted in days. */
const duration = (min: number, max: number) => durationIn(min, max, 'd');
const mode = () => leaf('"required" or "best-effort"', (v) => (v === 'required' || v === 'best-effort' ? (v as RecordingMode) : undefined));

/** `0` (as a number or "0") or a duration up to `max`. */
function zeroOrDuration(max: number) {
  const d = duration(0, max);
  return z.unknown().transform((v, ctx) => {
    if (v === 0 || v === '0') return 0;
    const r = d.safeParse(v);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
    return z.NEVER;
  });
}

function intBetween(min: number, max: number) {
  return leaf(`an integer between ${min} and ${max}`, (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined,
  );
}

const groupList = () =>
  leaf('a list of group names', (v) => {
    if (!Array.isArray(v)) return undefined;
    for (const [i, g] of v.entries()) {
      if (typeof g !== 'string' || g.trim() === '') return new Bad(`item ${i}: expected a group name, got ${describe(g)}`);
    }
    return [...new Set(v as string[])];
  });

const policySchema = z.strictObject({ mode: mode().optional(), retention: duration(60_000, MAX_RETENTION_MS).optional() });

const secretRef = () =>
  leaf(
    SECRET_REF_HINT,
    (v) => {
      if (typeof v !== 'string') return undefined;
      const r = tryParseSecretRef(v);
      if (r.ok) return v;
      return new Bad(/^(env|file|secret):/.test(v) ? r.problem : `a plain secret is not allowed in the config; use ${SECRET_REF_HINT}`);
    },
    { secret: true },
  );

const bucketName = () =>
  leaf('a bucket name (3-63 lowercase letters, digits, dots or hyphens)', (v) =>
    typeof v === 'string' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v) ? v : undefined,
  );

const endpointUrl = () =>
  leaf('an http:// or https:// URL', (v) => {
    if (typeof v !== 'string') return undefined;
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:' ? v.replace(/\/+$/, '') : undefined;
    } catch {
      return undefined;
    }
  });

const localStorageSchema = z.strictObject({ type: z.literal('local'), dir: path().optional() });
const s3StorageSchema = z.strictObject({
  type: z.literal('s3'),
  bucket: bucketName(),
  prefix: text('a key prefix').optional(),
  endpoint: endpointUrl().optional(),
  region: text('a region name').optional(),
  forcePathStyle: bool().optional(),
  credentials: z.strictObject({ accessKeyId: secretRef(), secretAccessKey: secretRef() }).optional(),
});
const storageSchema = z.unknown().transform((v, ctx) => {
  const type = isObj(v) ? v.type : undefined;
  const schema = type === 'local' ? localStorageSchema : type === 's3' ? s3StorageSchema : undefined;
  if (!schema) {
    ctx.addIssue({ code: 'custom', path: ['type'], message: `expected "local" or "s3", got ${describe(type)}` });
    return z.NEVER;
  }
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message } as never);
  return z.NEVER;
});

export const recordingSchema = z.strictObject({
  enabled: bool().optional(),
  dir: path().optional(),
  mode: mode().optional(),
  retention: duration(60_000, MAX_RETENTION_MS).optional(),
  connections: z.record(z.string(), policySchema).optional(),
  limits: z
    .strictObject({
      rowsPerStatement: intBetween(0, 10_000_000).optional(),
      rowsPerSession: intBetween(0, 1_000_000_000).optional(),
      valueBytes: intBetween(16, 64 * 1024 * 1024).optional(),
      statementBytes: intBetween(256, 1024 * 1024 * 1024).optional(),
    })
    .optional(),
  retentionCheck: duration(1_000, 7 * 86_400_000).optional(),
  fsyncInterval: zeroOrDuration(10_000).optional(),
  storage: storageSchema.optional(),
});

export const auditSchema = z.strictObject({
  auditors: groupList().optional(),
  signingKey: path().optional(),
  checkpointInterval: duration(1_000, 7 * 86_400_000).optional(),
  checkpointEvery: intBetween(0, 1_000_000).optional(),
  anchor: z.strictObject({ file: path() }).optional(),
});

export type RecordingFile = z.output<typeof recordingSchema>;
export type AuditFile = z.output<typeof auditSchema>;

/** `recording.connections` must name configured connections (a typo would silently keep the default). */
export function recordingCrossCheck(raw: unknown, connectionNames: ReadonlySet<string>): SchemaProblem[] {
  if (!isObj(raw)) return [];
  const problems: SchemaProblem[] = [];
  if (raw.dir !== undefined && raw.dir !== null && isObj(raw.storage) && raw.storage.dir !== undefined && raw.storage.dir !== null) {
    problems.push({
      path: ['recording', 'storage', 'dir'],
      atKey: true,
      message: 'set either recording.dir or recording.storage.dir, not both',
    });
  }
  if (!isObj(raw.connections)) return problems;
  for (const name of Object.keys(raw.connections)) {
    if (!connectionNames.has(name)) {
      problems.push({
        path: ['recording', 'connections', name],
        atKey: true,
        message:
          `no connection named ${JSON.stringify(name)}` + (connectionNames.size ? ` (configured: ${[...connectionNames].join(', ')})` : ''),
      });
    }
  }
  return problems;
}

/** Defaults applied; relative paths resolved against the config file's directory. */
export function buildRecording(file: RecordingFile | undefined, dataDir: string, baseDir: string): RecordingConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const defaults: RecordingPolicy = {
    mode: file?.mode ?? RECORDING_DEFAULTS.mode,
    retentionMs: file?.retention ?? RECORDING_DEFAULTS.retentionMs,
  };
  const storage = file?.storage;
  const dir = file?.dir ?? (storage?.type === 'local' ? storage.dir : undefined);
  return {
    enabled: file?.enabled ?? true,
    dir: dir !== undefined ? abs(dir) : join(dataDir, RECORDING_DEFAULTS.dirName),
    defaults,
    connections: Object.fromEntries(
      Object.entries(file?.connections ?? {}).map(([name, p]) => [
        name,
        { mode: p.mode ?? defaults.mode, retentionMs: p.retention ?? defaults.retentionMs },
      ]),
    ),
    limits: { ...RECORDING_DEFAULTS.limits, ...definedOnly(file?.limits ?? {}) },
    retentionCheckMs: file?.retentionCheck ?? RECORDING_DEFAULTS.retentionCheckMs,
    fsyncIntervalMs: file?.fsyncInterval ?? RECORDING_DEFAULTS.fsyncIntervalMs,
    storage: storage?.type === 's3' ? buildS3(storage, abs) : { type: 'local' },
  };
}

function buildS3(file: z.output<typeof s3StorageSchema>, abs: (p: string) => string): S3StorageConfig {
  const endpoint = file.endpoint ?? null;
  const ref = (r: string) => (r.startsWith('file:') ? `file:${abs(r.slice('file:'.length))}` : r);
  return {
    type: 's3',
    bucket: file.bucket,
    prefix: file.prefix ?? '',
    endpoint,
    region: file.region ?? 'us-east-1',
    // S3-compatible services behind one host name rarely serve virtual-hosted buckets.
    forcePathStyle: file.forcePathStyle ?? endpoint !== null,
    credentials: file.credentials
      ? { accessKeyId: ref(file.credentials.accessKeyId), secretAccessKey: ref(file.credentials.secretAccessKey) }
      : null,
  };
}

export function buildAudit(file: AuditFile | undefined, dataDir: string, baseDir: string): AuditConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    auditors: file?.auditors ?? [],
    signingKey: file?.signingKey !== undefined ? abs(file.signingKey) : join(dataDir, AUDIT_DEFAULTS.signingKeyName),
    checkpointIntervalMs: file?.checkpointInterval ?? AUDIT_DEFAULTS.checkpointIntervalMs,
    checkpointEveryEntries: file?.checkpointEvery ?? AUDIT_DEFAULTS.checkpointEveryEntries,
    anchorFile: file?.anchor?.file !== undefined ? abs(file.anchor.file) : null,
  };
}

/**
 * The recording settings of a configuration: configurations built in code (the embedded default,
 * the benchmark) may leave the sections out and get the defaults under their dataDir.
 */
export function recordingSettings(config: { dataDir: string; recording?: RecordingConfig }): RecordingConfig {
  return config.recording ?? buildRecording(undefined, config.dataDir, config.dataDir);
}

export function auditSettings(config: { dataDir: string; audit?: AuditConfig }): AuditConfig {
  return config.audit ?? buildAudit(undefined, config.dataDir, config.dataDir);
}

/** The policy for one connection. */
export function policyFor(config: RecordingConfig, connection: string): RecordingPolicy {
  return config.connections[connection] ?? config.defaults;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
