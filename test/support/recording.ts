/**
 * Helpers for recording tests: run the CLI in-process against a test gateway's data directory,
 * wait for a session's recording to be closed, and read every recording a gateway wrote.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { runCli } from '../../src/cli/program.js';
import type { RecordingRow, SessionListing } from '../../src/recording/repository.js';
import type { TestGateway } from './gateway.js';
import { waitUntil } from './wait.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** `jitgate ARGS` in-process, in an empty directory (so the data dir given is what it uses). */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let out = '';
  let err = '';
  const cwd = mkdtempSync(join(tmpdir(), 'jitgate-cli-'));
  const code = await runCli(args, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env,
    cwd,
    now: Date.now,
  });
  return { code, out, err };
}

/** The newest session (optionally of one application name), once its recording is closed. */
export async function settledSession(
  gw: TestGateway,
  filter: { user?: string; applicationName?: string } = {},
  timeoutMs = 10_000,
): Promise<SessionListing & { recording: RecordingRow }> {
  let found: SessionListing | undefined;
  const settled = () => {
    found = gw.gateway.recording.repo
      .search({ ...(filter.user ? { user: filter.user } : {}), limit: 50 })
      .find((s) => filter.applicationName === undefined || s.applicationName === filter.applicationName);
    const done = found?.endedAt !== null && found?.recording && found.recording.state !== 'recording' && found.recording.endedAt !== null;
    return done ? (found as SessionListing & { recording: RecordingRow }) : undefined;
  };
  return waitUntil(`a settled session for ${JSON.stringify(filter)}`, settled, { timeoutMs, intervalMs: 25, seen: () => found });
}

/** waitUntil with the arguments in this module's older order (condition, bound, what). */
export function until<T>(fn: () => T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  return waitUntil(what, fn, { timeoutMs, intervalMs: 25 });
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** A recording file's text, decompressed (a file cut short decompresses as far as it goes). */
export function decompressed(path: string): string {
  const bytes = readFileSync(path);
  try {
    return zlib.gunzipSync(bytes).toString('utf8');
  } catch {
    return zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
  }
}
