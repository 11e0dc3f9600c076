import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FileRecorder, readRecording, RecordingTail } from './file-recorder.js';

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

  it('detects an edited, removed or reordered event', async () => {
    const path = join(dir(), 's3.jsonl.gz');
    const rec = new FileRecorder(path);
    rec.append('statement', { text: 'select secret_count' });
    rec.append('result', { rows: 3 });
    rec.append('session_end', {});
    await rec.close();
    const lines = zlib.gunzipSync(readFileSync(path)).toString().split('\n');
    const edited = lines.map((l) => l.replace('"rows":3', '"rows":0'));
    writeFileSync(path, zlib.gzipSync(edited.join('\n')));
    expect(readRecording(path)).toMatchObject({ intact: false, brokenAt: 1 });
    const removed = [lines[0], lines[2], ''];
    writeFileSync(path, zlib.gzipSync(removed.join('\n')));
    expect(readRecording(path).intact).toBe(false);
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
});
