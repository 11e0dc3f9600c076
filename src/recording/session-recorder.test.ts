import { describe, expect, it } from 'vitest';
import { RECORDING_DEFAULTS } from '../config/recording.js';
import { pendingDecision } from '../core/pending-decision.js';
import type { Decision, HoldInfo, PendingDecision, SessionPipeline, Statement } from '../core/types.js';
import { chainHash, GENESIS, type RecordedEvent } from './file-recorder.js';
import { cutUtf8, RECORDING_UNAVAILABLE, SessionRecorder, type RecorderResult } from './session-recorder.js';
import type { RecordingWriter } from './sink.js';

/** A writer in memory, with a switch that makes the next checkpoint fail like a full disk. */
class MemoryWriter implements RecordingWriter {
  log: RecordedEvent[] = [];
  durable = 0;
  failed: Error | null = null;
  failNextCheckpoint = false;
  private last = GENESIS;
  constructor(private readonly now: () => number) {}
  get digest() {
    return this.last;
  }
  get events() {
    return this.log.length;
  }
  get written() {
    const last = this.log[this.durable - 1];
    return { events: this.durable, digest: last ? last.h : null };
  }
  append(type: string, data: Record<string, unknown>): RecordedEvent {
    if (this.failed) throw this.failed;
    const base = { seq: this.log.length, at: this.now(), type, data: structuredClone(data) };
    const e = { ...base, h: chainHash(this.last, base) };
    this.last = e.h;
    this.log.push(e);
    return e;
  }
  async checkpoint(): Promise<void> {
    if (this.failNextCheckpoint) {
      this.failed = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      throw this.failed;
    }
    this.durable = this.log.length;
  }
  async close(): Promise<string> {
    await this.checkpoint();
    return this.last;
  }
}

const allow: Decision = { effect: 'allow', reasons: [] };

/** A statement decided as the relay would, where the test's pipeline answers at once (nothing held). */
function decideNow(pipeline: SessionPipeline, statement: Statement): Decision {
  const decision = pipeline.decide(statement);
  if (decision instanceof Promise) throw new Error('expected a decision at once, got a held statement');
  return decision;
}
const simple = (text: string): Statement => ({ source: 'simple', text });
const dropsHold: HoldInfo = { notice: { effect: 'review', reasons: ['review:drops'], rule: 'drops' }, withdraw: () => undefined };
/** The hold a pending decision has announced so far, if any. */
function holdOf(pending: PendingDecision): HoldInfo | undefined {
  let hold: HoldInfo | undefined;
  pending.onHold((h) => (hold = h));
  return hold;
}

function setup(
  opts: {
    limits?: Partial<typeof RECORDING_DEFAULTS.limits>;
    mode?: 'required' | 'best-effort';
    writer?: MemoryWriter | null;
    decide?: SessionPipeline['decide'];
  } = {},
) {
  let t = 1_000;
  const now = () => t++;
  const writer = opts.writer === undefined ? new MemoryWriter(now) : opts.writer;
  const failures: Error[] = [];
  const decisions: string[] = [];
  const recorder = new SessionRecorder({
    sessionId: 's1',
    writer,
    mode: opts.mode ?? 'required',
    limits: { ...RECORDING_DEFAULTS.limits, ...opts.limits },
    now,
    hooks: { onFailure: (e) => failures.push(e), onDecision: (n, _t, d, how) => decisions.push(`${n}:${how}:${d.effect}`) },
  });
  const ended: Array<Promise<RecorderResult>> = [];
  const inner: SessionPipeline = { id: 's1', decide: opts.decide ?? (() => allow), end: () => undefined };
  const pipeline = recorder.wrap(inner, (r) => ended.push(r));
  const o = pipeline.observer!;
  /** What the relay does for a SELECT returning `rows` rows of one text column. */
  const select = (text: string, rows: number, value = (i: number) => `v${i}`) => {
    decideNow(pipeline, simple(text));
    o.onResult({ kind: 'columns', columns: [{ name: 'c', type: 25 }] });
    for (let i = 0; i < rows; i++) if (o.wantsRows()) o.onResult({ kind: 'row', values: [value(i)] });
    o.onResult({ kind: 'complete', tag: `SELECT ${rows}` });
    o.onResult({ kind: 'ready' });
  };
  const end = async () => {
    pipeline.end('client_quit', { bytesFromClient: 1, bytesToClient: 2, statements: 3 });
    return ended[0]!;
  };
  return { recorder, pipeline, writer, select, end, failures, decisions };
}

