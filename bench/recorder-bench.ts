/**
 * CPU cost of recording a statement (issue 15), without sockets: the recording service as
 * main.ts wires it (SessionService for grant checks and metrics, the recorder, the local-file sink
 * with its per-boundary write and group-committed fsync, the statement index, the audit log), fed
 * the events the relays produce for pgbench's one-row SELECTs and for Redis commands. The same
 * loop with `recording: { enabled: false }` is the baseline; the difference is what recording costs.
 *
 *   node --import tsx bench/recorder-bench.ts        (BENCH_CPU_REPS=7, BENCH_CPU_OPS=20000)
 *
 * Figures are CPU time per statement (or per Redis command), medians of repetitions; see ./cpu.ts.
 * BENCH_COMPARE_WITH=<another checkout's root> runs that checkout's recording too, interleaved
 * repetition by repetition in the same process (the fair before/after on a busy machine);
 * BENCH_CPU_ONLY=<text> keeps the cases whose name contains it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as auditWire from '../src/audit/wire.js';
import * as recordingConfigModule from '../src/config/recording.js';
import { systemClock } from '../src/core/clock.js';
import type { ResultObserver, SessionPipeline } from '../src/core/types.js';
import { createLogger } from '../src/obs/log.js';
import * as metricsModule from '../src/obs/metrics.js';
import * as recordingWire from '../src/recording/wire.js';
import type { RecordingModule } from '../src/recording/wire.js';
import * as sessionServiceModule from '../src/session/service.js';
import * as sqliteModule from '../src/store/sqlite.js';
import * as sharedKeysModule from '../src/credentials/shared-keys.js';
import { measure, report, repsFromEnv, type CpuCase, type CpuResult } from './cpu.js';

/** The modules a gateway is built from: this tree's, or another checkout's for comparison. */
interface Tree {
  label: string;
  audit: typeof auditWire;
  config: typeof recordingConfigModule;
  metrics: typeof metricsModule;
  recording: typeof recordingWire;
  sessions: typeof sessionServiceModule;
  sqlite: typeof sqliteModule;
  keys: typeof sharedKeysModule;
}
const trees: Tree[] = [
  {
    label: '',
    audit: auditWire,
    config: recordingConfigModule,
    metrics: metricsModule,
    recording: recordingWire,
    sessions: sessionServiceModule,
    sqlite: sqliteModule,
    keys: sharedKeysModule,
  },
];
const other = process.env.BENCH_COMPARE_WITH;
if (other) {
  trees[0]!.label = ' (this tree)';
  const load = <T>(path: string) => import(`${other}/src/${path}`) as Promise<T>;
  trees.push({
    label: ` (${other})`,
    audit: await load<typeof auditWire>('audit/wire.ts'),
    config: await load<typeof recordingConfigModule>('config/recording.ts'),
    metrics: await load<typeof metricsModule>('obs/metrics.ts'),
    recording: await load<typeof recordingWire>('recording/wire.ts'),
    sessions: await load<typeof sessionServiceModule>('session/service.ts'),
    sqlite: await load<typeof sqliteModule>('store/sqlite.ts'),
    keys: await load<typeof sharedKeysModule>('credentials/shared-keys.ts'),
  });
}

const reps = repsFromEnv(7);
const ops = Number(process.env.BENCH_CPU_OPS ?? 20_000);
const log = createLogger({ level: 'silent' });

interface Gateway {
  recording: RecordingModule;
  open(protocol: 'postgres' | 'redis'): Promise<SessionPipeline>;
  stop(): Promise<void>;
}

