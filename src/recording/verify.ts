/**
 * Whether a recording is what was recorded: its own hash chain, and its last event against the
 * final digest kept in the recordings index and written to the (separately chained) audit log when
 * the session ended. The chain alone catches an edited, removed or reordered event; the digests
 * also catch a recording cut short or replaced wholesale.
 *
 * A recording stopped by a write error (a full disk) is checked as the prefix that reached the
 * file: its digest is that of the last event written whole, so it verifies, with a note, instead
 * of reading as tampered.
 */
import type { AuditEntry } from '../audit/chain.js';
import type { ReadResult } from './file-recorder.js';
import type { RecordingRow } from './repository.js';

export interface RecordingCheck {
  ok: boolean;
  events: number;
  /** What does not verify, in words (empty when ok). */
  problems: string[];
  /** What verifies but is worth saying (e.g. cut by a write error), in words. */
  notes: string[];
  /** Still being written, or left open by a crash: no final digest to compare with yet. */
  open: boolean;
}

export function checkRecording(row: RecordingRow, read: ReadResult, auditTrail: AuditEntry[] = []): RecordingCheck {
  const problems: string[] = [];
  const notes: string[] = [];
  if (!read.intact) problems.push(`the hash chain breaks at event ${read.brokenAt} (an event was changed, removed or reordered)`);
  const open = row.endedAt === null;
  const cut = row.writeErrorAt;
  // The event the final digest belongs to: the last one, or the last written before a write error.
  let last = read.events.at(-1);
  if (cut !== null) {
    notes.push(`truncated by write error at event ${cut} (the events before it verify; what the session did after it was not recorded)`);
    last = cut > 0 ? read.events[cut - 1] : undefined;
    if (read.events.length < cut) problems.push(`it holds ${read.events.length} events, but ${cut} were written before the write error`);
  }
  if (!open && row.digest !== null) {
    if (!last) problems.push('the recording is empty but its session ended with a digest');
    else if (last.h !== row.digest)
      problems.push(`its last event does not carry the final digest recorded at session end (${row.digest.slice(0, 16)}...)`);
  }
  const ended = auditTrail.filter((e) => e.type === 'session.ended').at(-1);
  const auditDigest = (ended?.data.recording as { digest?: string | null } | undefined)?.digest;
  if (typeof auditDigest === 'string') {
    if (row.digest !== null && row.digest !== auditDigest) problems.push("the recordings index's digest differs from the audit log's");
    if (last && last.h !== auditDigest) problems.push("its last event does not carry the digest in the audit log's session.ended entry");
  }
  return { ok: problems.length === 0, events: read.events.length, problems, notes, open };
}
