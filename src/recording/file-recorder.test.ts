import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { chainHash, FileRecorder, GENESIS, readRecording, REAL_FILE_OPS, RecordingTail, type RecorderFileOps } from './file-recorder.js';

const dir = () => mkdtempSync(join(tmpdir(), 'jitgate-rec-'));

describe('FileRecorder', () => {
  it('writes a gzip file of chained events that reads back intact', async () => {
    const path = join(dir(), 's1.jsonl.gz');
    let t = 1000;
    const rec = new FileRecorder(path, () => t++);
    rec.append('session_start', { user: 'alice' });
    rec.append('statement', { text: 'select 1' });
    await rec.checkpoint();
    rec.append('session_end', { reason: 'client_quit' });
    const digest = await rec.close();
    const r = readRecording(path);
    expect(r).toMatchObject({ intact: true, truncated: false });
    expect(r.events.map((e) => [e.seq, e.type, e.at])).toEqual([
      [0, 'session_start', 1000],
      [1, 'statement', 1001],
      [2, 'session_end', 1002],
    ]);
    expect(r.events.at(-1)!.h).toBe(digest);
    expect(zlib.gunzipSync(readFileSync(path)).toString()).toContain('"select 1"');
  });

  it('recovers every event up to the last checkpoint from a file cut by a crash', async () => {
    const path = join(dir(), 's2.jsonl.gz');
    const rec = new FileRecorder(path);
    for (let i = 0; i < 50; i++) rec.append('statement', { i });
    await rec.checkpoint();
    rec.append('statement', { i: 'in flight, never checkpointed' });
    // The process dies here: no close(). Everything checkpointed is in the plain file being written.
    const r = readRecording(rec.livePath);
    expect(r.intact).toBe(true);
    expect(r.events).toHaveLength(50);
    // Cut the file in the middle of an event: still no exception, a verified prefix comes back.
    truncateSync(rec.livePath, Math.floor(readFileSync(rec.livePath).length * 0.6) + 3);
    const cut = readRecording(rec.livePath);
    expect(cut.events.length).toBeLessThan(50);
    expect(cut).toMatchObject({ intact: true, truncated: true });
  });

  it('detects an edited, removed or reordered event, at the block it was written in', async () => {
    const path = join(dir(), 's3.jsonl.gz');
    const rec = new FileRecorder(path);
    // Two blocks (statement boundaries): [statement] and [result, notice, session_end].
    rec.append('statement', { text: 'select secret_count' });
    await rec.checkpoint();
    rec.append('result', { rows: 3 });
    rec.append('notice', { message: 'hello' });
    rec.append('session_end', {});
    await rec.close();
    const text = zlib.gunzipSync(readFileSync(path)).toString();
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('{"h":"'))).toHaveLength(2);
    const write = (ls: string[]) => writeFileSync(path, zlib.gzipSync(ls.join('\n')));
    expect(readRecording(path)).toMatchObject({ intact: true, truncated: false });

    write(lines.map((l) => l.replace('"rows":3', '"rows":0')));
    expect(readRecording(path)).toMatchObject({ intact: false, brokenAt: 1 });
    write(lines.map((l) => l.replace('secret_count', 'secret_COUNT')));
    expect(readRecording(path)).toMatchObject({ intact: false, brokenAt: 0 });
    // An event removed from a block, two swapped within one, a whole block removed: all break.
    write(lines.filter((_, i) => i !== 3));
    expect(readRecording(path).intact).toBe(false);
    write([lines[0]!, lines[1]!, lines[2]!, lines[4]!, lines[3]!, ...lines.slice(5)]);
    expect(readRecording(path).intact).toBe(false);
    write(lines.slice(2));
    expect(readRecording(path).intact).toBe(false);
    // Renumbered so the sequence looks whole, the hashes still do not match.
    write(lines.slice(2).map((l) => l.replace(/^\[(\d+),/, (_, n: string) => `[${Number(n) - 1},`)));
    expect(readRecording(path)).toMatchObject({ intact: false, brokenAt: 0 });
    // Cutting the last block off keeps the chain intact (the digest at session end catches that).
    write([...lines.slice(0, 2), '']);
    expect(readRecording(path)).toMatchObject({ intact: true, events: [{ type: 'statement' }] });
    // A block without its seal (a torn write) is left out as a cut tail, not trusted.
    write(lines.slice(0, -2).concat(''));
    expect(readRecording(path)).toMatchObject({ intact: true, truncated: true, events: [{ type: 'statement' }] });
  });

  it('reads and verifies recordings written in the old format (one hash per event)', () => {
    const path = join(dir(), 'old.jsonl.gz');
    let h = GENESIS;
    const lines = [
      { seq: 0, at: 1000, type: 'session_start', data: { user: 'alice' } },
      { seq: 1, at: 1001, type: 'statement', data: { n: 1, text: 'select 1' } },
      { seq: 2, at: 1002, type: 'session_end', data: { reason: 'client_quit' } },
    ].map((e) => {
      h = chainHash(h, e);
      return JSON.stringify({ ...e, h });
    });
    writeFileSync(path, zlib.gzipSync(lines.join('\n') + '\n'));
    const r = readRecording(path);
    expect(r).toMatchObject({ intact: true, truncated: false });
    expect(r.events.map((e) => [e.seq, e.type])).toEqual([
      [0, 'session_start'],
      [1, 'statement'],
      [2, 'session_end'],
    ]);
    expect(r.events.at(-1)!.h).toBe(h);
    writeFileSync(path, zlib.gzipSync(lines.map((l) => l.replace('select 1', 'select 2')).join('\n') + '\n'));
    expect(readRecording(path)).toMatchObject({ intact: false, brokenAt: 1 });
  });

  it('never overwrites an existing recording', () => {
    const path = join(dir(), 's4.jsonl.gz');
    writeFileSync(path, 'x');
    expect(() => new FileRecorder(path)).toThrow(/EEXIST/);
  });

  it('writes at every checkpoint before resolving it, and seals the file compressed on close', async () => {
    const path = join(dir(), 's5.jsonl.gz');
    const rec = new FileRecorder(path, Date.now, { fsyncIntervalMs: 0 });
    rec.append('statement', { text: 'select 1' });
    const durable = rec.checkpoint();
    // Written synchronously: a process crash right now would not lose it.
    expect(readFileSync(rec.livePath, 'utf8')).toContain('"select 1"');
    await durable;
    expect(existsSync(path)).toBe(false);
    await rec.close();
    expect(existsSync(rec.livePath)).toBe(false);
    expect(readRecording(path)).toMatchObject({ intact: true, truncated: false, events: [{ type: 'statement' }] });
  });

  it('coalesces fsyncs: checkpoints within the interval share one', async () => {
    const rec = new FileRecorder(join(dir(), 's6.jsonl.gz'), Date.now, { fsyncIntervalMs: 200 });
    rec.append('a', {});
    await rec.checkpoint();
    const started = Date.now();
    rec.append('b', {});
    const first = rec.checkpoint();
    rec.append('c', {});
    const second = rec.checkpoint();
    expect(second).toBe(first);
    await second;
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await rec.close();
  });

  it('follows a recording as it is written and after it is sealed', async () => {
    const path = join(dir(), 's7.jsonl.gz');
    const rec = new FileRecorder(path);
    const tail = new RecordingTail(path);
    rec.append('one', { x: 'é'.repeat(10) });
    await rec.checkpoint();
    expect((await tail.poll()).map((e) => e.type)).toEqual(['one']);
    expect(await tail.poll()).toEqual([]);
    rec.append('two', {});
    rec.append('three', {});
    await rec.close();
    expect((await tail.poll()).map((e) => e.type)).toEqual(['two', 'three']);
    expect(tail.broken).toBe(false);
  });

  it('follows only whole blocks: a block whose seal is not written yet waits for the next poll', async () => {
    const path = join(dir(), 's8.jsonl.gz');
    const rec = new FileRecorder(path);
    const tail = new RecordingTail(path);
    rec.append('one', {});
    await rec.checkpoint();
    expect((await tail.poll()).map((e) => e.type)).toEqual(['one']);
    rec.append('two', {});
    rec.append('three', {});
    await rec.checkpoint();
    // What a reader may see mid-write: the block's lines without the seal that follows them.
    const full = readFileSync(rec.livePath, 'utf8');
    const sealAt = full.lastIndexOf('{"h":"');
    const partial = join(dir(), 'p.jsonl.gz');
    writeFileSync(partial.slice(0, -3), full.slice(0, sealAt));
    const partialTail = new RecordingTail(partial);
    expect((await partialTail.poll()).map((e) => e.type)).toEqual(['one']);
    writeFileSync(partial.slice(0, -3), full);
    expect((await partialTail.poll()).map((e) => e.type)).toEqual(['two', 'three']);
    expect(partialTail.broken).toBe(false);
    expect((await tail.poll()).map((e) => e.type)).toEqual(['two', 'three']);
    await rec.close();
  });

  it('follows an old-format recording left by an earlier version', async () => {
    const path = join(dir(), 'old-live.jsonl.gz');
    let h = GENESIS;
    const line = (seq: number, type: string) => {
      const e = { seq, at: 1000 + seq, type, data: {} };
      h = chainHash(h, e);
      return JSON.stringify({ ...e, h }) + '\n';
    };
    writeFileSync(path.slice(0, -3), line(0, 'session_start') + line(1, 'statement'));
    const tail = new RecordingTail(path);
    expect((await tail.poll()).map((e) => e.type)).toEqual(['session_start', 'statement']);
    writeFileSync(path.slice(0, -3), line(2, 'ready'), { flag: 'a' });
    expect((await tail.poll()).map((e) => e.type)).toEqual(['ready']);
    expect(tail.broken).toBe(false);
  });
});

