/**
 * `npm run bench`: pgbench select-only (-S) directly against PostgreSQL, through pgbouncer (session
 * mode) and through jitgate, interleaved within each repetition, reporting medians and ranges of TPS,
 * latency and the proxies' own CPU per query, and the ratios jitgate/direct and jitgate/pgbouncer.
 *
 * Environment (all optional):
 *   BENCH_DURATION=10          seconds per pgbench run
 *   BENCH_REPS=3               repetitions (each runs every configuration once, in rotated order)
 *   BENCH_MODES=simple,extended,prepared
 *   BENCH_CLIENTS=1,8
 *   BENCH_TARGETS=direct,pgbouncer,jitgate,jitgate-unrecorded   (jitgate-unrecorded: recording off)
 *   BENCH_PIN=1                pin PostgreSQL + proxies to CPU 0 and pgbench to CPU 1 (default when >= 2 CPUs)
 *   BENCH_THREADS              pgbench -j (default 1 when pinned, else min(clients, CPUs))
 *   BENCH_WARMUP=3             seconds of warm-up per target before the first repetition (0 = none)
 *   BENCH_IDLE_BUSY=0.10       the machine counts as idle below this busy fraction (all CPUs, 2 s sample)
 *   BENCH_IDLE_WAIT=180        seconds to wait for idleness before each repetition, then run anyway (noted)
 *   BENCH_MAX_FOREIGN=0.10     a run during which other processes used more than this share of all CPUs is
 *                              redone (after waiting for idleness) up to BENCH_RETRIES=2 times
 *   BENCH_JSON=FILE            also write every raw measurement as JSON
 *   BENCH_MASKING=1            also run the masking case: SELECT of 100,000 rows with two masked columns,
 *                              direct vs jitgate without masking vs jitgate with masking (recording off
 *                              for both, so the difference is masking); `only` = skip pgbench, 0 = skip
 *   BENCH_MASKING_QUERIES=5    SELECTs per target per repetition (one psql session, \timing)
 *   BENCH_PROFILE=DIR          write a V8 CPU profile of each gateway child to DIR when it stops
 *
 * Runs as root or not: PostgreSQL and pgbouncer run as an unprivileged OS user (see ./pg-harness.mjs).
 * Needs pgbench and pgbouncer (Debian: apt-get install -y postgresql-client pgbouncer).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { asServerUser, chownToServerUser, freePort, harnessTmpDir, pgBin, startPostgres } from './pg-harness.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const HOST = '127.0.0.1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// jitgate: the one part that depends on the gateway's API. It runs in a child process (this script
// with --jitgate-child) so that its CPU can be measured and pinned on its own.

/**
 * The gateway configuration for the bench connection, as YAML: the child parses it with the same
 * loader as `jitgate serve --config`, so every default of a real deployment applies (the whole
 * pipeline is on, as it would be for users).
 */
function jitgateConfig({ dir, pgServer, bench, extraYaml = '' }) {
  return `
development: true
dataDir: ${join(dir, 'data')}
listeners:
  http: { host: ${HOST}, port: 0 }
  postgres: { host: ${HOST}, port: 0 }
# The other two paths run without TLS too (PGSSLMODE=disable, pgbouncer client/server TLS off).
tls: { required: false }
auth: { tokenTtl: 6h }
log: { level: warn }
shutdown: { drainTimeout: 2s }
connections:
  - name: bench
    host: ${pgServer.host}
    port: ${pgServer.port}
    database: bench
    user: ${bench.user}
    password: env:BENCH_PG_PASSWORD
    tls: { mode: disable }
${extraYaml}
`;
}

/** The jitgate variants the bench can run: the whole pipeline, and the same without recording. */
const JITGATE_VARIANTS = {
  jitgate: '',
  'jitgate-unrecorded': 'recording: { enabled: false }',
  // The masking case: two of the four columns masked (email strategy and keep-last-4).
  'jitgate-masked': `recording: { enabled: false }
masking:
  rules:
    - name: bench-pii
      columns:
        bench_people.email: email
        bench_people.ssn: { strategy: partial, keep: 4 }`,
};

const MASKING_ROWS = 100_000;
const MASKING_SELECT = 'SELECT id, email, ssn, note FROM bench_people';

