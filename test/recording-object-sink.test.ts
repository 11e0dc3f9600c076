/**
 * Recordings on object storage, against a real S3-compatible server (s3rver, see
 * ./support/s3-server.ts): what is uploaded, what stays on the disk, how readers find a recording
 * wherever it is, and what an outage of the object store does (retried, reported, audited, lost
 * nothing).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/log.js';
import type { S3StorageConfig } from '../src/config/recording.js';
import { createLogger } from '../src/obs/log.js';
import { LocalFileSink } from '../src/recording/local-sink.js';
import { ObjectStoreSink } from '../src/recording/object-sink.js';
import { S3Objects } from '../src/recording/s3-objects.js';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite.js';
import { S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, startS3Server, type S3Server } from './support/s3-server.js';
import { waitUntil } from './support/wait.js';
import { collect } from './support/collect.js';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server({ bucket: 'recordings' });
});
afterAll(() => s3.stop());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function s3Config(): S3StorageConfig {
  return {
    type: 's3',
    bucket: s3.bucket,
    prefix: 'gw/',
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: null,
  };
}

function objects(): S3Objects {
  const o = new S3Objects(s3Config(), { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY });
  cleanups.push(() => o.close());
  return o;
}

interface Setup {
  dir: string;
  local: LocalFileSink;
  sink: ObjectStoreSink;
  store: SqliteStore;
  audit: AuditLog;
  registry: Registry;
}

async function setup(dir = mkdtempSync(join(tmpdir(), 'jitgate-objsink-'))): Promise<Setup> {
  const store = openSqliteStore(join(dir, 'state.db'));
  const audit = await AuditLog.open(store.sql);
  const registry = new Registry();
  const local = new LocalFileSink(join(dir, 'recordings'));
  const sink = new ObjectStoreSink({
    local,
    objects: objects(),
    audit,
    log: createLogger({ level: 'silent' }),
    registry,
    retry: { firstMs: 50, maxMs: 200 },
  });
  cleanups.push(
    () => sink.stop(),
    () => store.close(),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return { dir, local, sink, store, audit, registry };
}

let sessions = 0;
/** A finished recording of a few statements, sealed on the local disk as a session's end leaves it. */
async function recordSession(sink: { create: LocalFileSink['create'] }): Promise<{ location: string; digest: string; id: string }> {
  const id = `sess${Date.now().toString(36)}${sessions++}`;
  const { writer, location } = sink.create(id, Date.UTC(2026, 11, 5), Date.now);
  writer.append('session_start', { user: 'ada@example.com' });
  for (let i = 0; i < 3; i++) writer.append('statement', { text: `select ${i}` });
  writer.append('session_end', { reason: 'client_closed' });
  const digest = await writer.close();
  return { location, digest, id };
}

async function metric(registry: Registry, name: string, outcome?: string): Promise<number> {
  const m = (await registry.getSingleMetric(name)!.get()).values;
  return m.filter((v) => outcome === undefined || v.labels.outcome === outcome).reduce((a, v) => a + v.value, 0);
}

/** What someone with write access to the bucket does: replaces an object's bytes. */
async function replaceObject(objects: S3Objects, location: string, bytes: Buffer, metadata: Record<string, string>): Promise<void> {
  const file = join(mkdtempSync(join(tmpdir(), 'jitgate-forged-')), 'object');
  writeFileSync(file, bytes);
  await objects.putFile(location, file, metadata);
  rmSync(file);
}

