/**
 * What the local recording and audit commands work on (on the gateway host, like `jitgate token
 * --user`): the state store's database, the recordings index, the recordings sink (local files or
 * object storage, as the gateway keeps them) and the audit log of the configuration that
 * `adminTarget` finds.
 */
import { userInfo } from 'node:os';
import { AuditLog } from '../audit/log.js';
import { AUDIT_SIGNING_KEY } from '../audit/wire.js';
import { auditSettings, recordingSettings, type AuditConfig, type RecordingConfig } from '../config/recording.js';
import { SecretStore } from '../credentials/secret-store.js';
import { SharedKeys } from '../credentials/shared-keys.js';
import { resolveSecretRef } from '../credentials/refs.js';
import { createLogger } from '../obs/log.js';
import type { RecordingSink } from '../recording/sink.js';
import { openRecordingStorage } from '../recording/storage.js';
import { RecordingRepository } from '../recording/repository.js';
import type { SqliteStore } from '../store/sqlite.js';
import { adminTarget, withStore } from './context.js';
import { CliError, type CliIo } from './io.js';

export interface RecordingTarget {
  repo: RecordingRepository;
  audit: AuditLog;
  sink: RecordingSink;
  recording: RecordingConfig;
  auditConfig: AuditConfig;
  /** The gateway's audit signing key (PEM) where the gateway keeps it, or undefined before its first start. */
  signingKey(): Promise<string | undefined>;
}

export async function withRecordings<T>(
  io: CliIo,
  opts: { config?: string; dataDir?: string },
  fn: (t: RecordingTarget) => T | Promise<T>,
): Promise<T> {
  const target = await adminTarget(io, opts);
  const settings = target.config ?? { dataDir: target.source.kind === 'embedded' ? target.source.dataDir : io.cwd };
  const recording = recordingSettings(settings);
  const auditConfig = auditSettings(settings);
  return withStore(target.storePath, async (store) => {
    const db = (store as SqliteStore).database;
    const audit = await AuditLog.open((store as SqliteStore).sql, io.now);
    const secretStore = new SecretStore(store, { env: io.env });
    const { sink, uploads } = await openRecordingStorage(recording, {
      audit,
      log: createLogger({ level: 'silent' }),
      resolveSecret: (ref) => resolveSecretRef(ref, { secretStore, env: io.env }),
    });
    try {
      return await fn({
        repo: new RecordingRepository(db),
        audit,
        sink,
        recording,
        auditConfig,
        signingKey: () => SharedKeys.open(secretStore).find(AUDIT_SIGNING_KEY, auditConfig.signingKey),
      });
    } finally {
      // Nothing was queued for upload here; this only lets the S3 client's sockets go.
      await uploads?.stop();
    }
  });
}

/** A session id or a unique prefix of one. */
export function resolveSession(repo: RecordingRepository, idOrPrefix: string): string {
  const r = repo.resolveId(idOrPrefix);
  if (r.ambiguous) throw new CliError(`more than one session starts with ${idOrPrefix}; give more of the id`);
  if (!r.id) throw new CliError(`no session ${idOrPrefix}`);
  return r.id;
}

/** Who an admin command on the gateway host acts as, in the audit log. */
export function localActor(): string {
  try {
    return `local-admin:${userInfo().username}`;
  } catch {
    return 'local-admin';
  }
}