const types = (events: RecordedEvent[]) => events.map((e) => e.type);

describe('SessionRecorder', () => {
  it('records a statement and its small result as two events, the boundary folded in, and checkpoints there', async () => {
    const { writer, select, end } = setup();
    select('select c from t', 3);
    expect(types(writer!.log)).toEqual(['statement', 'result']);
    expect(writer!.log[0]!.data).toEqual({ n: 1, source: 'simple', text: 'select c from t', decision: { effect: 'allow', reasons: [] } });
    expect(writer!.log[1]!.data).toEqual({
      columns: [{ name: 'c', type: 25 }],
      rows: [['v0'], ['v1'], ['v2']],
      tag: 'SELECT 3',
      count: 3,
      ready: { ms: expect.any(Number) },
    });
    await Promise.resolve();
    expect(writer!.durable).toBe(2);
    const result = await end();
    expect(result).toMatchObject({ reason: 'client_quit', events: 3, rowsRecorded: 3, truncated: false, error: null });
    expect(result.digest).toBe(writer!.log.at(-1)!.h);
  });

  it('caps rows per statement and per session, counting the rest and marking the truncation', async () => {
    const { writer, select, end } = setup({ limits: { rowsPerStatement: 250, rowsPerSession: 300 } });
    select('select a lot', 1000);
    select('select more', 100);
    // Bigger than one batch: columns, rows..., complete.
    expect(types(writer!.log)).toEqual(['statement', 'columns', 'rows', 'rows', 'rows', 'complete', 'statement', 'result']);
    const rows = writer!.log.filter((e) => e.type === 'rows' || e.type === 'result');
    expect(rows.map((e) => (e.data.rows as unknown[]).length)).toEqual([100, 100, 50, 50]);
    const completes = writer!.log.filter((e) => e.type === 'complete' || e.type === 'result').map((e) => e.data);
    expect(completes).toMatchObject([
      { tag: 'SELECT 1000', rows: 1000, truncated: { cap: 'statement', recorded: 250 }, ready: {} },
      { tag: 'SELECT 100', count: 100, truncated: { cap: 'session', recorded: 50 }, ready: {} },
    ]);
    expect(await end()).toMatchObject({ rowsRecorded: 300, truncated: true });
  });

  it('cuts long values and statement texts at a character boundary, and says so', async () => {
    const { writer, pipeline, select } = setup({ limits: { valueBytes: 16, statementBytes: 300 } });
    select('select long', 2, (i) => (i === 0 ? 'short' : 'é'.repeat(20)));
    const rows = writer!.log.find((e) => e.type === 'result')!.data;
    expect(rows.rows).toEqual([['short'], ['é'.repeat(8)]]);
    expect(rows.cut).toEqual([[1, 0, 40]]);
    decideNow(pipeline, simple('select ' + 'x'.repeat(400)));
    const st = writer!.log.filter((e) => e.type === 'statement').at(-1)!.data;
    expect((st.text as string).length).toBe(300);
    expect(st.textBytes).toBe(407);
    expect(cutUtf8('aé', 2)).toBe('a');
  });

  it('redacts password literals from recorded statements', () => {
    const { writer, pipeline } = setup();
    decideNow(pipeline, simple("alter role bob password 'hunter2-secret'"));
    expect(writer!.log[0]!.data).toMatchObject({ text: "alter role bob password '[redacted]'", redacted: true });
    expect(JSON.stringify(writer!.log)).not.toContain('hunter2');
  });

  it('labels bound parameters with the statement that prepared them', () => {
    const { writer, pipeline } = setup({ limits: { valueBytes: 16 } });
    decideNow(pipeline, { source: 'parse', name: 'get_user', text: 'select * from users where id = $1 and name = $2' });
    pipeline.observer!.onBind!({ portal: '', statement: 'get_user', values: ['42', null], cut: [], sizes: [2, -1] });
    pipeline.observer!.onBind!({ portal: 'p', statement: 'other', values: ['x'.repeat(40)], cut: [], sizes: [40] });
    const binds = writer!.log.filter((e) => e.type === 'bind').map((e) => e.data);
    expect(binds).toEqual([
      { n: 1, statement: 'get_user', portal: '', params: ['42', null] },
      { statement: 'other', portal: 'p', params: ['x'.repeat(16)], cut: [[0, 40]] },
    ]);
  });

  it('records a held statement, then its decision and how long it waited', async () => {
    let approve!: (d: Decision) => void;
    const { writer, pipeline, decisions } = setup({
      decide: (s) => {
        if (!s.text.includes('drop')) return allow;
        const held = pendingDecision(new Promise<Decision>((r) => (approve = r)));
        held.held(dropsHold);
        return held.pending;
      },
    });
    const pending = pipeline.decide(simple('drop table t'));
    expect(pending).toBeInstanceOf(Promise);
    expect(holdOf(pending as PendingDecision)?.notice).toMatchObject({ rule: 'drops' });
    expect(writer!.log.at(-1)).toMatchObject({ type: 'statement', data: { n: 1, held: true } });
    approve({ effect: 'allow', reasons: ['approved'], approvedBy: 'bob' } as Decision);
    await expect(pending).resolves.toMatchObject({ effect: 'allow' });
    expect(writer!.log.at(-1)).toMatchObject({
      type: 'decision',
      data: { n: 1, decision: { effect: 'allow', reasons: ['approved'], approvedBy: 'bob' } },
    });
    expect(decisions).toEqual(['1:held:review', '1:decided:allow']);
  });

  it('records a statement the gateway decides a moment later (no person involved) as decided, not held', async () => {
    let settle!: (d: Decision) => void;
    const { writer, pipeline, decisions } = setup({ decide: () => pendingDecision(new Promise<Decision>((r) => (settle = r))).pending });
    const later = pipeline.decide(simple('select * from v'));
    expect(later).toBeInstanceOf(Promise);
    expect(holdOf(later as PendingDecision)).toBeUndefined();
    settle({ effect: 'deny', reasons: ['masking:unmaskable'], message: 'no' });
    await expect(later).resolves.toMatchObject({ effect: 'deny' });
    const statements = writer!.log.filter((e) => e.type === 'statement');
    expect(statements).toHaveLength(1);
    expect(statements[0]!.data).toMatchObject({
      n: 1,
      text: 'select * from v',
      decision: { effect: 'deny', reasons: ['masking:unmaskable'] },
    });
    expect(statements[0]!.data).not.toHaveProperty('held');
    expect(writer!.log.some((e) => e.type === 'decision')).toBe(false);
    expect(decisions).toEqual(['1:immediate:deny']);
  });

  it('records a statement held for a person after the gateway first read its catalog as held from that moment', async () => {
    let checked!: () => void;
    let approve!: (d: Decision) => void;
    const { writer, pipeline, decisions } = setup({
      decide: () => {
        const later = pendingDecision(
          new Promise<void>((r) => (checked = r)).then(() => {
            const review = pendingDecision(new Promise<Decision>((r) => (approve = r)));
            review.held(dropsHold);
            review.pending.onHold(later.held);
            return review.pending;
          }),
        );
        return later.pending;
      },
    });
    const pending = pipeline.decide(simple('drop table t')) as PendingDecision;
    const announced: HoldInfo[] = [];
    pending.onHold((h) => announced.push(h));
    expect(writer!.log.some((e) => e.type === 'statement')).toBe(false);
    checked();
    await expect.poll(() => announced.length).toBe(1);
    expect(announced[0]!.notice).toMatchObject({ rule: 'drops' });
    expect(writer!.log.at(-1)).toMatchObject({ type: 'statement', data: { n: 1, held: true, decision: { effect: 'review' } } });
    approve({ effect: 'deny', reasons: ['denied'], message: 'no' });
    await expect(pending).resolves.toMatchObject({ effect: 'deny' });
    expect(writer!.log.at(-1)).toMatchObject({ type: 'decision', data: { n: 1, decision: { effect: 'deny' } } });
    expect(decisions).toEqual(['1:held:review', '1:decided:deny']);
  });

  it('keeps the order of notices and errors between rows, and marks a result an error cut short', () => {
    const { writer, pipeline } = setup();
    const o = pipeline.observer!;
    decideNow(pipeline, simple('select f()'));
    o.onResult({ kind: 'columns', columns: [{ name: 'f', type: 23 }] });
    if (o.wantsRows()) o.onResult({ kind: 'row', values: ['1'] });
    o.onResult({ kind: 'notice', severity: 'NOTICE', code: '00000', message: 'halfway' });
    if (o.wantsRows()) o.onResult({ kind: 'row', values: ['2'] });
    o.onResult({ kind: 'error', severity: 'ERROR', code: '22012', message: 'division by zero' });
    o.onResult({ kind: 'ready' });
    expect(types(writer!.log)).toEqual(['statement', 'columns', 'rows', 'notice', 'rows', 'error']);
    expect(writer!.log[5]!.data).toEqual({
      severity: 'ERROR',
      code: '22012',
      message: 'division by zero',
      rows: 2,
      ready: { ms: expect.any(Number) },
    });
  });

  it('fails closed when the recording cannot be created (required): statements refused, nothing decoded', () => {
    const { pipeline } = setup({ writer: null });
    expect(pipeline.observer).toBeUndefined();
    expect(pipeline.decide(simple('select 1'))).toMatchObject({ effect: 'deny', reasons: [RECORDING_UNAVAILABLE] });
  });

  it('lets a best-effort session run unrecorded when the recording cannot be created', () => {
    const { pipeline } = setup({ writer: null, mode: 'best-effort' });
    expect(pipeline.observer).toBeUndefined();
    expect(pipeline.decide(simple('select 1'))).toEqual(allow);
  });

  it('refuses further statements once a checkpoint fails (required), and reports the failure once', async () => {
    const { writer, select, pipeline, failures, end } = setup();
    select('select 1', 1);
    writer!.failNextCheckpoint = true;
    select('select 2', 1);
    await new Promise((r) => setImmediate(r));
    expect(failures.map((e) => e.message)).toEqual(['ENOSPC: no space left on device, write']);
    expect(pipeline.decide(simple('select 3'))).toMatchObject({ effect: 'deny', reasons: [RECORDING_UNAVAILABLE] });
    expect(pipeline.observer!.wantsRows()).toBe(false);
    const result = await end();
    expect(result.error).toMatch(/ENOSPC/);
    expect(failures).toHaveLength(1);
  });

  it('ends a recording cut by a write error with the digest of the last event written, not of events never written', async () => {
    const { writer, select, end } = setup();
    select('select 1', 1);
    await new Promise((r) => setImmediate(r));
    const written = writer!.log[writer!.durable - 1]!;
    writer!.failNextCheckpoint = true;
    select('select 2', 1);
    const result = await end();
    expect(writer!.log.length).toBeGreaterThan(writer!.durable);
    expect(result).toMatchObject({ writeError: true, events: writer!.durable, digest: written.h });
  });

  it('ends a recording that could write nothing without a digest', async () => {
    const writer = new MemoryWriter(() => 1);
    writer.failNextCheckpoint = true;
    const { recorder, end } = setup({ writer });
    recorder.start({ user: 'alice' });
    const result = await end();
    expect(result).toMatchObject({ writeError: true, events: 0, digest: null });
  });

  it('continues unrecorded after a failure in best-effort mode', async () => {
    const { writer, select, pipeline, failures } = setup({ mode: 'best-effort' });
    writer!.failNextCheckpoint = true;
    select('select 1', 1);
    await new Promise((r) => setImmediate(r));
    expect(failures).toHaveLength(1);
    expect(pipeline.decide(simple('select 2'))).toEqual(allow);
  });

  it('feeds live subscribers every event as it is appended', () => {
    const { recorder, select } = setup();
    const seen: string[] = [];
    const stop = recorder.subscribe((e) => seen.push(e.type));
    select('select 1', 1);
    stop();
    select('select 2', 1);
    expect(seen).toEqual(['statement', 'result']);
  });
});
