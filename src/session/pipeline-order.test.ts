/**
 * The session pipeline's decision order as a table, on the pipeline a protocol engine gets (the
 * SessionService's, wrapped by the session recording as main.ts composes them), with real parts:
 * an SQLite store, grants that can end, the agents' statement quota, a masking session over a
 * catalog, guardrails and protections, a review service, and a recorder writing to memory.
 *
 * Each row: grant state, statement and rules in; the first decision out, the stages that ran (in
 * the order they ran; every other stage did not run) and what the recording holds. decision.test.ts
 * covers the verdict function alone; this covers that the pipeline asks nothing past a refusal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RECORDING_DEFAULTS } from '../config/recording.js';
import { ManualClock } from '../core/clock.js';
import type { Decision, Grant, MaskingScope, PendingDecision, SessionMasking, SessionPipeline, Statement } from '../core/types.js';
import { buildCatalog } from '../masking/lineage.js';
import { MaskingSession } from '../masking/session.js';
import { AgentQuotas } from '../mcp/quota.js';
import { createLogger } from '../obs/log.js';
import { createMetrics } from '../obs/metrics.js';
import type { GuardrailRule } from '../policy/guardrails.js';
import type { ReviewRule } from '../policy/review-rules.js';
import { chainHash, GENESIS, type RecordedEvent } from '../recording/file-recorder.js';
import { SessionRecorder } from '../recording/session-recorder.js';
import type { RecordingWriter } from '../recording/sink.js';
import { ReviewRepository } from '../review/repository.js';
import { ReviewService } from '../review/service.js';
import { loadPostgresParser } from '../sql/postgres.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { SessionService } from './service.js';

beforeAll(() => loadPostgresParser());

/** The stages a statement can reach, named as the pipeline's order has them. */
type Stage = 'quota' | 'masking' | 'policy' | 'review';

const log = createLogger({ level: 'silent' });
const dba = { user: 'dora', groups: ['dba'], kind: 'human' as const, via: 'test' };

const GUARDRAILS: GuardrailRule[] = [
  {
    name: 'no-ddl',
    connections: ['*'],
    groups: ['*'],
    except: [],
    deny: { kinds: ['ddl', 'truncate'], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: false },
  },
];
/** Writes and DDL are held: a guardrail or masking refusal must win before a review is opened. */
const REVIEWS: ReviewRule[] = [
  {
    name: 'writes',
    connections: ['*'],
    groups: ['*'],
    except: [],
    match: { kinds: ['ddl'], writes: true, tables: [], functions: [], unboundedWrites: false, multiStatement: false },
    approval: { approvers: ['dba'], approvals: 1, timeoutMs: 600_000 },
  },
];

const catalog = buildCatalog(
  [
    {
      oid: 20001,
      schema: 'public',
      name: 'users',
      kind: 'r',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'email' },
      ],
    },
  ],
  [],
  { pureFunctions: ['lower', 'count'] },
);

