/**
 * How the composition root (main.ts) plugs in recording and the audit log: builds the audit log
 * (with its signing key and checkpoint job), the recording service on a local-file sink, the
 * retention job, and audits the access workflow's events. One call to start, one to stop.
 */
import type Database from 'better-sqlite3';
import type { AccessEvents } from '../access/events.js';
import { auditAccessEvents } from '../access/audit.js';
import { CheckpointJob } from '../audit/checkpoints.js';
import { AuditLog } from '../audit/log.js';
import { loadOrCreateSigner, type AuditSigner } from '../audit/signing.js';
import { auditSettings, recordingSettings, type AuditConfig, type RecordingConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { LocalFileSink } from './local-sink.js';
import { RecordingRepository } from './repository.js';
import { RetentionJob } from './retention.js';
import { RecordingService, type RecordingServiceOptions } from './service.js';

export interface RecordingModule {
  service: RecordingService;
  audit: AuditLog;
  signer: AuditSigner;
  retention: RetentionJob;
  auditConfig: AuditConfig;
  /** Stops the jobs, waits for ending sessions to close their recordings, signs the audit head. */
  stop(): Promise<void>;
}

export interface StartRecordingOptions {
  config: { dataDir: string; recording?: RecordingConfig; audit?: AuditConfig };
  db: Database.Database;
  clock: Clock;
  log: Logger;
  grants?: RecordingServiceOptions['grants'];
  /** Where sessions whose end the store missed (a crash, a store write lost) get their real end back. */
  sessions?: RecordingServiceOptions['sessions'];
  accessEvents?: AccessEvents;
}

export function startRecording(o: StartRecordingOptions): RecordingModule {
  const recordingConfig = recordingSettings(o.config);
  const auditConfig = auditSettings(o.config);
  const log = o.log.child({ component: 'recording' });
  const audit = new AuditLog(o.db, () => o.clock.now());
  const { signer, generated } = loadOrCreateSigner(auditConfig.signingKey);
  if (generated) log.info({ key: auditConfig.signingKey, keyId: signer.keyId }, 'generated the audit signing key');
  const checkpoints = new CheckpointJob({
    audit,
    signer,
    clock: o.clock,
    intervalMs: auditConfig.checkpointIntervalMs,
    everyEntries: auditConfig.checkpointEveryEntries,
    anchorFile: auditConfig.anchorFile,
    log,
  });
  const repo = new RecordingRepository(o.db);
  const sink = new LocalFileSink(recordingConfig.dir, { fsyncIntervalMs: recordingConfig.fsyncIntervalMs });
  const service = new RecordingService({
    config: recordingConfig,
    sink,
    repo,
    audit,
    clock: o.clock,
    log,
    ...(o.grants ? { grants: o.grants } : {}),
    ...(o.sessions ? { sessions: o.sessions } : {}),
  });
  service.recoverOrphans();
  const retention = new RetentionJob({ config: recordingConfig, repo, sink, audit, clock: o.clock, log });
  const unsubscribe = o.accessEvents ? auditAccessEvents(o.accessEvents, audit, log) : () => undefined;
  if (recordingConfig.enabled) retention.start();
  checkpoints.start();
  if (!recordingConfig.enabled) log.warn('session recording is switched off (recording.enabled: false)');
  return {
    service,
    audit,
    signer,
    retention,
    auditConfig,
    stop: async () => {
      unsubscribe();
      await retention.stop();
      await service.close();
      checkpoints.stop();
    },
  };
}
