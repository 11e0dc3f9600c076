/**
 * `npm run bench` (MySQL part): a mysql2 load loop of one-row SELECTs directly against a private
 * MariaDB and through jitgate (whole pipeline, recording on), text protocol (query) and prepared
 * statements (execute), 1 and 8 connections, repetitions interleaved; medians and ranges of
 * queries per second and the ratio jitgate/direct. The gateway runs in a child process so it does
 * not share the load generator's event loop.
 *
 * Environment (all optional):
 *   BENCH_MYSQL_DURATION=5     seconds per run
 *   BENCH_MYSQL_REPS=3         repetitions
 *   BENCH_MYSQL_CLIENTS=1,8
 *   BENCH_MYSQL=0              skip
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import mysql from 'mysql2/promise';
import { startMariadb } from './mysql-harness.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

if (process.argv[2] === '--gateway-child') {
  await gatewayChild(JSON.parse(process.argv[3]));
} else if (process.env.BENCH_MYSQL !== '0') {
  await main();
}

async function gatewayChild({ port, user, password, dir }) {
  const { parseConfig } = await import(pathToFileURL(join(ROOT, 'dist/config/load.js')).href);
  const { startGateway } = await import(pathToFileURL(join(ROOT, 'dist/main.js')).href);
  const { issueAdminToken } = await import(pathToFileURL(join(ROOT, 'dist/access/grant-tokens.js')).href);
  const { AccessRepository } = await import(pathToFileURL(join(ROOT, 'dist/access/repository.js')).href);
  const yaml = `
development: true
dataDir: ${join(dir, 'data')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
  mysql: { host: 127.0.0.1, port: 0 }
tls: { required: false }
auth: { tokenTtl: 6h }
log: { level: warn }
connections:
  - { name: app, type: mysql, host: 127.0.0.1, port: ${port}, database: app, user: ${user}, password: env:BENCH_MY_PASSWORD, tls: { mode: disable } }
`;
  process.env.BENCH_MY_PASSWORD = password;
  const gateway = await startGateway(parseConfig(yaml, 'bench.yaml', dir));
  const repo = await AccessRepository.open(gateway.store.sql);
  const { token } = await issueAdminToken(gateway.store, repo, {
    user: 'bench',
    connection: 'app',
    ttlMs: 6 * 3_600_000,
    now: Date.now(),
    issuedBy: 'bench',
    groups: [],
    groupsFrom: { kind: 'stated' },
    audit: gateway.audit,
  });
  process.stdout.write(JSON.stringify({ address: gateway.addresses.mysql, token }) + '\n');
  process.on('SIGTERM', () => void gateway.close().then(() => process.exit(0)));
}

function startGatewayChild(my, dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--gateway-child', JSON.stringify({ port: my.port, ...my.users.native, dir })],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        const { address, token } = JSON.parse(line);
        const i = address.lastIndexOf(':');
        resolve({ child, host: address.slice(0, i), port: Number(address.slice(i + 1)), token });
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway child exited with ${code}`)));
  });
}

async function run(target, mode, clients, seconds) {
  const conns = await Promise.all(Array.from({ length: clients }, () => mysql.createConnection(target)));
  const deadline = Date.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    conns.map(async (c, n) => {
      for (let i = n; Date.now() < deadline; i++) {
        const id = (i % 3) + 1;
        if (mode === 'prepared') await c.execute('SELECT id, name, price FROM items WHERE id = ?', [id]);
        else await c.query(`SELECT id, name, price FROM items WHERE id = ${id}`);
        count++;
      }
    }),
  );
  await Promise.all(conns.map((c) => c.end()));
  return count / seconds;
}

function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

async function main() {
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/main.js not found (run `npm run build`)');
  const seconds = Number(process.env.BENCH_MYSQL_DURATION ?? 5);
  const reps = Number(process.env.BENCH_MYSQL_REPS ?? 3);
  const clientCounts = (process.env.BENCH_MYSQL_CLIENTS ?? '1,8').split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-mysql-bench-'));
  const my = await startMariadb();
  let gw;
  try {
    gw = await startGatewayChild(my, dir);
    const targets = {
      direct: { host: my.host, port: my.port, user: my.users.native.user, password: my.users.native.password, database: 'app' },
      jitgate: { host: gw.host, port: gw.port, user: 'bench', password: gw.token, database: 'app' },
    };
    const results = new Map();
    for (let r = 0; r < reps; r++) {
      for (const mode of ['query', 'prepared']) {
        for (const clients of clientCounts) {
          const order = r % 2 === 0 ? ['direct', 'jitgate'] : ['jitgate', 'direct'];
          for (const name of order) {
            const key = `${mode}\t${clients}\t${name}`;
            const qps = await run(targets[name], mode, clients, seconds);
            results.set(key, [...(results.get(key) ?? []), qps]);
          }
        }
      }
    }
    console.log(
      `\nmysql2 load loop: one-row SELECT, ${seconds} s per run, ${reps} repetitions interleaved (MariaDB, no TLS; jitgate with recording)`,
    );
    console.log(['mode', 'c', 'target', 'QPS median [min-max]', '/direct'].map((h, i) => h.padEnd([10, 4, 10, 26, 10][i])).join(''));
    for (const mode of ['query', 'prepared']) {
      for (const clients of clientCounts) {
        const direct = median(results.get(`${mode}\t${clients}\tdirect`));
        for (const name of ['direct', 'jitgate']) {
          const xs = results.get(`${mode}\t${clients}\t${name}`);
          const m = median(xs);
          const range = `${Math.round(m)} [${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))}]`;
          console.log(
            [mode, String(clients), name, range, name === 'direct' ? '-' : (m / direct).toFixed(2)]
              .map((v, i) => v.padEnd([10, 4, 10, 26, 10][i]))
              .join(''),
          );
        }
      }
    }
  } finally {
    if (gw) {
      // The gateway closes its recordings before it exits; the directory goes after that.
      const exited = new Promise((r) => gw.child.once('exit', r));
      gw.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    await my.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}
