/**
 * Whether a recording is what was recorded: its own hash chain, and its last event against the
 * final digest kept in the recordings index and written to the (separately chained) audit log when
 * the session ended. The chain alone catches an edited, removed or reordered event; the digests
 * also catch a recording cut short or replaced wholesale.
 */
import type { AuditEntry } from '../audit/chain.js';
import type { ReadResult } from './file-recorder.js';
import type { RecordingRow } from './repository.js';

export interface RecordingCheck {
  ok: boolean;
  events: number;
  /** What does not verify, in words (empty when ok). */
  problems: string[];
  /** Still being written, or left open by a crash: no final digest to compare with yet. */
  open: boolean;
}

export function checkRecording(row: RecordingRow, read: ReadResult, auditTrail: AuditEntry[] = []): RecordingCheck {
  const problems: string[] = [];
  if (!read.intact) problems.push(`the hash chain breaks at event ${read.brokenAt} (an event was changed, removed or reordered)`);
  const last = read.events.at(-1);
  const open = row.endedAt === null;
  if (!open && row.digest !== null) {
    if (!last) problems.push('the recording is empty but its session ended with a digest');
    else if (last.h !== row.digest) problems.push(`its last event does not carry the final digest recorded at session end (${row.digest.slice(0, 16)}...)`);
  }
  const ended = auditTrail.filter((e) => e.type === 'session.ended').at(-1);
  const auditDigest = (ended?.data.recording as { digest?: string | null } | undefined)?.digest;
  if (typeof auditDigest === 'string') {
    if (row.digest !== null && row.digest !== auditDigest) problems.push("the recordings index's digest differs from the audit log's");
    if (last && last.h !== auditDigest) problems.push("its last event does not carry the digest in the audit log's session.ended entry");
  }
  return { ok: problems.length === 0, events: read.events.length, problems, open };
}
