/**
 * How the composition root (main.ts) plugs in recording: the recording service on the configured
 * storage (./storage.ts) and the retention job, writing to the audit log it is given (audit/wire.ts
 * builds that). One call to start, one to stop.
 */
import type Database from 'better-sqlite3';
import type { AuditLog } from '../audit/log.js';
import { recordingSettings, type RecordingConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { sessionOfLocation } from './local-sink.js';
import { localRecordingSink, type RecordingStorage } from './storage.js';
import { RecordingRepository } from './repository.js';
import { RetentionJob } from './retention.js';
import { RecordingService, type RecordingServiceOptions } from './service.js';

export interface RecordingModule {
  service: RecordingService;
  retention: RetentionJob;
  /** The upload queue when recordings go to object storage. */
  uploads: RecordingStorage['uploads'];
  /** Stops retention, waits for ending sessions to close their recordings, then for their uploads. */
  stop(): Promise<void>;
}

export interface StartRecordingOptions {
  config: { dataDir: string; recording?: RecordingConfig };
  db: Database.Database;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  /** Where recordings go (./storage.ts); default local files in the configured directory. */
  storage?: RecordingStorage;
  grants?: RecordingServiceOptions['grants'];
  /** Where sessions whose end the store missed (a crash, a store write lost) get their real end back. */
  sessions?: RecordingServiceOptions['sessions'];
  /** Ends a live session on an administrator's kill (the protocol listeners'). */
  kill?: RecordingServiceOptions['kill'];
}

export function startRecording(o: StartRecordingOptions): RecordingModule {
  const recordingConfig = recordingSettings(o.config);
  const log = o.log.child({ component: 'recording' });
  const audit = o.audit;
  const repo = new RecordingRepository(o.db);
  const storage = o.storage ?? {
    sink: localRecordingSink(recordingConfig),
    uploads: null,
  };
  const sink = storage.sink;
  const service = new RecordingService({
    config: recordingConfig,
    sink,
    repo,
    audit,
    clock: o.clock,
    log,
    ...(o.grants ? { grants: o.grants } : {}),
    ...(o.sessions ? { sessions: o.sessions } : {}),
    ...(o.kill ? { kill: o.kill } : {}),
  });
  // Nothing is recovered here: recordings of sessions left open by a gone process are recovered
  // once this instance has closed those sessions (main.ts, instances/registry.ts).
  const retention = new RetentionJob({ config: recordingConfig, repo, sink, audit, clock: o.clock, log });
  if (recordingConfig.enabled) retention.start();
  if (!recordingConfig.enabled) log.warn('session recording is switched off (recording.enabled: false)');
  // Finished recordings a crash, an outage or a stop left on the disk go up now.
  void storage.uploads
    ?.start((location) => repo.get(sessionOfLocation(location))?.digest ?? null)
    .catch((err: unknown) => log.error({ err }, 'cannot look for recordings waiting for their upload'));
  return {
    service,
    retention,
    uploads: storage.uploads,
    stop: async () => {
      await retention.stop();
      await service.close();
      await storage.uploads?.stop();
    },
  };
}
