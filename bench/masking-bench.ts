/**
 * CPU cost of masking result rows (issue 15), without sockets: the PostgreSQL result masker fed
 * the backend's messages for `SELECT id, email, ssn, note FROM bench_people` (the masking case of
 * ./pgbench.mjs) in 64 KiB chunks as a socket delivers them, `email` masked with the email strategy
 * and `ssn` keeping its last 4, with the output gathered per chunk the way the relay's forwarding
 * buffer does (unchanged bytes as slices, rebuilt rows injected, one buffer per chunk). The same
 * rows with no masked column are the baseline (the masker leaves them alone).
 *
 *   node --import tsx bench/masking-bench.ts        (BENCH_CPU_REPS=7, BENCH_MASK_ROWS=100000)
 *
 * BENCH_COMPARE_WITH=<another checkout's root> runs that checkout's masker too, interleaved
 * repetition by repetition in the same process: on a busy machine the only fair before/after.
 *
 * Figures are CPU time per row, medians of repetitions; see ./cpu.ts.
 */
import type { ColumnMask, StatementMaskPlan } from '../src/core/types.js';
import { MaskingSession } from '../src/masking/session.js';
import type { PostgresMasking } from '../src/protocols/postgres/masking.js';
import { Output } from '../src/protocols/postgres/output.js';
import { REBUILT_ROW, ResultMasker } from '../src/protocols/postgres/result-masker.js';
import { measure, report, repsFromEnv, type CpuCase, type CpuResult } from './cpu.js';

interface MaskerModules {
  label: string;
  ResultMasker: typeof ResultMasker;
  MaskingSession: typeof MaskingSession;
}
const here: MaskerModules = { label: '', ResultMasker, MaskingSession };
const other = process.env.BENCH_COMPARE_WITH;
const modules: MaskerModules[] = [here];
if (other) {
  here.label = ' (this tree)';
  const r = (await import(`${other}/src/protocols/postgres/result-masker.ts`)) as { ResultMasker: typeof ResultMasker };
  const m = (await import(`${other}/src/masking/session.ts`)) as { MaskingSession: typeof MaskingSession };
  modules.push({ label: ` (${other})`, ResultMasker: r.ResultMasker, MaskingSession: m.MaskingSession });
}

const reps = repsFromEnv(7);
const rows = Number(process.env.BENCH_MASK_ROWS ?? 100_000);
const CHUNK = 64 * 1024;

const EMAIL: ColumnMask = { rule: 'people-email', reason: 'masked_column', strategy: 'email' };
const SSN: ColumnMask = { rule: 'people-ssn', reason: 'masked_column', strategy: 'partial', keepLast: 4 };

/** The real masking strategies (MaskingSession.maskValue); the plan is given, as lineage would give it. */
function sessionMasking(columns: Array<ColumnMask | undefined>, mods: MaskerModules): PostgresMasking {
  const real = new mods.MaskingSession({
    rules: [],
    detectors: [],
    hashKey: Buffer.alloc(32),
    loadCatalog: () => Promise.reject(new Error('not used')),
  });
  const plan: StatementMaskPlan = { columns, fallback: undefined, touchesMasked: columns.some(Boolean) };
  return {
    prepare: async () => undefined,
    check: () => undefined,
    plan: () => [plan],
    originMask: () => undefined,
    maskValue: (mask, value) => real.maskValue(mask, value),
    // Checkouts from before byte-level masking have none: every value is masked as text there.
    maskBytes: (mask) => (real as Partial<Pick<PostgresMasking, 'maskBytes'>>).maskBytes?.(mask),
  };
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function rowDescription(cols: Array<[string, number]>): Buffer {
  const parts = [Buffer.from([0, cols.length])];
  for (const [name, type] of cols) {
    const b = Buffer.alloc(18);
    b.writeUInt32BE(16400, 0);
    b.writeUInt32BE(type, 6);
    parts.push(Buffer.from(name + '\0'), b);
  }
  return message('T', Buffer.concat(parts));
}

function dataRow(values: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const v of values) {
    const bytes = Buffer.from(v);
    const len = Buffer.alloc(4);
    len.writeInt32BE(bytes.length);
    parts.push(len, bytes);
  }
  return message('D', Buffer.concat(parts));
}