/** Times `queries` runs of the masking SELECT in one psql session; the client time of each, in ms. */
function timeSelects(target, queries) {
  const args = [
    '-X',
    '-At',
    '-h',
    HOST,
    '-p',
    String(target.port),
    '-U',
    target.user,
    '-d',
    target.database,
    '-o',
    '/dev/null',
    '-c',
    '\\timing on',
  ];
  for (let i = 0; i < queries; i++) args.push('-c', MASKING_SELECT);
  return new Promise((resolve) => {
    const child = spawn(pgBin('psql'), args, {
      env: { ...process.env, PGPASSWORD: target.password, PGSSLMODE: 'disable', PGAPPNAME: 'bench-masking' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const times = [...out.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1]));
      resolve(
        code === 0 && times.length === queries
          ? { times }
          : { error: `psql exit ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}` },
      );
    });
  });
}

/** The masking case: the same 100,000-row SELECT direct, through jitgate, and through jitgate with masking. */
async function maskingCase({ available, reps, queries, idleBusy, idleWait }) {
  const names = ['direct', 'jitgate-unrecorded', 'jitgate-masked'].filter((t) => available[t]);
  const results = [];
  for (let rep = 1; rep <= reps; rep++) {
    await waitForIdle(idleBusy, idleWait);
    const order = names.map((_, i) => names[(i + rep - 1) % names.length]);
    for (const t of order) {
      const r = await timeSelects(available[t], queries);
      results.push({ rep, target: t, ...r });
      log(
        `  masking rep ${rep}/${reps} ${pad(t, 18)} ${r.error ? `ERROR ${r.error}` : `median ${median(r.times).toFixed(1)} ms per SELECT`}`,
      );
    }
  }
  const perRep = (t) => results.filter((r) => r.target === t && r.times).map((r) => ({ rep: r.rep, ms: median(r.times) }));
  const ratio = (t, base) =>
    perRep(t).flatMap((r) =>
      perRep(base)
        .filter((b) => b.rep === r.rep)
        .map((b) => r.ms / b.ms),
    );
  const lines = [
    `masking case: ${MASKING_SELECT} (${MASKING_ROWS.toLocaleString('en')} rows, email and ssn masked), ${queries} per target per repetition, psql \\timing`,
  ];
  lines.push(
    ['target', 'ms per SELECT median [min-max]', 'time /direct', 'time /jitgate unmasked']
      .map((h, i) => pad(h, [20, 32, 22, 22][i]))
      .join(' '),
  );
  for (const t of names) {
    lines.push(
      [
        pad(t, 20),
        pad(
          summary(
            perRep(t).map((r) => r.ms),
            1,
          ),
          32,
        ),
        pad(t === 'direct' ? '' : summary(ratio(t, 'direct'), 2), 22),
        t === 'jitgate-masked' ? summary(ratio(t, 'jitgate-unrecorded'), 2) : '',
      ]
        .join(' ')
        .trimEnd(),
    );
  }
  return lines.join('\n');
}

/** In the child: start the gateway, mint a token for user "bench" on connection "bench", report both. */
async function jitgateChild() {
  const { parseConfig } = await import(pathToFileURL(join(ROOT, 'dist/config/load.js')).href);
  const config = parseConfig(process.env.BENCH_JITGATE_CONFIG, 'bench.yaml', ROOT);
  const { startGateway } = await import(pathToFileURL(join(ROOT, 'dist/main.js')).href);
  const { issueAdminToken } = await import(pathToFileURL(join(ROOT, 'dist/access/grant-tokens.js')).href);
  const { AccessRepository } = await import(pathToFileURL(join(ROOT, 'dist/access/repository.js')).href);
  const gateway = await startGateway(config);
  // Every session rests on a grant: an admin-issued one, as `jitgate token --user` makes.
  const { token } = await issueAdminToken(gateway.store, await AccessRepository.open(gateway.store.sql), {
    user: 'bench',
    connection: 'bench',
    ttlMs: config.auth.tokenTtlMs,
    now: Date.now(),
    issuedBy: 'local-admin:bench',
    // The bench user belongs to no group (no masking exemption, no group-scoped rule).
    groups: [],
    groupsFrom: { kind: 'stated' },
    audit: gateway.audit,
  });
  const address = gateway.addresses.postgres;
  process.send({ ready: true, port: Number(address.slice(address.lastIndexOf(':') + 1)), token });
  process.on('SIGTERM', () => {
    gateway.close().finally(() => process.exit(0));
  });
}

