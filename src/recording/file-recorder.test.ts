import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FileRecorder, readRecording } from './file-recorder.js';

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
    // The process dies here: no close(). Everything checkpointed must be readable.
    const r = readRecording(path);
    expect(r.truncated).toBe(true);
    expect(r.intact).toBe(true);
    expect(r.events).toHaveLength(50);
    // Cut the file in the middle of the compressed stream: still no exception, a prefix comes back.
    truncateSync(path, Math.floor(readFileSync(path).length * 0.6));
    const cut = readRecording(path);
    expect(cut.events.length).toBeLessThan(50);
    expect(cut.intact).toBe(true);
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
});