describe('recordings on object storage', () => {
  it('uploads a finished recording with its digest, removes the local file, and reads it back from the bucket', async () => {
    const { local, sink } = await setup();
    const { location, digest } = await recordSession(sink);
    expect(existsSync(local.sealedPath(location))).toBe(true);
    const sha256 = createHash('sha256')
      .update(readFileSync(local.sealedPath(location)))
      .digest('hex');

    sink.archive(location, digest);
    await waitUntil('the upload to finish', () => sink.status().pending === 0);

    expect(existsSync(local.sealedPath(location))).toBe(false);
    const head = await objects().head(location);
    expect(head?.metadata['chain-digest']).toBe(digest);
    expect(head?.metadata.sha256).toBe(sha256);
    expect(existsSync(join(s3.dir, s3.bucket, 'gw', '2026', '12', '05'))).toBe(true);

    const read = await sink.read(location);
    expect(read.intact).toBe(true);
    expect(read.events.map((e) => e.type)).toEqual(['session_start', 'statement', 'statement', 'statement', 'session_end']);
    expect(read.events.at(-1)!.h).toBe(digest);
    expect(await sink.size(location)).toBe(head!.size);
    expect(sink.describe(location)).toBe(`s3://${s3.bucket}/gw/${location}`);
  });

  it('lets a follower that started on the live file finish from the uploaded object', async () => {
    const { sink } = await setup();
    const { writer, location } = sink.create(`follow${sessions++}`, Date.UTC(2026, 11, 5), Date.now);
    writer.append('session_start', { user: 'ada@example.com' });
    await writer.checkpoint();
    const tail = sink.follow(location);
    cleanups.push(() => tail.close());
    expect((await tail.poll()).map((e) => e.type)).toEqual(['session_start']);

    writer.append('statement', { text: 'select 1' });
    writer.append('session_end', { reason: 'client_closed' });
    const digest = await writer.close();
    sink.archive(location, digest);
    await waitUntil('the upload to finish', () => sink.status().pending === 0);

    expect((await tail.poll()).map((e) => e.type)).toEqual(['statement', 'session_end']);
    expect(tail.broken).toBe(false);
  });

  it('keeps a recording on the disk while the object store is down, reports and audits it, and uploads it once it is back', async () => {
    const { local, sink, audit, registry } = await setup();
    const { location, digest, id } = await recordSession(sink);
    await s3.pause();
    try {
      sink.archive(location, digest);
      await waitUntil('the upload to fail twice', async () => (await metric(registry, 'jitgate_recording_uploads_total', 'failed')) >= 2);
      const status = sink.status();
      expect(status).toMatchObject({ pending: 1, failing: 1 });
      expect(status.lastError).toContain(`s3://${s3.bucket}/gw/${location}`);
      expect(await metric(registry, 'jitgate_recording_uploads_failing')).toBe(1);
      expect(existsSync(local.sealedPath(location))).toBe(true);
      // Readers still find it, on the disk.
      expect((await sink.read(location)).events).toHaveLength(5);
      // Audited once, not at every retry.
      const failed = (await collect(audit.entries())).filter((e) => e.type === 'recording.upload_failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ actor: 'gateway', subject: id, data: { location: `s3://${s3.bucket}/gw/${location}` } });
    } finally {
      await s3.start();
    }
    await waitUntil('the retried upload', () => sink.status().pending === 0, { timeoutMs: 15_000 });
    expect(sink.status()).toEqual({ pending: 0, failing: 0, oldestFailureAt: null, lastError: null });
    expect(existsSync(local.sealedPath(location))).toBe(false);
    expect((await objects().head(location))?.metadata['chain-digest']).toBe(digest);
    expect((await collect(audit.entries())).filter((e) => e.type === 'recording.uploaded')).toMatchObject([{ subject: id }]);
    expect(await metric(registry, 'jitgate_recording_uploads_total', 'uploaded')).toBe(1);
  });

  it('uploads at start what an earlier process left sealed on the disk, with the digest the index holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jitgate-objsink-'));
    // The earlier process: it sealed two recordings and stopped (or crashed) before uploading them.
    const before = new LocalFileSink(join(dir, 'recordings'));
    const left = [await recordSession(before), await recordSession(before)];
    const { sink, local } = await setup(dir);
    expect(await sink.start((location) => left.find((r) => r.location === location)?.digest ?? null)).toBe(2);
    await waitUntil('both uploads', () => sink.status().pending === 0);
    for (const r of left) {
      expect(existsSync(local.sealedPath(r.location))).toBe(false);
      expect((await objects().head(r.location))?.metadata['chain-digest']).toBe(r.digest);
    }
  });

  it('deletes a recording from the bucket and the disk, and says when it was already gone', async () => {
    const { sink } = await setup();
    const { location, digest } = await recordSession(sink);
    sink.archive(location, digest);
    await waitUntil('the upload', () => sink.status().pending === 0);
    expect(await sink.delete(location)).toBe(true);
    expect(await objects().head(location)).toBeUndefined();
    await expect(sink.read(location)).rejects.toThrow(`no recording at s3://${s3.bucket}/gw/${location}`);
    expect(await sink.delete(location)).toBe(false);
  });

  it('shows an object changed in the bucket as a broken chain', async () => {
    const { sink } = await setup();
    const { location, digest } = await recordSession(sink);
    sink.archive(location, digest);
    await waitUntil('the upload', () => sink.status().pending === 0);
    const stored = (await objects().get(location))!;
    const { gunzipSync, gzipSync } = await import('node:zlib');
    const forged = gunzipSync(stored.body).toString('utf8').replace('select 1', 'select 9');
    await replaceObject(objects(), location, gzipSync(forged), stored.metadata);
    const read = await sink.read(location);
    expect(read.intact).toBe(false);
    // Nothing from the forged block onward is passed off as recorded.
    expect(read.events.slice(0, read.brokenAt).some((e) => JSON.stringify(e).includes('select 9'))).toBe(false);
  });
});
