/**
 * How the composition root (main.ts) plugs in the audit log: the hash-chained log on the state
 * store, its signing key (generated on first start) and the checkpoint job that signs the head.
 * The modules that write to it (recording, reviews, access, identity) are handed the log; the
 * audit module itself knows none of them.
 */
import { auditSettings, type AuditConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { KeyKeeper } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { SqlDatabase } from '../store/sql.js';
import { CheckpointJob } from './checkpoints.js';
import { AuditLog } from './log.js';
import { generateSigningKey, signerFromPem, type AuditSigner } from './signing.js';

export interface AuditModule {
  log: AuditLog;
  signer: AuditSigner;
  config: AuditConfig;
  /** Stops the checkpoint job, signing the head once more. Call after everything that appends (recordings closing) has stopped. */
  stop(): Promise<void>;
}

export interface StartAuditOptions {
  config: { dataDir: string; audit?: AuditConfig };
  sql: SqlDatabase;
  clock: Clock;
  log: Logger;
  /** Where the signing key is kept: shared by every instance on the store, or the configured file. */
  keys: KeyKeeper;
}

/** The signing key's name among the keys instances share. */
export const AUDIT_SIGNING_KEY = 'audit-signing';

export async function startAudit(o: StartAuditOptions): Promise<AuditModule> {
  const config = auditSettings(o.config);
  const log = o.log.child({ component: 'audit' });
  const audit = await AuditLog.open(o.sql, () => o.clock.now());
  const key = await o.keys.key(AUDIT_SIGNING_KEY, { file: config.signingKey, create: generateSigningKey });
  const signer = signerFromPem(key.value, o.keys.shared ? 'the audit signing key in the state store' : config.signingKey);
  if (key.origin === 'created')
    log.info({ key: o.keys.shared ? 'state store' : config.signingKey, keyId: signer.keyId }, 'generated the audit signing key');
  if (key.origin === 'imported')
    log.info({ from: config.signingKey, keyId: signer.keyId }, 'moved the audit signing key into the state store');
  const checkpoints = new CheckpointJob({
    audit,
    signer,
    clock: o.clock,
    intervalMs: config.checkpointIntervalMs,
    everyEntries: config.checkpointEveryEntries,
    anchorFile: config.anchorFile,
    log,
  });
  await checkpoints.start();
  return { log: audit, signer, config, stop: () => checkpoints.stop() };
}
