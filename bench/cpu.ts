/**
 * CPU-time microbenchmarks: what one operation costs the process in CPU (user + system, every
 * thread, from process.cpuUsage), not wall time, so a machine busy with other work still gives
 * comparable figures. Each case runs `reps` times after a warm-up; the median and range of the
 * per-repetition means are reported.
 */

export interface CpuCase {
  name: string;
  /** Operations per repetition. */
  ops: number;
  /** Set up a fresh repetition (not measured); returns the body to run `ops` times, and an optional teardown. */
  setup(): Promise<CpuRun> | CpuRun;
}

export interface CpuRun {
  /** Runs operations [from, to); may be async (e.g. to let fsyncs and timers run between slices). */
  run(from: number, to: number): void | Promise<void>;
  teardown?(): void | Promise<void>;
}

export interface CpuResult {
  name: string;
  median: number;
  min: number;
  max: number;
}

/** Operations per slice: between slices the event loop runs (fsyncs finish, timers fire). */
const SLICE = 200;

export async function measure(c: CpuCase, reps: number): Promise<CpuResult> {
  const perOp: number[] = [];
  for (let r = -1; r < reps; r++) {
    const run = await c.setup();
    const before = process.cpuUsage();
    for (let from = 0; from < c.ops; from += SLICE) {
      await run.run(from, Math.min(c.ops, from + SLICE));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const used = process.cpuUsage(before);
    await run.teardown?.();
    // The first repetition warms up the JIT and is not counted.
    if (r >= 0) perOp.push((used.user + used.system) / c.ops);
  }
  perOp.sort((a, b) => a - b);
  return { name: c.name, median: perOp[Math.floor(perOp.length / 2)]!, min: perOp[0]!, max: perOp.at(-1)! };
}

export function report(results: CpuResult[], unit = 'µs CPU/op'): void {
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    const range = Number.isNaN(r.min) ? '' : `  [${r.min.toFixed(2)}-${r.max.toFixed(2)}]`;
    console.log(`${r.name.padEnd(width)}  ${r.median.toFixed(2).padStart(8)} ${unit}${range}`);
  }
}

export function repsFromEnv(fallback: number): number {
  const n = Number(process.env.BENCH_CPU_REPS ?? fallback);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}