/** Start jitgate in a child process; resolves to { pid, port, user, password, database, stop } or throws. */
async function startJitgate({ name = 'jitgate', pgServer, bench, baseDir, pinCpu }) {
  if (!existsSync(join(ROOT, 'dist/main.js'))) throw new Error('dist/main.js not found (run `npm run build`)');
  const dir = join(baseDir, name);
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, 'gateway.log');
  const logFd = openSync(logPath, 'a');
  const self = fileURLToPath(import.meta.url);
  // BENCH_PROFILE=DIR: a V8 CPU profile of each gateway, written there when it stops.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const [cmd, args] =
    pinCpu === undefined
      ? [process.execPath, [...profile, self, '--jitgate-child']]
      : ['taskset', ['-c', String(pinCpu), process.execPath, ...profile, self, '--jitgate-child']];
  const child = spawn(cmd, args, {
    cwd: ROOT,
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: {
      ...process.env,
      BENCH_JITGATE_CONFIG: jitgateConfig({ dir, pgServer, bench, extraYaml: JITGATE_VARIANTS[name] }),
      BENCH_PG_PASSWORD: bench.password,
    },
  });
  closeSync(logFd);
  track(child);
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not report ready within 30 s')), 30_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code ?? signal})`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}; log:\n${readFileSync(logPath, 'utf8').slice(-4000)}`, { cause: err });
  });
  child.disconnect();
  return { name, pid: child.pid, port: ready.port, user: 'bench', password: ready.token, database: 'bench', logPath, child };
}

// ---------------------------------------------------------------------------------------------
// pgbouncer

async function startPgbouncer({ pgServer, bench, baseDir, pinCpu }) {
  const bin = which('pgbouncer') ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : null);
  if (!bin) throw new Error('pgbouncer not installed (Debian: apt-get install -y pgbouncer)');
  const dir = join(baseDir, 'pgbouncer');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const userlist = join(dir, 'userlist.txt');
  writeFileSync(userlist, `"${bench.user}" "${bench.password}"\n`, { mode: 0o600 });
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    [
      '[databases]',
      `bench = host=${pgServer.host} port=${pgServer.port} dbname=bench`,
      '[pgbouncer]',
      `listen_addr = ${HOST}`,
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${userlist}`,
      'pool_mode = session',
      'max_client_conn = 100',
      'default_pool_size = 20',
      'client_tls_sslmode = disable',
      'server_tls_sslmode = disable',
      'log_connections = 0',
      'log_disconnections = 0',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  for (const p of [dir, userlist, ini]) chownToServerUser(p);
  chmodSync(dir, 0o700);
  const logPath = join(dir, 'pgbouncer.log');
  const logFd = openSync(logPath, 'a');
  const [cmd, args] = pinCpu === undefined ? [bin, [ini]] : ['taskset', ['-c', String(pinCpu), bin, ini]];
  // pgbouncer refuses to run as root, like postgres.
  const child = spawn(cmd, args, asServerUser({ cwd: dir, stdio: ['ignore', logFd, logFd] }));
  closeSync(logFd);
  track(child);
  const target = { name: 'pgbouncer', pid: child.pid, port, user: bench.user, password: bench.password, database: 'bench', logPath, child };
  try {
    await waitForQuery(target, 15_000, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${err.message}; log:\n${readFileSync(logPath, 'utf8').slice(-4000)}`, { cause: err });
  }
  return target;
}

// ---------------------------------------------------------------------------------------------
// helpers