/**
 * File operations whose fsyncs run only when the test releases them, in the order it chooses (the
 * thread pool gives no order between an fsync and a close); an fsync that runs after its
 * descriptor was closed fails with EBADF, as the kernel's does.
 */
function gatedFsync() {
  const pending: Array<() => void> = [];
  const closed = new Set<number>();
  let afterClose = 0;
  const ops: RecorderFileOps = {
    ...REAL_FILE_OPS,
    fsync: (fd) =>
      new Promise<void>((resolve, reject) => {
        pending.push(() => {
          if (!closed.has(fd)) return resolve();
          afterClose++;
          reject(Object.assign(new Error('EBADF: bad file descriptor, fsync'), { code: 'EBADF' }));
        });
      }),
    close: async (fd) => {
      closed.add(fd);
      await REAL_FILE_OPS.close(fd);
    },
  };
  return { ops, pending, afterClose: () => afterClose };
}

/** A disk that takes `budget` more bytes, then answers ENOSPC (a short write first, like a real one). */
function fillingDisk() {
  const state = { budget: Infinity };
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const ops: RecorderFileOps = {
    ...REAL_FILE_OPS,
    writeText: (fd, text) => {
      const bytes = Buffer.from(text);
      return ops.write(fd, bytes, 0, bytes.length);
    },
    write: (fd, bytes, offset, length) => {
      if (state.budget <= 0) throw enospc();
      const n = Math.min(length, state.budget);
      state.budget -= n;
      return REAL_FILE_OPS.write(fd, bytes, offset, n);
    },
  };
  return { ops, state };
}

