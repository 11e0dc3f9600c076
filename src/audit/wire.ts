/**
 * How the composition root (main.ts) plugs in the audit log: the hash-chained log on the state
 * store, its signing key (generated on first start) and the checkpoint job that signs the head.
 * The modules that write to it (recording, reviews, access, identity) are handed the log; the
 * audit module itself knows none of them.
 */
import type Database from 'better-sqlite3';
import { auditSettings, type AuditConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { CheckpointJob } from './checkpoints.js';
import { AuditLog } from './log.js';
import { loadOrCreateSigner, type AuditSigner } from './signing.js';

export interface AuditModule {
  log: AuditLog;
  signer: AuditSigner;
  config: AuditConfig;
  /** Stops the checkpoint job. Call after everything that appends (recordings closing) has stopped. */
  stop(): void;
}

export interface StartAuditOptions {
  config: { dataDir: string; audit?: AuditConfig };
  db: Database.Database;
  clock: Clock;
  log: Logger;
}

export function startAudit(o: StartAuditOptions): AuditModule {
  const config = auditSettings(o.config);
  const log = o.log.child({ component: 'audit' });
  const audit = new AuditLog(o.db, () => o.clock.now());
  const { signer, generated } = loadOrCreateSigner(config.signingKey);
  if (generated) log.info({ key: config.signingKey, keyId: signer.keyId }, 'generated the audit signing key');
  const checkpoints = new CheckpointJob({
    audit,
    signer,
    clock: o.clock,
    intervalMs: config.checkpointIntervalMs,
    everyEntries: config.checkpointEveryEntries,
    anchorFile: config.anchorFile,
    log,
  });
  checkpoints.start();
  return { log: audit, signer, config, stop: () => checkpoints.stop() };
}
