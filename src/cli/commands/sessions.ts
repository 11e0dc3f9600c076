/**
 * `jitgate sessions [--user U] [--connection C] [--since T] [--until T] [--status live|ended]
 * [--active] [--statement TEXT] [--json] [--limit N]`: sessions newest first, from the state store
 * and the recordings index on the gateway host. `--statement` searches recorded statement texts.
 *
 * `jitgate sessions hold ID --reason R` / `unhold ID`: legal holds (retention never deletes a
 * recording on hold); audited as the local administrator.
 */
import { shortInstance } from '../../instances/registry.js';
import { placeHold, releaseHold, HoldError } from '../../recording/holds.js';
import type { SessionListing, SessionSearch } from '../../recording/repository.js';
import { parseTimeFilter, TIME_HINT } from '../../recording/time-filter.js';
import { formatBytes, formatElapsed, formatTime, table } from '../format.js';
import { CliError, type CliIo } from '../io.js';
import { localActor, resolveSession, withRecordings } from '../recording-context.js';

export interface SessionsOptions {
  user?: string;
  connection?: string;
  active?: boolean;
  since?: string;
  until?: string;
  status?: string;
  statement?: string;
  json?: boolean;
  limit?: string;
  config?: string;
  dataDir?: string;
}

export async function sessionsCommand(io: CliIo, opts: SessionsOptions): Promise<void> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: expected a positive integer, got ${JSON.stringify(opts.limit)}`);
  const filter: SessionSearch = { limit };
  if (opts.user !== undefined) filter.user = opts.user;
  if (opts.connection !== undefined) filter.connection = opts.connection;
  for (const key of ['since', 'until'] as const) {
    const v = opts[key];
    if (v === undefined) continue;
    const t = parseTimeFilter(v, io.now());
    if (t === undefined) throw new CliError(`--${key}: expected ${TIME_HINT}, got ${JSON.stringify(v)}`);
    filter[key] = t;
  }
  if (opts.status !== undefined && opts.status !== 'live' && opts.status !== 'ended') {
    throw new CliError(`--status: expected live or ended, got ${JSON.stringify(opts.status)}`);
  }
  if (opts.active && opts.status === 'ended') throw new CliError('--active and --status ended contradict each other');
  const status = opts.active ? 'live' : (opts.status as 'live' | 'ended' | undefined);
  if (status) filter.status = status;
  if (opts.statement !== undefined) filter.statement = opts.statement;

  const rows = await withRecordings(io, opts, ({ repo }) => repo.search(filter));
  if (opts.json) {
    io.out(JSON.stringify(rows.map(toJson), null, 2) + '\n');
    return;
  }
  if (rows.length === 0) {
    io.err('no sessions\n');
    return;
  }
  const now = io.now();
  io.out(
    table(
      ['ID', 'USER', 'CONNECTION', 'CLIENT', 'STARTED', 'DURATION', 'STATUS', 'INSTANCE', 'STMTS', 'IN', 'OUT'],
      rows.map((r) => [
        r.id,
        r.user,
        r.connection,
        r.clientAddress,
        formatTime(r.startedAt),
        formatElapsed((r.endedAt ?? now) - r.startedAt),
        r.endedAt === null ? 'active' : (r.endReason ?? 'ended'),
        // The gateway instance serving it (8 characters; --json has the whole id); '-' from before instances.
        r.instanceId === null ? '-' : shortInstance(r.instanceId),
        String(r.statements),
        formatBytes(r.bytesFromClient),
        formatBytes(r.bytesToClient),
      ]),
    ),
  );
  const held = rows.filter((r) => r.recording?.hold).length;
  if (held > 0) io.err(`${held} of these on legal hold (see --json)\n`);
}

function toJson(r: SessionListing) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const rec = r.recording;
  return {
    ...r,
    startedAt: iso(r.startedAt),
    endedAt: iso(r.endedAt),
    recording: rec && {
      state: rec.state,
      mode: rec.mode,
      events: rec.events,
      digest: rec.digest,
      bytes: rec.bytes,
      rowsRecorded: rec.rowsRecorded,
      truncated: rec.truncated,
      error: rec.error,
      hold: rec.hold && { ...rec.hold, at: iso(rec.hold.at) },
      deletedAt: iso(rec.deletedAt),
    },
  };
}

export async function holdCommand(io: CliIo, id: string, opts: { reason?: string; config?: string; dataDir?: string }): Promise<void> {
  if (!opts.reason?.trim()) throw new CliError('--reason: say why the recording must be kept (it is audited)');
  const row = await withRecordings(io, opts, ({ repo, audit }) =>
    holdErrors(() => placeHold(repo, audit, { sessionId: resolveSession(repo, id), by: localActor(), reason: opts.reason!, at: io.now() })),
  );
  io.out(`legal hold on the recording of session ${row.sessionId} (${row.user} on ${row.connection}): retention will not delete it\n`);
}

export async function unholdCommand(io: CliIo, id: string, opts: { reason?: string; config?: string; dataDir?: string }): Promise<void> {
  const row = await withRecordings(io, opts, ({ repo, audit }) =>
    holdErrors(() =>
      releaseHold(repo, audit, { sessionId: resolveSession(repo, id), by: localActor(), ...(opts.reason ? { reason: opts.reason } : {}) }),
    ),
  );
  io.out(`released the legal hold on the recording of session ${row.sessionId}; retention applies again\n`);
}

async function holdErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HoldError) throw new CliError(err.message);
    throw err;
  }
}
