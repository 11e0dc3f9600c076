/**
 * The CLI's saved sign-in, written by `jitgate login` and read by every command that calls the API.
 *
 * Where: $XDG_CONFIG_HOME/jitgate/credentials.json, else ~/.config/jitgate/credentials.json (one
 * file per profile, see credentialsPath). The
 * directory is 0700 and the file 0600 (written to a temporary file with that mode, then renamed, so
 * no reader ever sees half a file or a moment of wider permissions); a file found with looser
 * permissions is tightened and the user told.
 *
 * Silent refresh: when the session token has less than a minute left (or has expired), the refresh
 * token buys a new pair. Refresh tokens rotate and a second use of one ends the whole sign-in, so
 * two commands running at once must not both refresh: a lock file serialises them and the second
 * one, once it holds the lock, re-reads the file and finds the first one's fresh pair.
 *
 * The saved token is only ever sent to the URL it was issued by: with JITGATE_URL pointing
 * elsewhere, the saved sign-in is not used.
 */
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { errorMessage, normalizeUrl, postJson } from './gateway-http.js';
import { CliError, type CliIo } from './io.js';

export interface CliCredentials {
  url: string;
  accessToken: string;
}

/** The file's content. Times are ISO strings (readable when someone looks at the file). */
export interface SavedSignIn {
  version: 1;
  url: string;
  user: string;
  groups: string[];
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
}

/** Refresh this long before the session token expires, so a request never races its expiry. */
export const REFRESH_MARGIN_MS = 60_000;
const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

/** A profile name becomes part of a file name: letters, digits, `_`, `.`, `-`, not leading `.`/`-`. */
const PROFILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/**
 * One saved sign-in per profile (`--profile NAME` or $JITGATE_PROFILE), so one person can act as
 * two users from one account, e.g. approve as bob while signed in as alice. No profile, or
 * `default`, is credentials.json; profile NAME is credentials.NAME.json beside it.
 */
export function credentialsPath(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.config');
  const profile = env.JITGATE_PROFILE;
  if (profile === undefined || profile === '' || profile === 'default') return join(base, 'jitgate', 'credentials.json');
  if (!PROFILE_NAME.test(profile)) {
    throw new CliError(
      `profile names are 1 to 64 letters, digits, "_", "." or "-" (not starting with "." or "-"), got ${JSON.stringify(profile.slice(0, 64))}`,
    );
  }
  return join(base, 'jitgate', `credentials.${profile}.json`);
}

/**
 * Where `jitgate ca --save` keeps the gateway's certificate: beside the profile's sign-in, since a
 * profile may point at another gateway (ca.pem, or ca.NAME.pem for profile NAME).
 */
export function caPath(env: NodeJS.ProcessEnv): string {
  const credentials = credentialsPath(env);
  return join(
    dirname(credentials),
    basename(credentials)
      .replace(/^credentials/, 'ca')
      .replace(/\.json$/, '.pem'),
  );
}

export async function readSignIn(io: CliIo): Promise<SavedSignIn | undefined> {
  const path = credentialsPath(io.env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    await chmod(path, 0o600).catch(() => undefined);
    io.err(`jitgate: ${path} was readable by others (mode ${mode.toString(8)}); it is now 0600\n`);
  }
  let parsed: Partial<SavedSignIn>;
  try {
    parsed = JSON.parse(text) as Partial<SavedSignIn>;
  } catch {
    throw new CliError(`${path} is not valid JSON: remove it and run \`jitgate login\``);
  }
  if (
    parsed.version !== 1 ||
    typeof parsed.url !== 'string' ||
    typeof parsed.accessToken !== 'string' ||
    typeof parsed.refreshToken !== 'string'
  ) {
    throw new CliError(`${path} is not a jitgate sign-in: remove it and run \`jitgate login\``);
  }
  return parsed as SavedSignIn;
}

