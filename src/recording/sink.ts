/**
 * Where recordings are kept. A sink creates one append-only writer per session and reads, follows
 * and deletes recordings by the location it handed out (stored in the recordings index). Local
 * gzip files (./local-sink.ts) are the default; object storage (./object-sink.ts) keeps the local
 * file while the session lives and uploads it once it is finished.
 */
import type { ReadResult, RecordedEvent, WrittenPrefix } from './file-recorder.js';

export type MaybePromise<T> = T | Promise<T>;

export interface RecordingWriter {
  /** Adds an event (durable at the next checkpoint). Throws once closed or after a write failure. */
  append(type: string, data: Record<string, unknown>): RecordedEvent;
  /** Resolves when everything appended so far is durable; rejects on a write failure. */
  checkpoint(): Promise<void>;
  /** Makes everything durable and closes; resolves to the final chain digest. */
  close(): Promise<string>;
  /** Chain hash of the last event appended, and how many were appended. */
  readonly digest: string;
  readonly events: number;
  /** What the storage holds whole (after a write error, the prefix a verifier must find). */
  readonly written: WrittenPrefix;
  readonly failed: Error | null;
}

/** Follows a recording being written: each poll returns the events made durable since the last. */
export interface RecordingFollower {
  poll(): Promise<RecordedEvent[]>;
  close(): void;
  /** The chain did not verify (the follower stops returning events). */
  readonly broken: boolean;
}

export interface RecordingSink {
  /** Creates the recording of a new session; throws when it cannot be written (fail closed). */
  create(sessionId: string, startedAt: number, now: () => number): { writer: RecordingWriter; location: string };
  /**
   * Reads a recording (the durable part of a live one), verifying its chain. Synchronous when the
   * recording is on this host's disk: crash recovery then closes a lost session and gives it its
   * recorded end in one step, with no moment at which the store shows one without the other.
   */
  read(location: string): MaybePromise<ReadResult>;
  follow(location: string): RecordingFollower;
  /** Brings a recording left unfinished by a crash into its final form (compressed). */
  seal(location: string): Promise<void>;
  /**
   * Hands a finished, sealed recording over to where it is kept for good (`digest`: its final chain
   * digest, when known). Returns at once; local files are already there, object storage uploads.
   */
  archive(location: string, digest: string | null): void;
  /** Removes a recording; resolves to false when it was already gone. */
  delete(location: string): Promise<boolean>;
  /** Stored size in bytes, or undefined when it is gone (synchronous on this host's disk, as read). */
  size(location: string): MaybePromise<number | undefined>;
  /** A human-readable description of where `location` is (logs, CLI output). */
  describe(location: string): string;
}