/** The backend's bytes for the whole result, cut into socket-sized chunks at arbitrary places. */
function backendChunks(): Buffer[] {
  const parts = [
    rowDescription([
      ['id', 23],
      ['email', 25],
      ['ssn', 25],
      ['note', 25],
    ]),
  ];
  for (let i = 0; i < rows; i++) {
    parts.push(
      dataRow([
        String(i + 1),
        `person${i}@example.com`,
        `${String(100 + (i % 900))}-${String(10 + (i % 90))}-${String(1000 + (i % 9000))}`,
        `note ${i % 97}`,
      ]),
    );
  }
  parts.push(message('C', Buffer.from(`SELECT ${rows}\0`)), message('Z', Buffer.from('I')));
  const all = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let at = 0; at < all.length; at += CHUNK) chunks.push(all.subarray(at, Math.min(all.length, at + CHUNK)));
  return chunks;
}

/** Frames messages across chunks like the relay's framer (a message split over chunks is joined once). */
function* frames(chunk: Buffer, carry: { rest: Buffer | null }): Generator<[Buffer, number, number]> {
  let buf = chunk;
  if (carry.rest) {
    buf = Buffer.concat([carry.rest, chunk]);
    carry.rest = null;
  }
  let pos = 0;
  while (buf.length - pos >= 5) {
    const end = pos + 1 + buf.readInt32BE(pos + 1);
    if (end > buf.length) break;
    yield [buf, pos, end];
    pos = end;
  }
  if (pos < buf.length) carry.rest = buf.subarray(pos);
}

const chunks = backendChunks();
const query = message('Q', Buffer.from('SELECT id, email, ssn, note FROM bench_people\0'));

function maskingCase(name: string, columns: Array<ColumnMask | undefined>, mods: MaskerModules): CpuCase {
  return {
    name: name + mods.label,
    ops: rows,
    setup() {
      const masker = new mods.ResultMasker(sessionMasking(columns, mods));
      masker.onStatement(0x51, query, 0, query.length, true);
      const out = new Output();
      const carry = { rest: null as Buffer | null };
      let sent = 0;
      // The whole result is one "operation slice" per chunk group: run() maps row indexes to chunks.
      let next = 0;
      return {
        run(from, to) {
          // Feed chunks until about `to` rows went through (the last slice takes the rest).
          const upTo = to >= rows ? chunks.length : Math.floor((to / rows) * chunks.length);
          for (; next < upTo; next++) {
            for (const [buf, start, end] of frames(chunks[next]!, carry)) {
              const masked = masker.onBackend(buf[start]!, buf, start, end);
              // As the relay does (a checkout from before the row arena never answers REBUILT_ROW).
              if (masked === REBUILT_ROW) out.forward(masker.rowBuf, masker.rowStart, masker.rowEnd);
              else if (masked) for (const m of masked) out.inject(m);
              else out.forward(buf, start, end);
            }
            sent += out.take()?.length ?? 0;
          }
          void from;
        },
        teardown() {
          if (sent === 0) throw new Error('nothing was sent');
        },
      };
    },
  };
}

const cases: CpuCase[] = [];
for (const [name, columns] of [
  ['rows unmasked (no masked column)', [undefined, undefined, undefined, undefined]],
  ['rows masked (email, ssn)', [undefined, EMAIL, SSN, undefined]],
] as Array<[string, Array<ColumnMask | undefined>]>) {
  for (const mods of modules) cases.push(maskingCase(name, columns, mods));
}
// Interleaved: one repetition of each case in turn, so load changes hit every case alike.
const perCase = new Map<string, number[]>();
for (let r = 0; r < reps; r++) {
  for (const c of cases) {
    const one = await measure(c, 1);
    perCase.set(c.name, [...(perCase.get(c.name) ?? []), one.median]);
  }
}
const results: CpuResult[] = cases.map((c) => {
  const v = perCase.get(c.name)!.sort((a, b) => a - b);
  return { name: c.name, median: v[Math.floor(v.length / 2)]!, min: v[0]!, max: v.at(-1)! };
});
console.log(
  `masking microbenchmark: ${rows} DataRows of 4 columns per repetition in 64 KiB chunks, ${reps} repetitions, CPU time (user+system) per row`,
);
report(results, 'µs CPU/row');
