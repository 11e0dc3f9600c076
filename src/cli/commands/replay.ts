/**
 * `jitgate replay SESSION [--json] [--follow] [--speed N]`: prints a session's recording as a
 * transcript that reads like the psql session did (or, with --json, its events one JSON object per
 * line). Instantly by default; with --follow at recorded speed (times --speed), and for a live
 * session it keeps following until the session ends.
 *
 * On the gateway host it reads the recordings directly (like `jitgate sessions`); with --remote it
 * asks the gateway's API as the signed-in user (auditors, admins, or the session's own user).
 * A recording that does not verify (hash chain, final digest) is still printed, then reported on
 * stderr with exit code 1.
 */
import type { RecordedEvent } from '../../recording/file-recorder.js';
import { Transcript } from '../../recording/transcript.js';
import { checkRecording } from '../../recording/verify.js';
import { apiClient } from '../api-client.js';
import { streamEvents } from '../api-stream.js';
import { formatTime } from '../format.js';
import { CliError, type CliIo } from '../io.js';
import { resolveSession, withRecordings } from '../recording-context.js';

export interface ReplayOptions {
  json?: boolean;
  follow?: boolean;
  speed?: string;
  remote?: boolean;
  config?: string;
  dataDir?: string;
}

const POLL_MS = 200;

export async function replayCommand(io: CliIo, id: string, opts: ReplayOptions): Promise<void> {
  const speed = opts.speed === undefined ? 1 : Number(opts.speed);
  if (!Number.isFinite(speed) || speed <= 0) throw new CliError(`--speed: expected a positive number, got ${JSON.stringify(opts.speed)}`);
  const printer = new Printer(io, opts.json ?? false, opts.follow ? speed : undefined);
  if (opts.remote) return remoteReplay(io, id, opts, printer);

  await withRecordings(io, opts, async ({ repo, sink, audit }) => {
    const sessionId = resolveSession(repo, id);
    const row = repo.get(sessionId);
    if (!row) throw new CliError(`session ${sessionId} has no recording (recording was off, or it started before recording existed)`);
    if (row.deletedAt !== null)
      throw new CliError(`the recording of session ${sessionId} was deleted by retention at ${formatTime(row.deletedAt)}`);
    if (!row.location) throw new CliError(`session ${sessionId} was not recorded: ${row.error ?? row.state}`);

    if (!opts.follow) {
      const read = await sink.read(row.location);
      for (const e of read.events) await printer.event(e);
      printer.finish();
      const check = checkRecording(row, read, await audit.about(sessionId));
      if (!check.ok) throw new CliError(`the recording of session ${sessionId} does not verify:\n  - ${check.problems.join('\n  - ')}`);
      if (check.open)
        io.err(`(session ${sessionId} has not ended: this is what was recorded up to its last statement; --follow keeps following)\n`);
      return;
    }

    const tail = sink.follow(row.location);
    try {
      let ended = false;
      while (!ended) {
        const events = await tail.poll();
        for (const e of events) {
          await printer.event(e);
          if (e.type === 'session_end') ended = true;
        }
        if (tail.broken)
          throw new CliError(
            `the recording of session ${sessionId} does not verify (its hash chain breaks after event ${printer.lastSeq})`,
          );
        if (ended) break;
        if (events.length === 0) {
          // A session that ended without a session_end event (crash) ends the follow too.
          if (repo.get(sessionId)?.endedAt != null && (await tail.poll()).length === 0) break;
          await sleep(POLL_MS);
        }
      }
      printer.finish();
    } finally {
      tail.close();
    }
  });
}

/** Through the gateway's API: the events, or their live stream (server-sent events). */
async function remoteReplay(io: CliIo, id: string, opts: ReplayOptions, printer: Printer): Promise<void> {
  if (!opts.follow) {
    const api = await apiClient(io);
    const r = await api.get<{ events: RecordedEvent[]; verification: { ok: boolean; problems: string[] } }>(
      `/api/sessions/${encodeURIComponent(id)}/events?limit=100000`,
    );
    for (const e of r.events) await printer.event(e);
    printer.finish();
    if (!r.verification.ok)
      throw new CliError(`the recording of session ${id} does not verify:\n  - ${r.verification.problems.join('\n  - ')}`);
    return;
  }
  for await (const e of streamEvents(io, `/api/sessions/${encodeURIComponent(id)}/events/stream`)) await printer.event(e as RecordedEvent);
  printer.finish();
}

/** Prints events as transcript text or JSON lines, paced by their timestamps when following. */
class Printer {
  private readonly transcript = new Transcript({ time: (ms) => formatTime(ms) });
  private firstAt: number | undefined;
  private wallStart = 0;
  lastSeq = -1;

  constructor(
    private readonly io: CliIo,
    private readonly json: boolean,
    private readonly speed: number | undefined,
  ) {}

  async event(e: RecordedEvent): Promise<void> {
    if (this.speed !== undefined) {
      if (this.firstAt === undefined) {
        this.firstAt = e.at;
        this.wallStart = Date.now();
      }
      const due = this.wallStart + (e.at - this.firstAt) / this.speed - Date.now();
      if (due > 0) await sleep(due);
    }
    this.lastSeq = e.seq;
    const text = this.json ? JSON.stringify(e) + '\n' : this.transcript.push(e);
    if (text) this.io.out(text);
  }

  finish(): void {
    if (!this.json) {
      const rest = this.transcript.finish();
      if (rest) this.io.out(rest);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
