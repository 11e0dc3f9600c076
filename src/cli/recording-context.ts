/**
 * What the local recording and audit commands work on (on the gateway host, like `jitgate token
 * --user`): the state store's database, the recordings index, the recordings sink and the audit log
 * of the configuration that `adminTarget` finds.
 */
import { userInfo } from 'node:os';
import { AuditLog } from '../audit/log.js';
import { AUDIT_SIGNING_KEY } from '../audit/wire.js';
import { auditSettings, recordingSettings, type AuditConfig, type RecordingConfig } from '../config/recording.js';
import { SecretStore } from '../credentials/secret-store.js';
import { SharedKeys } from '../credentials/shared-keys.js';
import { LocalFileSink } from '../recording/local-sink.js';
import { RecordingRepository } from '../recording/repository.js';
import type { SqliteStore } from '../store/sqlite.js';
import { adminTarget, withStore } from './context.js';
import { CliError, type CliIo } from './io.js';

export interface RecordingTarget {
  repo: RecordingRepository;
  audit: AuditLog;
  sink: LocalFileSink;
  recording: RecordingConfig;
  auditConfig: AuditConfig;
  /** The gateway's audit signing key (PEM) where the gateway keeps it, or undefined before its first start. */
  signingKey(): string | undefined;
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
  return withStore(target.storePath, (store) => {
    const db = (store as SqliteStore).database;
    return fn({
      repo: new RecordingRepository(db),
      audit: new AuditLog(db, io.now),
      sink: new LocalFileSink(recording.dir),
      recording,
      auditConfig,
      signingKey: () => SharedKeys.open(new SecretStore(store, { env: io.env })).find(AUDIT_SIGNING_KEY, auditConfig.signingKey),
    });
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
