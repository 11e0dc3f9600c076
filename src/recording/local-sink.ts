/**
 * Recordings as local files: `<dir>/YYYY/MM/DD/<session id>.jsonl.gz` (UTC date of the session's
 * start), directories 0700 and files 0600. Locations are the path relative to `dir`, so a moved
 * recordings directory keeps working.
 */
import { statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { FileRecorder, readRecording, RecordingTail, type ReadResult } from './file-recorder.js';
import type { RecordingFollower, RecordingSink, RecordingWriter } from './sink.js';

export class LocalFileSink implements RecordingSink {
  constructor(readonly dir: string) {}

  create(sessionId: string, startedAt: number, now: () => number): { writer: RecordingWriter; location: string } {
    if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) throw new Error(`invalid session id for a file name: ${JSON.stringify(sessionId)}`);
    const d = new Date(startedAt);
    const p = (n: number) => String(n).padStart(2, '0');
    const location = `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${sessionId}.jsonl.gz`;
    return { writer: new FileRecorder(this.path(location), now), location };
  }

  read(location: string): ReadResult {
    return readRecording(this.path(location));
  }

  follow(location: string): RecordingFollower {
    return new RecordingTail(this.path(location));
  }

  async delete(location: string): Promise<boolean> {
    try {
      await unlink(this.path(location));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  size(location: string): number | undefined {
    try {
      return statSync(this.path(location)).size;
    } catch {
      return undefined;
    }
  }

  describe(location: string): string {
    return this.path(location);
  }

  /** Locations come from our own index, but never let one escape the directory. */
  private path(location: string): string {
    const rel = normalize(location);
    if (isAbsolute(rel) || rel.startsWith('..' + sep) || rel === '..') throw new Error(`invalid recording location ${JSON.stringify(location)}`);
    return join(this.dir, rel);
  }
}