async function gateway(recorded: boolean, t: Tree): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-rec-bench-'));
  const store = t.sqlite.openSqliteStore(join(dir, 'jitgate.db'));
  const recordingConfig = t.config.buildRecording(recorded ? undefined : { enabled: false }, dir, dir);
  const config = { dataDir: dir, recording: recordingConfig };
  // Keys in files, as a single gateway without a master key keeps them (an older tree ignores the
  // option); the store's connection as this tree takes it (sql) and as older ones did (db).
  const auditOptions = { config, sql: store.sql, db: store.database, clock: systemClock, log, keys: t.keys.SharedKeys.local() };
  const audit = await t.audit.startAudit(auditOptions);
  const recording = t.recording.startRecording({ config, db: store.database, audit: audit.log, clock: systemClock, log });
  const sessions = new t.sessions.SessionService(store, t.metrics.createMetrics({ defaultMetrics: false }), log);
  let n = 0;
  return {
    recording,
    async open(protocol) {
      const info = { protocol, user: 'bench', connection: 'app', clientAddress: '127.0.0.1', applicationName: 'bench', tokenId: `t${n++}` };
      // Awaited: opening a session is async since the store is (an older tree opens at once).
      return await recording.service.open(info, () => sessions.open(info));
    },
    async stop() {
      await recording.stop();
      await audit.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PG_COLUMNS = [{ name: 'abalance', type: 23 }];
const REDIS_COLUMNS = Object.freeze([Object.freeze({ name: 'reply', type: 0 })]) as unknown as Array<{ name: string; type: number }>;

/** What the PostgreSQL relay reports for one pgbench -S transaction after the statement. */
function pgResult(o: ResultObserver, i: number): void {
  o.onResult({ kind: 'columns', columns: PG_COLUMNS });
  if (o.wantsRows()) o.onResult({ kind: 'row', values: [String(i % 5000)] });
  o.onResult({ kind: 'complete', tag: 'SELECT 1' });
}

function redisReply(o: ResultObserver, i: number): void {
  o.onResult({ kind: 'columns', columns: REDIS_COLUMNS });
  if (o.wantsRows()) o.onResult({ kind: 'row', values: [`"value:${i}"`] });
  o.onResult({ kind: 'complete', tag: 'reply' });
}

type Body = (p: SessionPipeline, o: ResultObserver | undefined, i: number) => void;

const bodies: Record<string, { protocol: 'postgres' | 'redis'; body: Body }> = {
  'pg simple': {
    protocol: 'postgres',
    body(p, o, i) {
      p.decide({ source: 'simple', text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 7919) % 100000};` });
      if (o) pgResult(o, i);
      o?.onResult({ kind: 'ready' });
    },
  },
  'pg extended': {
    protocol: 'postgres',
    body(p, o, i) {
      p.decide({ source: 'parse', name: '', text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;' });
      o?.onBind?.({ portal: '', statement: '', values: [String((i * 7919) % 100000)], cut: [], sizes: [5] });
      if (o) pgResult(o, i);
      o?.onResult({ kind: 'ready' });
    },
  },
  'redis -P 1': {
    protocol: 'redis',
    body(p, o, i) {
      p.decide({ source: 'command', text: `GET key:${String(i % 10000).padStart(12, '0')}` });
      if (o) redisReply(o, i);
      o?.onResult({ kind: 'ready' });
    },
  },
};

/** 16 pipelined commands: made durable before they are forwarded, then 16 replies and one boundary (per command). */
const PIPELINE = 16;
function redisPipelined(p: SessionPipeline, o: ResultObserver | undefined, i: number): void {
  if (i % PIPELINE !== 0) return;
  for (let k = 0; k < PIPELINE; k++) p.decide({ source: 'command', text: `SET key:${String((i + k) % 10000).padStart(12, '0')} xxx` });
  p.checkpoint?.();
  if (o) for (let k = 0; k < PIPELINE; k++) redisReply(o, i + k);
  o?.onResult({ kind: 'ready' });
}

function cpuCase(name: string, gw: Gateway, protocol: 'postgres' | 'redis', body: Body): CpuCase {
  return {
    name,
    ops,
    async setup() {
      const p = await gw.open(protocol);
      const o = p.observer;
      return {
        run(from, to) {
          for (let i = from; i < to; i++) body(p, o, i);
        },
        async teardown() {
          p.end('client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: ops });
          // Wait until the recording is closed and compressed, so that work does not bleed into the next repetition.
          for (let t = 0; t < 3000 && gw.recording.service.isLive(p.id); t++) await new Promise((r) => setTimeout(r, 10));
        },
      };
    },
  };
}

const only = process.env.BENCH_CPU_ONLY;
const all: Array<[string, 'postgres' | 'redis', Body]> = [
  ...Object.entries(bodies).map(([k, v]) => [k, v.protocol, v.body] as [string, 'postgres' | 'redis', Body]),
  ['redis -P 16', 'redis', redisPipelined],
];
// BENCH_CPU_RECORDED=only: skip the baseline (for profiling).
const modes = process.env.BENCH_CPU_RECORDED === 'only' ? [true] : [false, true];
const gateways = new Map<string, Gateway>();
const cases: CpuCase[] = [];
for (const [name, protocol, body] of all) {
  if (only && !name.includes(only)) continue;
  for (const recorded of modes) {
    for (const t of trees) {
      const key = `${recorded}${t.label}`;
      if (!gateways.has(key)) gateways.set(key, await gateway(recorded, t));
      cases.push(cpuCase(`${name} ${recorded ? 'recorded' : 'unrecorded'}${t.label}`, gateways.get(key)!, protocol, body));
    }
  }
}
// Interleaved: one repetition of each case in turn, so load changes hit every case alike.
const perCase = new Map<string, number[]>();
for (let r = 0; r < reps; r++) {
  for (const c of cases) {
    const one = await measure(c, 1);
    perCase.set(c.name, [...(perCase.get(c.name) ?? []), one.median]);
  }
}
const results: CpuResult[] = [];
const medianOf = (name: string) => results.find((r) => r.name === name)?.median;
for (const c of cases) {
  const v = perCase.get(c.name)!.sort((a, b) => a - b);
  results.push({ name: c.name, median: v[Math.floor(v.length / 2)]!, min: v[0]!, max: v.at(-1)! });
}
for (const [name] of all) {
  for (const t of trees) {
    const on = medianOf(`${name} recorded${t.label}`);
    const off = medianOf(`${name} unrecorded${t.label}`);
    if (on !== undefined && off !== undefined)
      results.push({ name: `${name} recording cost${t.label}`, median: on - off, min: NaN, max: NaN });
  }
}
for (const g of gateways.values()) await g.stop();
console.log(`recorder microbenchmark: ${ops} statements per repetition, ${reps} repetitions, CPU time (user+system) per statement`);
report(results, 'µs CPU/statement');