/** A recording writer in memory (what the file recorder does, without the file). */
class MemoryWriter implements RecordingWriter {
  readonly log: RecordedEvent[] = [];
  readonly failed = null;
  private last = GENESIS;
  get digest(): string {
    return this.last;
  }
  get events(): number {
    return this.log.length;
  }
  get written() {
    return { events: this.log.length, digest: this.log.at(-1)?.h ?? null };
  }
  append(type: string, data: Record<string, unknown>): RecordedEvent {
    const base = { seq: this.log.length, at: 0, type, data: structuredClone(data) };
    const e = { ...base, h: chainHash(this.last, base) };
    this.last = e.h;
    this.log.push(e);
    return e;
  }
  checkpoint(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<string> {
    return Promise.resolve(this.last);
  }
}

/** Masking that notes each check it is asked for, deciding as the real session does. */
function noting(inner: MaskingSession, ran: Stage[]): SessionMasking {
  return {
    prepare: () => inner.prepare(),
    check: (s) => (ran.push('masking'), inner.check(s)),
  };
}

interface Row {
  name: string;
  statement: string;
  /** The grant behind the session: active, or revoked while the session runs. */
  grant?: 'active' | 'revoked';
  /** Statements per minute the agents' quota allows (0: exhausted); absent: no quota applies. */
  quota?: number;
  /** The recording: written, or failing on a connection that requires it. */
  recording?: 'ok' | 'unavailable-required';
  /** What a reviewer does with a held statement. */
  reviewer?: 'approve' | 'deny';
  /** First decision: effect and first reason (and rule, where one decides). */
  expected: { effect: 'allow' | 'deny'; reason?: string; rule?: string; held?: boolean };
  ran: Stage[];
  /** The decision the recording holds for the statement (undefined: nothing recorded). */
  recorded?: { effect: string; reason?: string } | undefined;
}

const ROWS: Row[] = [
  {
    name: 'a read with nothing against it runs',
    statement: 'select id from users',
    expected: { effect: 'allow' },
    ran: ['masking', 'policy'],
    recorded: { effect: 'allow' },
  },
  {
    name: 'the quota counts a statement that runs',
    statement: 'select id from users',
    quota: 10,
    expected: { effect: 'allow' },
    ran: ['quota', 'masking', 'policy'],
    recorded: { effect: 'allow' },
  },
  {
    name: 'a recording that cannot be written refuses first: nothing else is asked',
    statement: 'drop table users',
    quota: 0,
    recording: 'unavailable-required',
    expected: { effect: 'deny', reason: 'recording_unavailable' },
    ran: [],
    recorded: undefined,
  },
  {
    name: 'an ended grant refuses before quota, masking, guardrails and reviews',
    statement: 'drop table users',
    grant: 'revoked',
    quota: 0,
    expected: { effect: 'deny', reason: 'grant_ended' },
    ran: [],
    recorded: { effect: 'deny', reason: 'grant_ended' },
  },
  {
    name: 'an exhausted quota refuses before masking and policy',
    statement: 'drop table users',
    quota: 0,
    expected: { effect: 'deny', reason: 'statement_rate' },
    ran: ['quota'],
    recorded: { effect: 'deny', reason: 'statement_rate' },
  },
  {
    name: 'masking refuses a copy of masked data before guardrails and before any review',
    statement: 'insert into users (id, email) select id, email from users',
    quota: 10,
    expected: { effect: 'deny', reason: 'masking_copy', rule: 'masking' },
    ran: ['quota', 'masking'],
    recorded: { effect: 'deny', reason: 'masking_copy' },
  },
  {
    name: 'a guardrail refuses what a review rule would hold: no review is opened',
    statement: 'drop table users',
    expected: { effect: 'deny', reason: 'kind_denied', rule: 'no-ddl' },
    ran: ['masking', 'policy'],
    recorded: { effect: 'deny', reason: 'kind_denied' },
  },
  {
    name: 'a built-in protection refuses what a review rule would hold: no review is opened',
    statement: 'update pg_authid set rolname = rolname where false',
    expected: { effect: 'deny', reason: 'credential_protected' },
    ran: ['masking', 'policy'],
    recorded: { effect: 'deny', reason: 'credential_protected' },
  },
  {
    name: 'a write a review rule matches is held, then runs once approved',
    statement: 'update users set id = 2 where id = 1',
    quota: 10,
    reviewer: 'approve',
    expected: { effect: 'allow', reason: 'review_approved', rule: 'writes', held: true },
    ran: ['quota', 'masking', 'policy', 'review'],
    recorded: { effect: 'allow', reason: 'review_approved' },
  },
  {
    name: 'a held write a reviewer denies is refused',
    statement: 'update users set id = 2 where id = 1',
    reviewer: 'deny',
    expected: { effect: 'deny', reason: 'review_denied', rule: 'writes', held: true },
    ran: ['masking', 'policy', 'review'],
    recorded: { effect: 'deny', reason: 'review_denied' },
  },
];

describe('the session pipeline decides in order and asks nothing past a refusal', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  async function pipelineFor(row: Row, ran: Stage[]) {
    const dir = mkdtempSync(join(tmpdir(), 'jitgate-pipeline-'));
    const store: SqliteStore = openSqliteStore(join(dir, 'state.db'));
    const reviewDb = new Database(':memory:');
    cleanup.push(() => (store.close(), reviewDb.close(), rmSync(dir, { recursive: true, force: true })));
    const clock = new ManualClock();
    const grant: Grant = {
      id: 'g1',
      user: 'alice',
      groups: ['eng'],
      connection: 'app',
      reason: 'test',
      requestId: null,
      approvedBy: [],
      breakGlass: false,
      createdAt: clock.now(),
      expiresAt: clock.now() + 3_600_000,
      revokedAt: null,
      revokedBy: null,
      revokeReason: null,
    };
    const revoked: Array<(g: Grant) => void> = [];
    const reviews = new ReviewService({ repo: new ReviewRepository(reviewDb), clock, log });
    reviews.events.on((e) => e.type === 'review.created' && ran.push('review'));
    const quotas = new AgentQuotas(row.quota === undefined ? [] : [{ groups: ['*'], statementsPerMinute: row.quota }], () => clock.now());
    const scope: MaskingScope = {
      connection: 'app',
      rules: [{ name: 'pii', columns: [{ pattern: 'users.email', strategy: { kind: 'email' } }] }],
      detectors: [],
      hashKey: Buffer.alloc(32),
    };
    const masking = new MaskingSession({ ...scope, loadCatalog: () => Promise.resolve(catalog) });
    await masking.prepare();
    const service = new SessionService(store, createMetrics({ defaultMetrics: false }), log, () => clock.now(), {
      grants: { grantForToken: async () => grant, onRevoked: (_id, fn) => (revoked.push(fn), () => undefined) },
      clock,
      guardrails: GUARDRAILS,
      reviews: { rules: REVIEWS, service: reviews },
      masking: () => scope,
      statementGate: (user, groups) => {
        const gate = quotas.statementGate(user, groups);
        return gate && (() => (ran.push('quota'), gate()));
      },
      terminate: () => true,
    });
    const inner = await service.open({
      protocol: 'postgres',
      user: 'alice',
      connection: 'app',
      clientAddress: '127.0.0.1',
      applicationName: null,
      tokenId: 't1',
      // The protocol's masker, built from the scope (the listener's part).
      masker: () => noting(masking, ran),
      // The protocol's built-in protections: called where guardrails, protections and reviews are decided.
      protect: (s: Statement): Decision | undefined => {
        ran.push('policy');
        return s.text.includes('pg_authid')
          ? { effect: 'deny', reasons: ['credential_protected'], message: 'jitgate: the gateway credential is protected' }
          : undefined;
      },
    });
    if (row.grant === 'revoked') {
      const ended = { ...grant, revokedAt: clock.now(), revokedBy: 'dora', revokeReason: 'incident over' };
      for (const fn of revoked) fn(ended);
    }
    const writer = row.recording === 'unavailable-required' ? null : new MemoryWriter();
    const recorder = new SessionRecorder({
      sessionId: inner.id,
      writer,
      mode: 'required',
      limits: RECORDING_DEFAULTS.limits,
      now: () => clock.now(),
    });
    const pipeline: SessionPipeline = recorder.wrap(inner, () => undefined);
    return { pipeline, reviews, writer };
  }

  it.each(ROWS)('$name', async (row) => {
    const ran: Stage[] = [];
    const { pipeline, reviews, writer } = await pipelineFor(row, ran);
    const out = pipeline.decide({ source: 'simple', text: row.statement });
    const held = out instanceof Promise;
    if (held) {
      const [review] = reviews.list(dba, { state: 'pending' });
      expect(review, 'a pending review for the held statement').toBeDefined();
      if (row.reviewer === 'approve') reviews.approve(dba, review!.id, 'fine');
      else reviews.deny(dba, review!.id, 'not now');
    }
    const decision = await (out as Decision | PendingDecision);
    expect({ effect: decision.effect, reason: decision.reasons[0], rule: decision.rule, held }).toEqual({
      effect: row.expected.effect,
      reason: row.expected.reason,
      rule: row.expected.rule,
      held: row.expected.held ?? false,
    });
    expect(ran).toEqual(row.ran);

    // The recording holds the statement and its (final) decision; a refused recording holds nothing.
    const events = writer?.log ?? [];
    const statement = events.find((e) => e.type === 'statement');
    const final = (events.find((e) => e.type === 'decision')?.data.decision ?? statement?.data.decision) as
      { effect: string; reasons: string[] } | undefined;
    if (row.recorded === undefined) {
      expect(statement).toBeUndefined();
    } else {
      expect(statement?.data.text).toBe(row.statement);
      expect({ effect: final?.effect, reason: final?.reasons[0] }).toEqual({ effect: row.recorded.effect, reason: row.recorded.reason });
    }
    pipeline.end('client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 1 });
  });
});
