/**
 * The saved sign-in: file location and permissions, when it is used, and silent refresh against a
 * small stand-in for the gateway's token endpoint (the real one is exercised in test/identity.test.ts).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialsPath, loadCliCredentials, readSignIn, saveSignIn, type SavedSignIn } from './credentials.js';
import type { CliIo } from './io.js';
import { runCli } from './program.js';

const work = mkdtempSync(join(tmpdir(), 'jitgate-credentials-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 0, 1);
let n = 0;

function io(env: NodeJS.ProcessEnv = {}, now = T0): CliIo & { errors: string[] } {
  const errors: string[] = [];
  return {
    out: () => undefined,
    err: (t) => void errors.push(t),
    stdin: Readable.from([]),
    env: { XDG_CONFIG_HOME: join(work, `cfg-${++n}`), ...env },
    cwd: work,
    now: () => now,
    errors,
  };
}

function signIn(url: string, o: Partial<SavedSignIn> = {}): SavedSignIn {
  return {
    version: 1,
    url,
    user: 'alice',
    groups: ['engineering'],
    accessToken: 'jgs_a',
    accessTokenExpiresAt: new Date(T0 + 10 * 60_000).toISOString(),
    refreshToken: 'jgr_a',
    refreshTokenExpiresAt: new Date(T0 + 86_400_000).toISOString(),
    ...o,
  };
}

/** A stand-in token endpoint: counts refreshes, answers with a new pair (or `status`). */
async function tokenEndpoint(status = 200) {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { refreshToken } = JSON.parse(body) as { refreshToken: string };
      seen.push(refreshToken);
      const answer =
        status === 200
          ? {
              accessToken: `jgs_${seen.length + 1}`,
              accessTokenExpiresAt: new Date(T0 + 30 * 60_000).toISOString(),
              refreshToken: `jgr_${seen.length + 1}`,
              refreshTokenExpiresAt: new Date(T0 + 86_400_000).toISOString(),
              identity: { user: 'alice', groups: ['engineering'] },
            }
          : { error: 'invalid_grant', message: 'this refresh token was already used' };
      // Slow enough that concurrent callers overlap.
      setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer)), 100);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

describe('CLI credentials', () => {
  it('lives under $XDG_CONFIG_HOME, else ~/.config', () => {
    expect(credentialsPath({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/a' })).toBe('/x/cfg/jitgate/credentials.json');
    expect(credentialsPath({ XDG_CONFIG_HOME: 'relative', HOME: '/home/a' })).toBe('/home/a/.config/jitgate/credentials.json');
    expect(credentialsPath({ HOME: '/home/a' })).toBe('/home/a/.config/jitgate/credentials.json');
  });

  it('keeps one sign-in per profile beside the default one, and refuses names that are no file name', () => {
    const env = { XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/a' };
    expect(credentialsPath({ ...env, JITGATE_PROFILE: 'bob' })).toBe('/x/cfg/jitgate/credentials.bob.json');
    expect(credentialsPath({ ...env, JITGATE_PROFILE: 'default' })).toBe('/x/cfg/jitgate/credentials.json');
    for (const bad of ['../x', '.hidden', '-x', 'a/b', 'x'.repeat(65)]) {
      expect(() => credentialsPath({ ...env, JITGATE_PROFILE: bad })).toThrow(/profile names are/);
    }
  });

  it('--profile picks the sign-in every command uses', async () => {
    const base = io();
    // Port 1 on loopback refuses at once: reaching for bob's gateway proves bob's sign-in was used.
    await saveSignIn({ ...base, env: { ...base.env, JITGATE_PROFILE: 'bob' } }, signIn('http://127.0.0.1:1'));
    const out: string[] = [];
    const cli = (args: string[]) =>
      runCli(args, { ...base, env: { ...base.env }, out: (t) => void out.push(t), err: (t) => void out.push(t) });
    expect(await cli(['whoami'])).toBe(1);
    expect(out.join('')).toContain('not signed in: run `jitgate login`');
    out.length = 0;
    expect(await cli(['whoami', '--profile', 'ghost'])).toBe(1);
    expect(out.join('')).toContain('not signed in (profile ghost): run `jitgate login --profile ghost`');
    out.length = 0;
    expect(await cli(['--profile', 'bob', 'whoami'])).toBe(1);
    expect(out.join('')).toContain('cannot reach the gateway at http://127.0.0.1:1');
  });

  it('is written 0600 in a 0700 directory, and tightened when found wider', async () => {
    const c = io();
    const path = await saveSignIn(c, signIn('http://gw'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    chmodSync(path, 0o644);
    expect((await readSignIn(c))?.user).toBe('alice');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(c.errors.join('')).toContain('was readable by others (mode 644); it is now 0600');
  });

  it('is used as it is while fresh, and never sent to another gateway', async () => {
    const c = io();
    await saveSignIn(c, signIn('http://127.0.0.1:9'));
    expect(await loadCliCredentials(c)).toEqual({ url: 'http://127.0.0.1:9', accessToken: 'jgs_a' });
    expect(await loadCliCredentials({ ...c, env: { ...c.env, JITGATE_URL: 'http://127.0.0.1:9/' } })).toBeDefined();
    expect(await loadCliCredentials({ ...c, env: { ...c.env, JITGATE_URL: 'https://elsewhere' } })).toBeUndefined();
    expect(await loadCliCredentials(io())).toBeUndefined();
  });

  it('refreshes once when several commands find it expiring at the same time', async () => {
    const gw = await tokenEndpoint();
    try {
      const c = io({}, T0 + 9 * 60_000 + 30_000); // 30 s before expiry: inside the margin
      await saveSignIn(c, signIn(gw.url));
      const results = await Promise.all([1, 2, 3, 4].map(() => loadCliCredentials(c)));
      expect(gw.seen).toEqual(['jgr_a']);
      expect(results.map((r) => r?.accessToken)).toEqual(['jgs_2', 'jgs_2', 'jgs_2', 'jgs_2']);
      expect((await readSignIn(c))?.refreshToken).toBe('jgr_2');
      expect(existsSync(credentialsPath(c.env) + '.lock')).toBe(false);
    } finally {
      await gw.close();
    }
  });

  it('an ended sign-in is removed with a clear message; an unreachable gateway leaves a valid token usable', async () => {
    const gw = await tokenEndpoint(400);
    try {
      const c = io({}, T0 + 11 * 60_000);
      await saveSignIn(c, signIn(gw.url));
      await expect(loadCliCredentials(c)).rejects.toThrow(`your sign-in to ${gw.url} has ended: this refresh token was already used`);
      expect(existsSync(credentialsPath(c.env))).toBe(false);
    } finally {
      await gw.close();
    }
    const down = io({}, T0 + 9 * 60_000 + 30_000);
    await saveSignIn(down, signIn('http://127.0.0.1:9'));
    expect(await loadCliCredentials(down)).toEqual({ url: 'http://127.0.0.1:9', accessToken: 'jgs_a' });
    const expired = io({}, T0 + 2 * 86_400_000);
    await saveSignIn(expired, signIn('http://127.0.0.1:9'));
    await expect(loadCliCredentials(expired)).rejects.toThrow(/expired at .*: run `jitgate login`/);
  });
});
