/**
 * Legal holds: a recording on hold is never deleted by retention. Placing and releasing one is
 * audited; both the CLI (on the gateway host) and the HTTP API (auditors, admins) use this.
 */
import type { AuditAppender } from '../audit/log.js';
import type { RecordingRepository, RecordingRow } from './repository.js';

export class HoldError extends Error {
  constructor(
    readonly kind: 'not_found' | 'conflict' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'HoldError';
  }
}

export async function placeHold(
  repo: RecordingRepository,
  audit: AuditAppender,
  input: { sessionId: string; by: string; reason: string; at: number },
): Promise<RecordingRow> {
  const reason = input.reason.trim();
  if (!reason) throw new HoldError('invalid', 'a legal hold needs a reason (--reason)');
  return repo.transaction(async () => {
    const row = repo.get(input.sessionId);
    if (!row) throw new HoldError('not_found', `session ${input.sessionId} has no recording`);
    if (row.deletedAt !== null) throw new HoldError('conflict', `the recording of session ${input.sessionId} was already deleted`);
    repo.setHold(input.sessionId, { at: input.at, by: input.by, reason });
    await audit.append({
      type: 'legal_hold.set',
      actor: input.by,
      subject: input.sessionId,
      data: { reason, user: row.user, connection: row.connection, digest: row.digest },
    });
    return repo.get(input.sessionId)!;
  });
}

export async function releaseHold(
  repo: RecordingRepository,
  audit: AuditAppender,
  input: { sessionId: string; by: string; reason?: string },
): Promise<RecordingRow> {
  return repo.transaction(async () => {
    const row = repo.get(input.sessionId);
    if (!row) throw new HoldError('not_found', `session ${input.sessionId} has no recording`);
    if (!row.hold) throw new HoldError('conflict', `the recording of session ${input.sessionId} is not on hold`);
    repo.clearHold(input.sessionId);
    await audit.append({
      type: 'legal_hold.released',
      actor: input.by,
      subject: input.sessionId,
      data: { reason: input.reason ?? null, heldBy: row.hold.by, heldSince: row.hold.at, heldFor: row.hold.reason },
    });
    return repo.get(input.sessionId)!;
  });
}
