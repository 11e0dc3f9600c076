/**
 * A Redis session's recording across a crash of the gateway (kill -9) while a client pipelines
 * continuously (issue 11, item 20): every command Redis executed is in the recording, because a
 * batch of pipelined commands is made durable before it is forwarded; at most the one command
 * forwarded alone since the last boundary can be missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecording } from '../src/recording/file-recorder.js';
import { filesUnder } from './support/recording.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

let redis: RedisServer;
let dir: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'jitgate-redis-crash-'));
}, 60_000);

afterAll(async () => {
  child?.kill('SIGKILL');
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a gateway crash under a pipelining Redis client', () => {
  it('leaves every executed command in the recording', async () => {
    const configPath = join(dir, 'jitgate.yaml');
    writeFileSync(
      configPath,
      `development: true
dataDir: ${dir}/data
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
  redis: { host: 127.0.0.1, port: 0 }
log: { level: silent }
connections:
  - { name: cache, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: env:REDIS_GW, tls: { mode: disable } }
`,
    );
    child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'support/redis-gateway-child.ts'), configPath, 'alice', 'cache'],
      {
        env: { ...process.env, REDIS_GW: redis.users.gateway.password },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).once('line', resolve);
      child!.once('exit', (code) => reject(new Error(`gateway child exited early (${code})`)));
    });
    const { redis: address, token } = JSON.parse(first) as { redis: string; token: string };
    const c = new Redis({
      host: '127.0.0.1',
      port: Number(address.slice(address.lastIndexOf(':') + 1)),
      username: 'alice@cache',
      password: token,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => undefined);
    const direct = new Redis({
      host: redis.host,
      port: redis.port,
      username: redis.users.gateway.user,
      password: redis.users.gateway.password,
    });
    try {
      await c.ping();
      // Pipelines of 16 INCRs, several always outstanding: the session never reaches a boundary.
      let stop = false;
      const inFlight = new Set<Promise<unknown>>();
      const load = (async () => {
        for (let round = 0; round < 100_000 && !stop && c.status === 'ready'; round++) {
          if (inFlight.size >= 8) await Promise.race(inFlight);
          const p = c.pipeline();
          for (let i = 0; i < 16; i++) p.incr('crash:counter');
          const done = p.exec().catch(() => undefined);
          inFlight.add(done);
          void done.finally(() => inFlight.delete(done));
          // Let the rest of the test (and socket events) run between rounds.
          await new Promise((r) => setImmediate(r));
        }
      })();
      await expect
        .poll(async () => Number(await direct.get('crash:counter')), {
          timeout: 30_000,
          interval: 10,
          message: 'the counter to pass 3000 increments',
        })
        .toBeGreaterThan(3000);
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      child = undefined;
      stop = true;
      await load;
      const executed = Number(await direct.get('crash:counter'));

      const [file] = filesUnder(join(dir, 'data', 'recordings'));
      expect(file).toMatch(/\.jsonl$/);
      const left = readRecording(file!);
      const recorded = left.events.filter((e) => e.type === 'statement' && e.data.text === 'INCR crash:counter').length;
      expect(executed).toBeGreaterThan(3000);
      // Everything Redis ran is recorded, less at most the one command in flight alone.
      expect(recorded).toBeGreaterThanOrEqual(executed - 1);
    } finally {
      c.disconnect();
      direct.disconnect();
    }
  }, 90_000);
});