export async function saveSignIn(io: CliIo, signIn: SavedSignIn): Promise<string> {
  const path = credentialsPath(io.env);
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Our own directory: keep it private even if something else created it wider.
  if (((await stat(dir)).mode & 0o077) !== 0) await chmod(dir, 0o700).catch(() => undefined);
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(signIn, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  return path;
}

export async function removeSignIn(io: CliIo): Promise<boolean> {
  const path = credentialsPath(io.env);
  try {
    await rm(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The saved sign-in as a bearer for its gateway, refreshed first when it is about to expire. */
export async function loadCliCredentials(io: CliIo): Promise<CliCredentials | undefined> {
  const saved = await readSignIn(io);
  if (!saved) return undefined;
  if (io.env.JITGATE_URL && normalizeUrl(io.env.JITGATE_URL) !== normalizeUrl(saved.url)) return undefined;
  // An explicit token wins in api-client; do not spend the refresh token for nothing.
  if (io.env.JITGATE_TOKEN) return { url: saved.url, accessToken: saved.accessToken };
  if (!needsRefresh(saved, io.now())) return { url: saved.url, accessToken: saved.accessToken };
  return withLock(credentialsPath(io.env) + '.lock', async () => {
    // Another command may have refreshed while we waited for the lock.
    const current = (await readSignIn(io)) ?? saved;
    if (current.refreshToken !== saved.refreshToken && !needsRefresh(current, io.now())) {
      return { url: current.url, accessToken: current.accessToken };
    }
    return refreshSignIn(io, current);
  });
}

function needsRefresh(s: SavedSignIn, now: number): boolean {
  return Date.parse(s.accessTokenExpiresAt) - now < REFRESH_MARGIN_MS;
}

async function refreshSignIn(io: CliIo, saved: SavedSignIn): Promise<CliCredentials> {
  const now = io.now();
  if (Date.parse(saved.refreshTokenExpiresAt) <= now) {
    await removeSignIn(io);
    throw new CliError(`your sign-in to ${saved.url} expired at ${saved.refreshTokenExpiresAt}: run \`jitgate login\``);
  }
  let answer;
  try {
    answer = await postJson(saved.url, '/api/auth/token', { grantType: 'refresh_token', refreshToken: saved.refreshToken });
  } catch (err) {
    // Unreachable: a still-valid session token is better than nothing; the server decides.
    if (Date.parse(saved.accessTokenExpiresAt) > now) return { url: saved.url, accessToken: saved.accessToken };
    throw err;
  }
  if (answer.status === 200) {
    const next = signInFromAnswer(saved.url, answer.body);
    await saveSignIn(io, next);
    return { url: next.url, accessToken: next.accessToken };
  }
  if (answer.status === 400 || answer.status === 401) {
    // The sign-in is over (expired, revoked, reused): the file is of no further use.
    await removeSignIn(io);
    throw new CliError(`your sign-in to ${saved.url} has ended: ${errorMessage(answer)}`);
  }
  if (Date.parse(saved.accessTokenExpiresAt) > now) return { url: saved.url, accessToken: saved.accessToken };
  throw new CliError(`cannot refresh your sign-in to ${saved.url}: ${errorMessage(answer)}`);
}

/** The saved form of a successful /api/auth/token answer. */
export function signInFromAnswer(url: string, body: Record<string, unknown>): SavedSignIn {
  const s = (k: string): string => {
    const v = body[k];
    if (typeof v !== 'string') throw new CliError(`the gateway's token answer lacks ${k}`);
    return v;
  };
  const identity = (body.identity ?? {}) as { user?: unknown; groups?: unknown };
  return {
    version: 1,
    url: normalizeUrl(url),
    user: typeof identity.user === 'string' ? identity.user : '',
    groups: Array.isArray(identity.groups) ? identity.groups.filter((g): g is string => typeof g === 'string') : [],
    accessToken: s('accessToken'),
    accessTokenExpiresAt: s('accessTokenExpiresAt'),
    refreshToken: s('refreshToken'),
    refreshTokenExpiresAt: s('refreshTokenExpiresAt'),
  };
}

/** Run `fn` holding an exclusive lock file (created with O_EXCL); a lock older than 30 s is stale. */
async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new CliError(`another jitgate command holds ${lockPath}; if none is running, remove it`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}
