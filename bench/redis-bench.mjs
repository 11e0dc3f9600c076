/**
 * `npm run bench` (Redis part): redis-benchmark GET and SET, without and with pipelining (-P 16),
 * directly against a private Redis and through jitgate (recording on, as deployed; and off),
 * interleaved within each repetition; prints the median requests per second and the ratios
 * jitgate/direct.
 *
 * Environment (all optional):
 *   BENCH_REDIS_REQUESTS=100000   requests per redis-benchmark run
 *   BENCH_REDIS_CLIENTS=50        parallel connections
 *   BENCH_REDIS_REPS=3            repetitions
 *   BENCH_REDIS=0                 skip this part
 *
 * Needs redis-server and redis-benchmark, and a build (`npm run build`): the gateway runs from dist/.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startRedis } from './redis-harness.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const REQUESTS = Number(process.env.BENCH_REDIS_REQUESTS ?? 100_000);
const CLIENTS = Number(process.env.BENCH_REDIS_CLIENTS ?? 50);
const REPS = Number(process.env.BENCH_REDIS_REPS ?? 3);

async function startJitgate(redis, recording) {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-redis-bench-'));
  const { parseConfig } = await import(pathToFileURL(join(ROOT, 'dist/config/load.js')).href);
  const { startGateway } = await import(pathToFileURL(join(ROOT, 'dist/main.js')).href);
  const { issueAdminToken } = await import(pathToFileURL(join(ROOT, 'dist/access/grant-tokens.js')).href);
  const { AccessRepository } = await import(pathToFileURL(join(ROOT, 'dist/access/repository.js')).href);
  const config = parseConfig(
    `
development: true
dataDir: ${join(dir, 'data')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
  redis: { host: 127.0.0.1, port: 0 }
tls: { required: false }
auth: { tokenTtl: 6h }
log: { level: warn }
shutdown: { drainTimeout: 2s }
connections:
  - { name: bench, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: env:REDIS_BENCH_PW, tls: { mode: disable } }
${recording ? '' : 'recording: { enabled: false }'}
`,
    'bench.yaml',
    dir,
  );
  const gateway = await startGateway(config, { env: { REDIS_BENCH_PW: redis.users.gateway.password } });
  const { token } = await issueAdminToken(gateway.store, await AccessRepository.open(gateway.store.sql), {
    user: 'bench',
    connection: 'bench',
    ttlMs: 6 * 3_600_000,
    now: Date.now(),
    issuedBy: 'local-admin:bench',
    // The bench user belongs to no group (no masking exemption, no group-scoped rule).
    groups: [],
    groupsFrom: { kind: 'stated' },
    audit: gateway.audit,
  });
  const port = Number(gateway.addresses.redis.split(':').pop());
  return {
    auth: { port, user: 'bench@bench', password: token },
    async close() {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** requests per second of each test in one redis-benchmark run. */
function benchmark({ port, user, password }, pipeline) {
  return new Promise((resolve, reject) => {
    const args = [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '--user',
      user,
      '-a',
      password,
      '-t',
      'set,get',
      '-n',
      String(REQUESTS),
      '-c',
      String(CLIENTS),
      '-P',
      String(pipeline),
      '--csv',
    ];
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`redis-benchmark failed (${code}): ${err}`));
      const rps = {};
      for (const line of out.split('\n')) {
        const m = /^"(SET|GET)","([\d.]+)"/.exec(line);
        if (m) rps[m[1]] = Number(m[2]);
      }
      resolve(rps);
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  if (process.env.BENCH_REDIS === '0') return;
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/main.js not found (run `npm run build`)');
  const redis = await startRedis();
  const targets = {
    direct: { port: redis.port, user: redis.users.gateway.user, password: redis.users.gateway.password },
  };
  const gateways = [await startJitgate(redis, true), await startJitgate(redis, false)];
  targets.jitgate = gateways[0].auth;
  targets['jitgate-unrecorded'] = gateways[1].auth;
  const results = {};
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const names = Object.keys(targets);
      // Rotated order, so no target always runs first (or last) in a repetition.
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + rep) % names.length];
        for (const pipeline of [1, 16]) {
          const r = await benchmark(targets[name], pipeline);
          for (const [test, rps] of Object.entries(r)) ((results[`${test} -P ${pipeline}`] ??= {})[name] ??= []).push(rps);
        }
      }
    }
  } finally {
    for (const g of gateways) await g.close();
    await redis.stop();
  }
  console.log(`\nredis-benchmark: ${REQUESTS} requests, ${CLIENTS} clients, median of ${REPS} (requests/s)`);
  console.log('test        direct      jitgate   ratio   jitgate-unrecorded   ratio');
  for (const [test, by] of Object.entries(results)) {
    const d = median(by.direct);
    const j = median(by.jitgate);
    const u = median(by['jitgate-unrecorded']);
    console.log(
      `${test.padEnd(10)} ${d.toFixed(0).padStart(8)} ${j.toFixed(0).padStart(12)} ${(j / d).toFixed(2).padStart(7)} ${u.toFixed(0).padStart(20)} ${(u / d).toFixed(2).padStart(7)}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
