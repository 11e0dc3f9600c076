/**
 * The recording sink the configuration asks for: local files in `recording.dir`, or object storage
 * staged through that directory (./object-sink.ts). The gateway and the recording commands of the
 * CLI (replay, audit verify) open it the same way, so they read recordings wherever they are.
 */
import type { Registry } from 'prom-client';
import type { AuditAppender } from '../audit/log.js';
import type { RecordingConfig } from '../config/recording.js';
import type { Logger } from '../obs/log.js';
import { LocalFileSink } from './local-sink.js';
import type { ObjectStoreSink } from './object-sink.js';
import type { RecordingSink } from './sink.js';

export interface RecordingStorage {
  sink: RecordingSink;
  /** The upload queue when recordings go to object storage (its status, its start and stop). */
  uploads: ObjectStoreSink | null;
}

export interface OpenStorageOptions {
  audit: AuditAppender;
  log: Logger;
  resolveSecret: (ref: string) => Promise<string>;
  registry?: Registry;
  /** Backoff of failed uploads (tests shorten it). */
  retry?: { firstMs: number; maxMs: number };
}

/** Local files in `recording.dir`: the default, and where object storage stages recordings. */
export function localRecordingSink(config: RecordingConfig): LocalFileSink {
  return new LocalFileSink(config.dir, { fsyncIntervalMs: config.fsyncIntervalMs });
}

export async function openRecordingStorage(config: RecordingConfig, o: OpenStorageOptions): Promise<RecordingStorage> {
  const local = localRecordingSink(config);
  const storage = config.storage;
  if (storage.type === 'local') return { sink: local, uploads: null };
  const credentials = storage.credentials
    ? {
        accessKeyId: await o.resolveSecret(storage.credentials.accessKeyId),
        secretAccessKey: await o.resolveSecret(storage.credentials.secretAccessKey),
      }
    : null;
  // Loaded only here: the S3 client takes a noticeable part of a second to load, which every
  // gateway start (and every CLI command) on local files would otherwise pay.
  const [{ ObjectStoreSink }, { S3Objects }] = await Promise.all([import('./object-sink.js'), import('./s3-objects.js')]);
  const objects = new S3Objects(storage, credentials);
  // A missing bucket or refused credentials stop the start (recordings would pile up on the disk
  // for ever); an unreachable store does not: recordings wait on the disk and are retried.
  let unreachable: string | null;
  try {
    unreachable = await objects.probe();
  } catch (err) {
    objects.close();
    throw new Error(`recording.storage: ${(err as Error).message}`, { cause: err });
  }
  if (unreachable) o.log.warn({ err: unreachable }, 'the object store for recordings cannot be reached now; uploads are retried');
  const uploads = new ObjectStoreSink({
    local,
    objects,
    audit: o.audit,
    log: o.log,
    ...(o.registry ? { registry: o.registry } : {}),
    ...(o.retry ? { retry: o.retry } : {}),
  });
  return { sink: uploads, uploads };
}