describe('FileRecorder close and fsync', () => {
  it('never fsyncs a closed descriptor: close waits for the fsync in flight and a later sync shares the final one', async () => {
    const gate = gatedFsync();
    const rec = new FileRecorder(join(dir(), 'race.jsonl.gz'), Date.now, { fsyncIntervalMs: 0, fileOps: gate.ops });
    rec.append('statement', { n: 1 });
    const first = rec.checkpoint();
    await vi.waitFor(() => expect(gate.pending, 'an fsync to be asked for').toHaveLength(1));
    // A second statement boundary while the first fsync runs: its fsync waits for the first one.
    rec.append('statement', { n: 2 });
    const second = rec.checkpoint();
    // The session ends meanwhile.
    rec.append('session_end', {});
    const closed = rec.close();
    // Run the fsyncs one at a time in the order they were asked for, until everything settles.
    const done = Promise.allSettled([first, second, closed]);
    let settled = false;
    void done.then(() => (settled = true));
    // Each check lets the oldest fsync asked for through; then compression (in the thread pool).
    await vi.waitFor(
      () => {
        gate.pending.shift()?.();
        expect(settled, 'the checkpoints and the close to settle, fsyncs released one at a time').toBe(true);
      },
      { timeout: 10_000, interval: 5 },
    );
    await expect(first).resolves.toBeUndefined();
    await expect(second).resolves.toBeUndefined();
    const digest = await closed;
    expect(gate.afterClose()).toBe(0);
    expect(rec.failed).toBeNull();
    expect(readRecording(rec.path)).toMatchObject({
      intact: true,
      events: [{ data: { n: 1 } }, { data: { n: 2 } }, { type: 'session_end', h: digest }],
    });
    // A checkpoint after close neither fsyncs nor fails.
    await expect(rec.checkpoint()).resolves.toBeUndefined();
    expect(gate.pending).toHaveLength(0);
  });
});

describe('FileRecorder on a full disk', () => {
  it('keeps the file at the last whole event and reports that prefix as what was written', async () => {
    const disk = fillingDisk();
    const rec = new FileRecorder(join(dir(), 'full.jsonl.gz'), Date.now, { fileOps: disk.ops });
    rec.append('session_start', { user: 'alice' });
    rec.append('statement', { text: 'select 1' });
    await rec.checkpoint();
    const before = rec.written;
    expect(before.events).toBe(2);
    // The disk fills in the middle of the next batch.
    disk.state.budget = 40;
    rec.append('statement', { text: 'select 2' });
    rec.append('result', { rows: [['2']] });
    await expect(rec.checkpoint()).rejects.toThrow(/ENOSPC/);
    expect(rec.events).toBe(4);
    expect(rec.written).toEqual(before);
    await expect(rec.close()).rejects.toThrow(/ENOSPC/);
    // No torn line: the file ends on the last event written whole, whose hash is the digest.
    const read = readRecording(rec.livePath);
    expect(read).toMatchObject({ intact: true, truncated: false });
    expect(read.events.map((e) => e.type)).toEqual(['session_start', 'statement']);
    expect(read.events.at(-1)!.h).toBe(before.digest);
  });

  it('reports nothing written when the first write fails', async () => {
    const disk = fillingDisk();
    disk.state.budget = 0;
    const rec = new FileRecorder(join(dir(), 'none.jsonl.gz'), Date.now, { fileOps: disk.ops });
    rec.append('session_start', { user: 'alice' });
    await expect(rec.checkpoint()).rejects.toThrow(/ENOSPC/);
    expect(rec.written).toEqual({ events: 0, digest: null });
    expect(readRecording(rec.livePath).events).toEqual([]);
  });
});
