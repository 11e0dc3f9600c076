/**
 * Recordings as local files: `<dir>/YYYY/MM/DD/<session id>.jsonl.gz` (UTC date of the session's
 * start), directories 0700 and files 0600; while a session lives its events go to the plain
 * `.jsonl` next to it (see ./file-recorder.ts). Locations are the `.gz` path relative to `dir`, so a
 * moved recordings directory keeps working.
 */
import { existsSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { FileRecorder, livePathOf, readRecording, RecordingTail, sealRecording, type ReadResult } from './file-recorder.js';
import type { RecordingFollower, RecordingSink, RecordingWriter } from './sink.js';

export class LocalFileSink implements RecordingSink {
  constructor(
    readonly dir: string,
    private readonly options: { fsyncIntervalMs?: number } = {},
  ) {}

  create(sessionId: string, startedAt: number, now: () => number): { writer: RecordingWriter; location: string } {
    if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) throw new Error(`invalid session id for a file name: ${JSON.stringify(sessionId)}`);
    const d = new Date(startedAt);
    const p = (n: number) => String(n).padStart(2, '0');
    const location = `${d.getUTCFullYear()}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${sessionId}.jsonl.gz`;
    return { writer: new FileRecorder(this.path(location), now, this.options), location };
  }

  /** The sealed file if there is one, else the plain one (live, or left by a crash). */
  read(location: string): ReadResult {
    const path = this.path(location);
    return readRecording(existsSync(path) ? path : livePathOf(path));
  }

  /** The file is the recording's final place. */
  archive(): void {}

  /** The recording's file, sealed or plain, is here. */
  has(location: string): boolean {
    const path = this.path(location);
    return existsSync(path) || existsSync(livePathOf(path));
  }

  /** The sealed (`.gz`) file of a finished recording. */
  sealedPath(location: string): string {
    return this.path(location);
  }

  seal(location: string): Promise<void> {
    return sealRecording(this.path(location));
  }

  follow(location: string): RecordingFollower {
    return new RecordingTail(this.path(location));
  }

  async delete(location: string): Promise<boolean> {
    const path = this.path(location);
    let removed = false;
    for (const p of [path, livePathOf(path), `${path}.tmp`]) {
      try {
        await unlink(p);
        removed = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return removed;
  }

  size(location: string): number | undefined {
    const path = this.path(location);
    for (const p of [path, livePathOf(path)]) {
      try {
        return statSync(p).size;
      } catch {
        // try the other form
      }
    }
    return undefined;
  }

  describe(location: string): string {
    return this.path(location);
  }

  /** Locations come from our own index, but never let one escape the directory. */
  private path(location: string): string {
    const rel = normalize(location);
    if (isAbsolute(rel) || rel.startsWith('..' + sep) || rel === '..')
      throw new Error(`invalid recording location ${JSON.stringify(location)}`);
    return join(this.dir, rel);
  }
}

/** The session a location belongs to: `2026/12/05/<session id>.jsonl.gz` → the session id. */
export function sessionOfLocation(location: string): string {
  return (location.split('/').at(-1) ?? location).replace(/\.jsonl\.gz$/, '');
}