const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
}
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function which(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function waitForQuery(target, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${target.name} exited (${child.exitCode})`);
    const client = new pg.Client({
      host: HOST,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      connectionTimeoutMillis: 2_000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      last = err;
      await client.end().catch(() => {});
      await sleep(100);
    }
  }
  throw new Error(`${target.name} did not answer within ${timeoutMs} ms: ${last?.message}`);
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process in µs (all threads), or null when it is gone. */
function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime and stime are fields 14 and 15.
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return null;
  }
}

function readCpuTotals() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total };
}

async function busyFraction(sampleMs = 2_000) {
  const a = readCpuTotals();
  await sleep(sampleMs);
  const b = readCpuTotals();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/** Wait (bounded) until the machine is otherwise idle; returns the last busy fraction seen. */
async function waitForIdle(threshold, maxWaitS) {
  const deadline = Date.now() + maxWaitS * 1000;
  let busy = await busyFraction();
  let announced = false;
  while (busy >= threshold && Date.now() < deadline) {
    if (!announced) {
      log(
        `  waiting for the machine to be idle (busy ${(busy * 100).toFixed(0)}% >= ${(threshold * 100).toFixed(0)}%, up to ${maxWaitS} s)`,
      );
      announced = true;
    }
    busy = await busyFraction();
  }
  if (busy >= threshold) log(`  machine still busy (${(busy * 100).toFixed(0)}%) after ${maxWaitS} s; running anyway`);
  return busy;
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

function envList(name, def) {
  return (process.env[name] ?? def)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function runPgbench(target, { mode, clients, threads, duration, pgbenchCpu }) {
  const args = [
    '-h',
    HOST,
    '-p',
    String(target.port),
    '-U',
    target.user,
    '-n',
    '-S',
    '-M',
    mode,
    '-c',
    String(clients),
    '-j',
    String(threads),
    '-T',
    String(duration),
    target.database,
  ];
  const [cmd, argv] =
    pgbenchCpu === undefined ? [pgBin('pgbench'), args] : ['taskset', ['-c', String(pgbenchCpu), pgBin('pgbench'), ...args]];
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { env: { ...process.env, PGPASSWORD: target.password, PGSSLMODE: 'disable', PGAPPNAME: 'pgbench' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const num = (re) => {
        const m = re.exec(out);
        return m ? Number(m[1]) : null;
      };
      const tps = num(/^tps = ([\d.]+)/m);
      const latencyMs = num(/^latency average = ([\d.]+) ms/m);
      const transactions = num(/^number of transactions actually processed: (\d+)/m);
      const failed = num(/^number of failed transactions: (\d+)/m) ?? 0;
      if (code !== 0 || tps === null || latencyMs === null || transactions === null || failed > 0) {
        resolve({ error: `pgbench exit ${code}: ${out.trim().split('\n').slice(-3).join(' | ')}` });
      } else resolve({ tps, latencyMs, transactions });
    });
  });
}

/** pid -> { ppid, cpu µs } for every process visible in /proc. */
function scanProcs() {
  const out = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), { ppid: Number(f[1]), cpu: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * CPU used during a run by processes that are not ours (not descendants of this script: PostgreSQL,
 * the proxies, pgbench) and not kernel threads, as a fraction of all CPUs. Processes that start and
 * end within the run are missed, so this is a lower bound of the interference.
 */
function foreignFraction(before, after, wallMs) {
  const ours = new Set([process.pid]);
  const kernel = new Set([2]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of after) {
      for (const set of [ours, kernel]) {
        if (!set.has(pid) && set.has(p.ppid)) {
          set.add(pid);
          grew = true;
        }
      }
    }
  }
  let foreign = 0;
  for (const [pid, p] of after) {
    if (ours.has(pid) || kernel.has(pid)) continue;
    foreign += p.cpu - (before.get(pid)?.cpu ?? 0);
  }
  return foreign / (wallMs * 1000 * cpus().length);
}

async function measure(target, opts) {
  const procsBefore = scanProcs();
  const t0 = Date.now();
  const before = target.pid ? cpuMicros(target.pid) : null;
  const r = await runPgbench(target, opts);
  const after = target.pid ? cpuMicros(target.pid) : null;
  const foreign = foreignFraction(procsBefore, scanProcs(), Date.now() - t0);
  if (r.error) return { ...r, foreign };
  const cpuUsPerQuery = before !== null && after !== null && r.transactions > 0 ? (after - before) / r.transactions : null;
  return { ...r, cpuUsPerQuery, foreign };
}

// ---------------------------------------------------------------------------------------------
// statistics and the report

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summary(xs, digits) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  if (v.length === 0) return '-';
  const f = (x) => x.toFixed(digits);
  return v.length === 1 ? f(v[0]) : `${f(median(v))} [${f(Math.min(...v))}-${f(Math.max(...v))}]`;
}

function pad(s, n) {
  return String(s).padEnd(n);
}

function report({ results, modes, clientsList, targets }) {
  const lines = [];
  const head = ['mode', 'c', 'target', 'TPS median [min-max]', 'latency ms', 'proxy CPU µs/q', '/direct', '/pgbouncer'];
  const widths = [9, 3, 10, 27, 22, 20, 20, 20];
  lines.push(head.map((h, i) => pad(h, widths[i])).join(' '));
  lines.push('-'.repeat(widths.reduce((a, b) => a + b + 1, 0)));
  for (const mode of modes) {
    for (const clients of clientsList) {
      const byTarget = Object.fromEntries(
        targets.map((t) => [t, results.filter((r) => r.mode === mode && r.clients === clients && r.target === t)]),
      );
      const ratio = (t, base) => {
        // Per-repetition ratios: both numbers come from the same (interleaved) repetition.
        const out = [];
        for (const r of byTarget[t] ?? []) {
          const b = (byTarget[base] ?? []).find((x) => x.rep === r.rep);
          if (r.tps && b?.tps) out.push(r.tps / b.tps);
        }
        return out;
      };
      for (const t of targets) {
        const rs = byTarget[t];
        const ok = rs.filter((r) => !r.error);
        const errors = rs.length - ok.length;
        lines.push(
          [
            pad(mode, widths[0]),
            pad(clients, widths[1]),
            pad(t, widths[2]),
            pad(
              summary(
                ok.map((r) => r.tps),
                0,
              ) + (errors ? ` (${errors} failed)` : ''),
              widths[3],
            ),
            pad(
              summary(
                ok.map((r) => r.latencyMs),
                3,
              ),
              widths[4],
            ),
            pad(
              t === 'direct'
                ? '-'
                : summary(
                    ok.map((r) => r.cpuUsPerQuery),
                    1,
                  ),
              widths[5],
            ),
            pad(t === 'direct' ? '' : summary(ratio(t, 'direct'), 2), widths[6]),
            pad(t.startsWith('jitgate') && targets.includes('pgbouncer') ? summary(ratio(t, 'pgbouncer'), 2) : '', widths[7]),
          ]
            .join(' ')
            .trimEnd(),
        );
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const duration = Number(process.env.BENCH_DURATION ?? 10);
  const reps = Number(process.env.BENCH_REPS ?? 3);
  const modes = envList('BENCH_MODES', 'simple,extended,prepared');
  const clientsList = envList('BENCH_CLIENTS', '1,8').map(Number);
  let targets = envList('BENCH_TARGETS', 'direct,pgbouncer,jitgate,jitgate-unrecorded');
  const ncpu = cpus().length;
  const pin = (process.env.BENCH_PIN ?? (ncpu >= 2 ? '1' : '0')) !== '0' && which('taskset') !== null;
  const serverCpu = pin ? 0 : undefined;
  const pgbenchCpu = pin ? 1 : undefined;
  const threadsFor = (c) => Number(process.env.BENCH_THREADS ?? (pin ? 1 : Math.min(c, ncpu)));
  const warmup = Number(process.env.BENCH_WARMUP ?? 3);
  const idleBusy = Number(process.env.BENCH_IDLE_BUSY ?? 0.1);
  const idleWait = Number(process.env.BENCH_IDLE_WAIT ?? 180);
  const maxForeign = Number(process.env.BENCH_MAX_FOREIGN ?? 0.1);
  const maxRetries = Number(process.env.BENCH_RETRIES ?? 2);
  if (reps < 3) log(`bench: note: ${reps} repetition(s); medians and ranges mean little below 3`);
  if (!existsSync(pgBin('pgbench')) && !which('pgbench'))
    throw new Error('pgbench not found (Debian: apt-get install -y postgresql-client)');

  const baseDir = mkdtempSync(join(harnessTmpDir(), 'jitgate-bench-'));
  process.on('exit', () => rmSync(baseDir, { recursive: true, force: true }));
  chmodSync(baseDir, 0o755);
  chownToServerUser(baseDir);
  log(`bench: working in ${baseDir}`);
  const pgServer = await startPostgres({ cpuAffinity: serverCpu, conf: { max_connections: 100, shared_buffers: '128MB' } });
  const stops = [async () => pgServer.cleanup()];
  const bench = { user: 'bench', password: `bench-${Math.random().toString(36).slice(2)}` };
  try {
    log(`bench: PostgreSQL on ${pgServer.host}:${pgServer.port} (${pgServer.startupMs} ms to start)`);
    await pgServer.query(`CREATE ROLE ${bench.user} LOGIN PASSWORD '${bench.password}'`, undefined, { database: 'postgres' });
    await pgServer.query(`CREATE DATABASE bench OWNER ${bench.user}`, undefined, { database: 'postgres' });
    const init = spawnSync(pgBin('pgbench'), ['-i', '-s', '1', '-q', '-h', HOST, '-p', String(pgServer.port), '-U', bench.user, 'bench'], {
      encoding: 'utf8',
      env: { ...process.env, PGPASSWORD: bench.password, PGSSLMODE: 'disable' },
    });
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const maskingMode = process.env.BENCH_MASKING ?? '1';
    if (maskingMode !== '0') {
      await pgServer.query(
        `CREATE TABLE bench_people AS SELECT g AS id, 'person' || g || '@example.com' AS email, lpad(g::text, 9, '0') AS ssn, 'note number ' || g AS note FROM generate_series(1, ${MASKING_ROWS}) g;
         ALTER TABLE bench_people OWNER TO ${bench.user}`,
        undefined,
        { database: 'bench' },
      );
      await pgServer.query('VACUUM ANALYZE bench_people', undefined, { database: 'bench' });
      // The masking case needs these three, whatever BENCH_TARGETS says.
      for (const t of ['direct', 'jitgate-unrecorded', 'jitgate-masked']) if (!targets.includes(t)) targets.push(t);
    }
    await pgServer.query('CHECKPOINT', undefined, { database: 'postgres' });

    const available = {};
    const direct = { name: 'direct', pid: null, port: pgServer.port, user: bench.user, password: bench.password, database: 'bench' };
    if (targets.includes('direct')) available.direct = direct;
    if (targets.includes('pgbouncer')) {
      try {
        available.pgbouncer = await startPgbouncer({ pgServer, bench, baseDir, pinCpu: serverCpu });
        stops.push(async () => available.pgbouncer.child.kill('SIGTERM'));
        log(`bench: pgbouncer on port ${available.pgbouncer.port} (pid ${available.pgbouncer.pid})`);
      } catch (err) {
        log(`bench: SKIPPING pgbouncer: ${err.message}`);
      }
    }
    for (const name of Object.keys(JITGATE_VARIANTS).filter((t) => targets.includes(t))) {
      try {
        const gw = await startJitgate({ name, pgServer, bench, baseDir, pinCpu: serverCpu });
        stops.push(async () => gw.child.kill('SIGTERM'));
        await waitForQuery(gw, 15_000, gw.child);
        available[name] = gw;
        log(`bench: ${name} on port ${gw.port} (pid ${gw.pid})`);
      } catch (err) {
        log(`bench: SKIPPING ${name} (the gateway did not start or does not relay yet): ${err.message}`);
      }
    }
    const maskingReport =
      maskingMode !== '0'
        ? await maskingCase({ available, reps, queries: Number(process.env.BENCH_MASKING_QUERIES ?? 5), idleBusy, idleWait })
        : undefined;
    // The masked gateway is only for the masking case; pgbench tables are not masked anyway.
    targets = targets.filter((t) => available[t] && t !== 'jitgate-masked');
    if (maskingMode === 'only') {
      console.log('');
      console.log(maskingReport);
      return;
    }
    if (targets.length === 0) throw new Error('no target available');

    if (warmup > 0) {
      log(`bench: warm-up ${warmup} s per target`);
      for (const t of targets)
        await runPgbench(available[t], { mode: 'prepared', clients: 8, threads: threadsFor(8), duration: warmup, pgbenchCpu });
    }

    const results = [];
    const idle = [];
    let retried = 0;
    let disturbed = 0;
    const t0 = Date.now();
    for (let rep = 1; rep <= reps; rep++) {
      idle.push(await waitForIdle(idleBusy, idleWait));
      // Rotate the target order each repetition so no target always runs first.
      const order = targets.map((_, i) => targets[(i + rep - 1) % targets.length]);
      for (const mode of modes) {
        for (const clients of clientsList) {
          for (const t of order) {
            const run = () => measure(available[t], { mode, clients, threads: threadsFor(clients), duration, pgbenchCpu });
            let r = await run();
            // A run disturbed by other work on this shared machine is redone (bounded) once it is calm.
            for (let retry = 1; retry <= maxRetries && r.foreign > maxForeign; retry++) {
              log(
                `  rep ${rep}/${reps} ${pad(mode, 8)} c=${pad(clients, 2)} ${pad(t, 9)} disturbed (${(r.foreign * 100).toFixed(0)}% foreign CPU), redoing`,
              );
              retried++;
              await waitForIdle(idleBusy, Math.min(idleWait, 60));
              r = await run();
            }
            if (r.foreign > maxForeign) disturbed++;
            results.push({ rep, mode, clients, target: t, ...r });
            log(
              `  rep ${rep}/${reps} ${pad(mode, 8)} c=${pad(clients, 2)} ${pad(t, 9)} ` +
                (r.error
                  ? `ERROR ${r.error}`
                  : `tps ${r.tps.toFixed(0).padStart(6)}  lat ${r.latencyMs.toFixed(3)} ms` +
                    (r.cpuUsPerQuery != null ? `  cpu ${r.cpuUsPerQuery.toFixed(1)} µs/q` : '') +
                    `  foreign ${(r.foreign * 100).toFixed(0)}%`),
            );
          }
        }
      }
    }

    const pgVersion = (await pgServer.query("SELECT current_setting('server_version') AS v")).rows[0].v;
    const bouncerVersion = which('pgbouncer') ? spawnSync('pgbouncer', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] : 'n/a';
    const model = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? 'unknown CPU';
    console.log('');
    console.log(
      `pgbench -S, scale 1, ${duration} s per run, ${reps} repetitions (interleaved, rotated), ${((Date.now() - t0) / 1000).toFixed(0)} s total`,
    );
    console.log(`${ncpu} x ${model}; PostgreSQL ${pgVersion}; ${bouncerVersion}; Node ${process.version}`);
    console.log(pin ? 'pinned: PostgreSQL + proxy on CPU 0, pgbench on CPU 1 (-j 1)' : 'not pinned');
    console.log(
      `machine busy before each repetition: ${idle.map((b) => `${(b * 100).toFixed(0)}%`).join(', ')} (threshold ${(idleBusy * 100).toFixed(0)}%)`,
    );
    const foreign = results.map((r) => r.foreign);
    console.log(
      `foreign CPU during runs: median ${(median(foreign) * 100).toFixed(1)}%, max ${(Math.max(...foreign) * 100).toFixed(1)}%; ` +
        `${retried} run(s) redone, ${disturbed} still above ${(maxForeign * 100).toFixed(0)}%`,
    );
    console.log('all paths: TCP on 127.0.0.1, no TLS; proxy CPU = utime+stime of the proxy process / transactions (1 query each)');
    for (const name of Object.keys(JITGATE_VARIANTS))
      if (!available[name] && envList('BENCH_TARGETS', 'direct,pgbouncer,jitgate,jitgate-unrecorded').includes(name))
        console.log(`${name}: SKIPPED (see the message above)`);
    console.log('');
    console.log(report({ results, modes, clientsList, targets }));
    if (maskingReport) {
      console.log('');
      console.log(maskingReport);
    }
    if (process.env.BENCH_JSON) {
      writeFileSync(process.env.BENCH_JSON, JSON.stringify({ duration, reps, pin, idle, results }, null, 2));
      console.log(`raw results: ${process.env.BENCH_JSON}`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(baseDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--jitgate-child') {
  await jitgateChild();
} else {
  // Exit handlers (here and in pg-harness) stop every server and child on Ctrl-C.
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  try {
    await main();
  } catch (err) {
    console.error(`bench failed: ${err?.stack ?? err}`);
    process.exitCode = 1;
  }
}
