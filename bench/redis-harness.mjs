/**
 * A private Redis server (redis-server on an ephemeral 127.0.0.1 port) for tests and the benchmark:
 * no persistence, the `default` user protected by a password, and an ACL user `gateway` for the
 * jitgate gateway with every command and key, plus the permission to manage ACL users (ephemeral
 * credentials). Plain JS so `npm run bench` runs it without a build; test/support/redis-server.ts
 * is the typed entry point.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pg-harness.mjs';

export const REDIS_USERS = Object.freeze({
  default: { user: 'default', password: 'default-secret-0' },
  gateway: { user: 'gateway', password: 'gateway-secret-0' },
});

export async function startRedis(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--requirepass',
    REDIS_USERS.default.password,
    // One config directive: its words are separate arguments.
    '--user',
    REDIS_USERS.gateway.user,
    'on',
    `>${REDIS_USERS.gateway.password}`,
    '~*',
    '&*',
    '+@all',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log = (log + d).slice(-20000)));
  child.stderr.on('data', (d) => (log = (log + d).slice(-20000)));
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${log}`);
    if (await answers(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start in time:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    users: REDIS_USERS,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether something answers PING on the port (NOAUTH counts: the server is up). */
function answers(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', () => done(true));
  });
}
