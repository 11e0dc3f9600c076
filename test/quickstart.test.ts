/**
 * A newcomer's first run: `jitgate serve` with no configuration starts the embedded default and
 * prints one psql line; that line works as printed, more tokens come from `jitgate token`, the
 * sessions show up in `jitgate sessions`, and Ctrl-C drains and exits cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');
const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-quickstart-'));
const env = { ...process.env, JITGATE_PG_PORT: '0', JITGATE_HTTP_PORT: '0', JITGATE_CONFIG: '' };

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: dataDir, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('serves the demo database from the printed one-liner, mints tokens, lists sessions, drains on SIGINT', async () => {
  const gateway = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--data-dir', dataDir], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  gateway.stdout.on('data', (d) => (out += d));
  gateway.stderr.on('data', () => undefined);
  const exited = new Promise<number | null>((r) => gateway.on('exit', (code) => r(code)));
  try {
    for (let i = 0; i < 600 && !/psql "postgresql:/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    const line = out.split('\n').find((l) => l.includes('psql "postgresql:'));
    expect(line, out).toMatch(/^PGPASSWORD=jg_\S+ psql "postgresql:\/\/alice@127\.0\.0\.1:\d+\/demo\?sslmode=require"$/);

    const first = spawnSync('bash', ['-c', `${line} -XAt -c 'select count(*) from customers'`], { encoding: 'utf8', timeout: 60_000 });
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe('200');

    const minted = cli(['token', '--data-dir', dataDir, '--user', 'bob', '--connection', 'demo', '--ttl', '5m']);
    expect(minted.status, minted.stderr).toBe(0);
    const token = minted.stdout.trim();
    expect(token).toMatch(/^jg_/);
    const url = line!.match(/"(postgresql:[^"]+)"/)![1]!.replace('alice@', 'bob@');
    const second = spawnSync('psql', [url, '-XAt', '-c', 'select current_database()'], { env: { ...process.env, PGPASSWORD: token }, encoding: 'utf8', timeout: 60_000 });
    expect(second.stderr).toBe('');

    const listed = cli(['sessions', '--data-dir', dataDir, '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    const sessions = JSON.parse(listed.stdout) as Array<{ user: string; connection: string; endReason: string }>;
    expect(sessions.map((s) => s.user).sort()).toEqual(['alice', 'bob']);
    expect(sessions.every((s) => s.connection === 'demo' && s.endReason === 'client_quit')).toBe(true);
  } finally {
    gateway.kill('SIGINT');
  }
  expect(await exited).toBe(0);
}, 180_000);
