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
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAudit } from '../src/audit/wire.js';
import { buildRecording } from '../src/config/recording.js';
import { systemClock } from '../src/core/clock.js';
import type { ResultObserver, SessionPipeline } from '../src/core/types.js';
import { createLogger } from '../src/obs/log.js';
import { createMetrics } from '../src/obs/metrics.js';
import { startRecording, type RecordingModule } from '../src/recording/wire.js';
import { SessionService } from '../src/session/service.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { measure, report, repsFromEnv, type CpuCase, type CpuResult } from './cpu.js';

const reps = repsFromEnv(7);
const ops = Number(process.env.BENCH_CPU_OPS ?? 20_000);
const log = createLogger({ level: 'silent' });

interface Gateway {
  recording: RecordingModule;
  open(protocol: 'postgres' | 'redis'): SessionPipeline;
  stop(): Promise<void>;
}

function gateway(recorded: boolean): Gateway {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-rec-bench-'));
  const store = openSqliteStore(join(dir, 'jitgate.db'));
  const recordingConfig = buildRecording(recorded ? undefined : { enabled: false }, dir, dir);
  const config = { dataDir: dir, recording: recordingConfig };
  const audit = startAudit({ config, db: store.database, clock: systemClock, log });
  const recording = startRecording({ config, db: store.database, audit: audit.log, clock: systemClock, log });
  const sessions = new SessionService(store, createMetrics({ defaultMetrics: false }), log);
  let n = 0;
  return {
    recording,
    open(protocol) {
      const info = { protocol, user: 'bench', connection: 'app', clientAddress: '127.0.0.1', applicationName: 'bench', tokenId: `t${n++}` };
      return recording.service.open(info, () => sessions.open(info));
    },
    async stop() {
      await recording.stop();
      audit.stop();
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
    setup() {
      const p = gw.open(protocol);
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

const results: CpuResult[] = [];
const only = process.env.BENCH_CPU_ONLY;
const all: Array<[string, 'postgres' | 'redis', Body]> = [
  ...Object.entries(bodies).map(([k, v]) => [k, v.protocol, v.body] as [string, 'postgres' | 'redis', Body]),
  ['redis -P 16', 'redis', redisPipelined],
];
for (const [name, protocol, body] of all) {
  if (only && !name.includes(only)) continue;
  // BENCH_CPU_RECORDED=only: skip the baseline (for profiling).
  for (const recorded of process.env.BENCH_CPU_RECORDED === 'only' ? [true] : [false, true]) {
    const gw = gateway(recorded);
    results.push(await measure(cpuCase(`${name} ${recorded ? 'recorded' : 'unrecorded'}`, gw, protocol, body), reps));
    await gw.stop();
  }
  const [off, on] = results.slice(-2);
  if (off && on && off.name.endsWith('unrecorded')) results.push({ name: `${name} recording cost`, median: on!.median - off!.median, min: NaN, max: NaN });
}
console.log(`recorder microbenchmark: ${ops} statements per repetition, ${reps} repetitions, CPU time (user+system) per statement`);
report(results, 'µs CPU/statement');
