/**
 * Statements held for approval inside a live session, end to end: psql, the pg driver and a raw
 * extended-protocol client through the gateway to a real PostgreSQL; approvers act through the real
 * CLI code and the HTTP API. Time is a ManualClock: timeouts are reached by advancing it, never by
 * sleeping.
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { ManualClock } from '../src/core/clock.js';
import { build } from '../src/protocols/postgres/codec.js';
import { renderTranscript } from '../src/recording/transcript.js';
import { startAccessGateway, type AccessGateway, type Person } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { errorOf, rawLogin } from './support/raw-client.js';
import { settledSession, until } from './support/recording.js';
import { waitUntil } from './support/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

let server: PgServer;
let env: AccessGateway;
let hooks: WebhookReceiver;
const clock = new ManualClock(Date.now());

interface ReviewJson {
  id: string;
  sessionId: string;
  user: string;
  connection: string;
  statement: string;
  rule: string;
  reasons: string[];
  what: string;
  state: string;
  approvals: Array<{ approver: string }>;
  approvalsRequired: number;
  decidedBy: string | null;
  comment: string | null;
  outcome: string[];
  canApprove?: boolean;
}

beforeAll(async () => {
  server = await startPostgres();
  await server.query(
    'create table ledger (id serial primary key, note text); grant all on ledger to public; grant usage on sequence ledger_id_seq to public',
  );
  // A view: masking (on for app, as wherever people's data is) validates its catalog before a
  // statement that reads one is decided, so such a statement waits for the gateway before a person.
  await server.query('create view ledger_notes as select note from ledger; grant select on ledger_notes to public');
  await server.query('create table people (email text); grant all on people to public');
  // A table the app-md5 connection's backend user owns, for DDL through it.
  await server.query(`create table md5_owned (a int); alter table md5_owned owner to ${server.users.md5.user}`);
  hooks = await startWebhookReceiver();
  env = await startAccessGateway(server, {
    clock,
    webhookUrl: hooks.url,
    extraYaml: `
guardrails:
  - name: careful-writes
    connections: [app, app-md5]
    deny: { unboundedWrites: true }
masking:
  rules:
    - name: people
      connections: [app]
      columns: { people.email: email }
reviews:
  - name: app-writes
    connections: [app]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
    reason: writes on app are reviewed
  - name: md5-ddl
    connections: [app-md5]
    match: { kinds: [ddl] }
    approval: { approvers: [approvers], approvals: 2, timeout: 5m }
`,
  });
  env.gw.gateway.reviews.setAdminCheck((i) => i.groups.includes('admins'));
});

afterAll(async () => {
  await env?.gw.close();
  await hooks?.close();
  await server?.cleanup();
});

const short = (id: string) => id.slice(0, 8);

/** The pending review of `user` on `connection` as an approver sees it, once the statement is held. */
async function heldReview(user: Person, connection = 'app'): Promise<ReviewJson> {
  return waitUntil(`a pending review of ${user} on ${connection}`, async () => {
    const { body } = await env.api<{ reviews: ReviewJson[] }>(
      'carol',
      'GET',
      `/api/reviews?state=pending&user=${user}&connection=${connection}`,
    );
    return body.reviews[0];
  });
}

/** The review once it is no longer pending. */
const decided = (r: ReviewJson): ReviewJson | undefined => (r.state === 'pending' ? undefined : r);

async function review(id: string): Promise<ReviewJson> {
  return (await env.api<ReviewJson>('carol', 'GET', `/api/reviews/${id}`)).body;
}

async function ledgerNotes(): Promise<string[]> {
  return (await server.query('select note from ledger order by id')).rows.map((r) => String(r.note));
}

/** The real CLI code in-process, as `who`, against the gateway's API. */
async function cli(who: Person, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env: { JITGATE_URL: env.gw.httpUrl, JITGATE_TOKEN: env.bearer(who), XDG_CONFIG_HOME: env.gw.dataDir },
    cwd: env.gw.dataDir,
    now: () => Date.now(),
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

async function pgClient(user: Person, connection = 'app'): Promise<pg.Client> {
  const c = new pg.Client({
    host: env.gw.host,
    port: env.gw.port,
    user,
    database: connection,
    password: await env.gw.token({ user, connection }),
  });
  await c.connect();
  return c;
}

describe('a held write, approved with the CLI', () => {
  it('tells the psql session at once, lists it for approvers with the full statement, and runs it in the same session on approval', async () => {
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At'], {
      input: "insert into ledger (note) values ('approved by cli') returning note;\nselect 'after the held statement';\n",
    });
    const r = await heldReview('alice');
    expect(r).toMatchObject({
      user: 'alice',
      connection: 'app',
      rule: 'app-writes',
      reasons: ['write_statement'],
      what: 'INSERT changes data or settings',
      state: 'pending',
      canApprove: true,
    });
    expect(r.statement).toContain("insert into ledger (note) values ('approved by cli') returning note");
    expect(await ledgerNotes()).not.toContain('approved by cli');

    const listed = await cli('carol', ['requests']);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain('Statements held for approval');
    expect(listed.out).toMatch(
      new RegExp(
        `${short(r.id)}\\s+alice\\s+app\\s+pending \\(yours to approve\\)\\s+app-writes\\s+0/1\\s+.*INSERT changes data or settings \\(write_statement\\) — writes on app are reviewed`,
      ),
    );
    expect(listed.out).toContain("    insert into ledger (note) values ('approved by cli') returning note");

    const approved = await cli('carol', ['approve', short(r.id), '--comment', 'looks right']);
    expect(approved).toMatchObject({ code: 0, out: `approved review ${short(r.id)}: alice's statement runs now on app\n` });

    const result = await run;
    expect(result.code).toBe(0);
    // The result of the held statement, then what came after it, in order, in the same session.
    expect(result.stdout).toBe('approved by cli\nINSERT 0 1\nafter the held statement\n');
    expect(result.stderr).toContain(`NOTICE:  jitgate: statement held for approval: review ${short(r.id)} (rule "app-writes")`);
    expect(result.stderr).toContain('DETAIL:  INSERT changes data or settings (write_statement) — writes on app are reviewed');
    expect(result.stderr).toContain(
      `HINT:  waiting up to 10m for 1 approval from approvers; approve with jitgate approve ${short(r.id)} or ${env.gw.httpUrl}/reviews/${r.id}`,
    );
    expect(await review(r.id)).toMatchObject({ state: 'approved', decidedBy: 'carol', comment: 'looks right', outcome: ['approved'] });

    // On the record: the held statement with its review and rule, and the decision with the approver.
    const session = await settledSession(env.gw, { user: 'alice' });
    expect(session.id).toBe(r.sessionId);
    const read = await env.gw.gateway.recording.read(r.sessionId);
    const transcript = renderTranscript(read!.result.events);
    expect(transcript).toContain(`-- jitgate: statement 1 held for approval (review ${short(r.id)}, rule app-writes: write_statement)`);
    expect(transcript).toMatch(/-- jitgate: statement 1 approved after \d+m?s \(review_approved; rule app-writes; by carol\)/);

    // Audited and notified.
    expect((await env.gw.gateway.audit.about(r.id)).map((e) => [e.type, e.actor])).toEqual([
      ['review.created', 'alice'],
      ['review.approved', 'carol'],
    ]);
    await until(
      () => hooks.deliveries.some((d) => d.json.type === 'review.approved' && (d.json.review as { id: string }).id === r.id),
      10_000,
      'webhook',
    );
    const created = hooks.deliveries.find((d) => d.json.type === 'review.created' && (d.json.review as { id: string }).id === r.id);
    expect(created?.json).toMatchObject({
      kind: 'review',
      review: { user: 'alice', connection: 'app', rule: 'app-writes', statement: r.statement },
    });
  });
});

describe('a held write that masking checks first', () => {
  it('is announced when it is held, runs on approval, and is recorded as held', async () => {
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At'], {
      input: "insert into ledger (note) select 'copied from the view ' || count(*) from ledger_notes returning note;\n",
    });
    const r = await heldReview('alice');
    expect(r.statement).toContain('from ledger_notes');
    await cli('carol', ['approve', short(r.id)]);
    const result = await run;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^copied from the view \d+\nINSERT 0 1\n$/);
    expect(result.stderr).toContain(`NOTICE:  jitgate: statement held for approval: review ${short(r.id)} (rule "app-writes")`);
    expect((await settledSession(env.gw, { user: 'alice' })).id).toBe(r.sessionId);
    const read = await env.gw.gateway.recording.read(r.sessionId);
    const transcript = renderTranscript(read!.result.events);
    expect(transcript).toContain(`-- jitgate: statement 1 held for approval (review ${short(r.id)}, rule app-writes: write_statement)`);
    expect(transcript).toMatch(/-- jitgate: statement 1 approved after \d+m?s \(review_approved; rule app-writes; by carol\)/);
  });
});

describe('denied, timed out, cancelled, ended', () => {
  it('denial: the client gets 42501 with the approver, rule and comment; the statement never ran; the session goes on', async () => {
    // The console's live stream gets the review's events, for its author and approvers only.
    const live: Array<{ type: string; forCarol: boolean; forMallory: boolean }> = [];
    const unsubscribe = env.gw.gateway.live.subscribe((e) =>
      live.push({
        type: e.type,
        forCarol: e.audience({ user: 'carol', groups: ['approvers'], kind: 'human', via: 'test' }),
        forMallory: e.audience({ user: 'mallory', groups: ['marketing'], kind: 'human', via: 'test' }),
      }),
    );
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At', '-v', 'ON_ERROR_STOP=0'], {
      input: "update ledger set note = 'denied' where id > 0;\nselect count(*) from ledger where note = 'denied';\n",
    });
    const r = await heldReview('alice');
    const denied = await env.api<{ review: ReviewJson; reasons: string[] }>('carol', 'POST', `/api/reviews/${r.id}/deny`, {
      comment: 'not during the freeze',
    });
    expect(denied.status).toBe(200);
    expect(denied.body.review).toMatchObject({ state: 'denied', decidedBy: 'carol', comment: 'not during the freeze' });
    const result = await run;
    expect(result.stderr).toContain(
      `ERROR:  jitgate: statement denied by carol (review ${short(r.id)}, rule "app-writes"): not during the freeze`,
    );
    expect(result.stdout).toBe('0\n');
    expect((await env.gw.gateway.audit.about(r.id)).map((e) => e.type)).toEqual(['review.created', 'review.denied']);
    unsubscribe();
    expect(live.filter((e) => e.type.startsWith('review.'))).toEqual([
      { type: 'review.created', forCarol: true, forMallory: false },
      { type: 'review.denied', forCarol: true, forMallory: false },
    ]);
  });

  it('timeout (extended protocol): the pg driver gets 57014 naming the timeout; another session works meanwhile', async () => {
    const c = await pgClient('alice');
    const other = await pgClient('erin');
    try {
      const notices: Array<{ message?: string }> = [];
      c.on('notice', (n) => notices.push(n));
      const q = c.query('insert into ledger (note) values ($1)', ['too late']).then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      const r = await heldReview('alice');
      // The notice came before any decision, while the statement waits.
      await until(() => notices.length > 0, 10_000, 'notice');
      expect(notices[0]!.message).toBe(`jitgate: statement held for approval: review ${short(r.id)} (rule "app-writes")`);

      // One held session never blocks another.
      expect((await other.query('select count(*)::int as n from ledger')).rows[0].n).toBeGreaterThan(0);

      clock.advance(10 * 60_000 + 1);
      const err = await q;
      expect(err?.code).toBe('57014');
      expect(err?.message).toBe(
        `jitgate: canceling statement: review ${short(r.id)} (rule "app-writes") was not approved within 10m (review_timeout)`,
      );
      expect(await review(r.id)).toMatchObject({ state: 'expired', outcome: ['review_timeout'] });
      expect(await ledgerNotes()).not.toContain('too late');
      expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

      const late = await env.api('carol', 'POST', `/api/reviews/${r.id}/approve`, {});
      expect(late).toMatchObject({ status: 409, body: { reasons: ['review_not_pending'] } });
    } finally {
      await c.end();
      await other.end();
    }
  });

  it('Ctrl-C in psql (a real CancelRequest) withdraws the review; the client gets 57014', async () => {
    let pid = 0;
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At'], {
      input: "insert into ledger (note) values ('cancelled');\n",
      onSpawn: (p) => (pid = p),
    });
    const r = await heldReview('alice');
    process.kill(pid, 'SIGINT');
    const result = await run;
    expect(result.stderr).toContain('ERROR:  canceling statement due to user request');
    expect(await review(r.id)).toMatchObject({ state: 'withdrawn', decidedBy: 'alice', outcome: ['cancelled_by_client'] });
    expect(await ledgerNotes()).not.toContain('cancelled');
    expect((await env.gw.gateway.audit.about(r.id)).map((e) => [e.type, e.actor])).toEqual([
      ['review.created', 'alice'],
      ['review.withdrawn', 'alice'],
    ]);
  });

  it('a session that ends while held (psql killed) withdraws its review', async () => {
    let pid = 0;
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At'], {
      input: "insert into ledger (note) values ('orphaned');\n",
      onSpawn: (p) => (pid = p),
    });
    const r = await heldReview('alice');
    process.kill(pid, 'SIGKILL');
    await run;
    // The gateway notices the closed socket on its own; bounded wait for the review to close.
    expect(await waitUntil('the review to be withdrawn', async () => decided(await review(r.id)))).toMatchObject({
      state: 'withdrawn',
      decidedBy: null,
      outcome: ['session_ended'],
    });
    expect(await ledgerNotes()).not.toContain('orphaned');
  });

  it('a revoked grant ends the held session and withdraws its review', async () => {
    const c = await pgClient('alice');
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    const q = c.query("insert into ledger (note) values ('revoked')").then(
      () => undefined,
      (e: Error) => e,
    );
    const r = await heldReview('alice');
    const { body } = await env.api<{ others: Array<{ id: string; user: string }> }>('dave', 'GET', '/api/grants');
    for (const g of body.others.filter((x) => x.user === 'alice')) {
      expect((await env.api('dave', 'POST', `/api/grants/${g.id}/revoke`, { reason: 'incident over' })).status).toBe(200);
    }
    const err = (await q) ?? (await ended);
    expect(err?.message).toContain('revoked');
    expect(await waitUntil('the review to be withdrawn', async () => decided(await review(r.id)))).toMatchObject({
      state: 'withdrawn',
      outcome: ['session_ended'],
    });
    expect(await ledgerNotes()).not.toContain('revoked');
    await c.end().catch(() => undefined);
  });
});

describe('order and approvals', () => {
  it('keeps an extended-protocol pipeline in order behind the held statement', async () => {
    const s = await rawLogin({
      host: env.gw.host,
      port: env.gw.port,
      user: 'alice',
      connection: 'app',
      token: await env.gw.token({ user: 'alice' }),
    });
    try {
      const bindExecute = () => Buffer.concat([message('B', Buffer.from('\0\0\0\0\0\0\0\0')), message('E', Buffer.from('\0\0\0\0\0'))]);
      const sync = message('S', Buffer.alloc(0));
      s.socket.write(
        Buffer.concat([
          build.parse('', "insert into ledger (note) values ('pipelined') returning note"),
          bindExecute(),
          sync,
          build.parse('', "select 'behind it'"),
          bindExecute(),
          sync,
        ]),
      );
      const notice = await s.until('N');
      const r = await heldReview('alice');
      expect(errorOf(notice.at(-1)!).message).toContain(`review ${short(r.id)}`);
      // Nothing of the pipeline ran yet: no result of either statement has arrived.
      expect(s.messages.map((m) => m.type)).toEqual([]);

      expect((await env.api('carol', 'POST', `/api/reviews/${r.id}/approve`, {})).status).toBe(200);
      const first = await s.until('Z');
      const second = await s.until('Z');
      expect(first.map((m) => m.type).join('')).toBe('12DCZ');
      expect(first.find((m) => m.type === 'D')!.body.toString('latin1')).toContain('pipelined');
      expect(second.map((m) => m.type).join('')).toBe('12DCZ');
      expect(second.find((m) => m.type === 'D')!.body.toString('latin1')).toContain('behind it');
    } finally {
      s.socket.end(message('X', Buffer.alloc(0)));
    }
  });

  it('a denied statement in a batch: the rest of the batch (up to Sync) is not put to approvers', async () => {
    const s = await rawLogin({
      host: env.gw.host,
      port: env.gw.port,
      user: 'alice',
      connection: 'app',
      token: await env.gw.token({ user: 'alice' }),
    });
    try {
      const bindExecute = () => Buffer.concat([message('B', Buffer.from('\0\0\0\0\0\0\0\0')), message('E', Buffer.from('\0\0\0\0\0'))]);
      // One JDBC-style batch: two writes, one Sync.
      s.socket.write(
        Buffer.concat([
          build.parse('', "insert into ledger (note) values ('batch 1')"),
          bindExecute(),
          build.parse('', "insert into ledger (note) values ('batch 2')"),
          bindExecute(),
          message('S', Buffer.alloc(0)),
        ]),
      );
      await s.until('N');
      const r = await heldReview('alice');
      expect(r.statement).toContain('batch 1');
      expect((await env.api('carol', 'POST', `/api/reviews/${r.id}/deny`, { comment: 'no batches today' })).status).toBe(200);
      const answer = await s.until('Z');
      expect(answer.map((m) => m.type).join('')).toBe('EZ');
      expect(errorOf(answer[0]!)).toMatchObject({
        code: '42501',
        message: `jitgate: statement denied by carol (review ${short(r.id)}, rule "app-writes"): no batches today`,
      });
      const { body } = await env.api<{ reviews: ReviewJson[] }>('carol', 'GET', '/api/reviews?state=pending');
      expect(body.reviews).toEqual([]);
      expect(await ledgerNotes()).not.toContain('batch 2');
    } finally {
      s.socket.end(message('X', Buffer.alloc(0)));
    }
  });

  it('a named prepared statement is reviewed at every execution: approving one run does not approve the next', async () => {
    const c = await pgClient('alice');
    try {
      const insert = (note: string) =>
        c.query({ name: 'add-note', text: 'insert into ledger (note) values ($1)', values: [note] }).then(
          () => 'ok',
          (e: pg.DatabaseError) => e,
        );
      // First execution: Parse + Bind + Execute, held once and approved once.
      const first = insert('first run');
      const r1 = await heldReview('alice');
      expect(await env.api('carol', 'POST', `/api/reviews/${r1.id}/approve`, {})).toMatchObject({ status: 200 });
      expect(await first).toBe('ok');

      // Second execution of the same prepared statement (Bind + Execute, no Parse): a new review.
      const second = insert('second run, other values');
      const r2 = await heldReview('alice');
      expect(r2.id).not.toBe(r1.id);
      expect(r2.statement).toBe('insert into ledger (note) values ($1)');
      expect(await ledgerNotes()).not.toContain('second run, other values');
      expect(await env.api('carol', 'POST', `/api/reviews/${r2.id}/deny`, { comment: 'not this one' })).toMatchObject({ status: 200 });
      const err = await second;
      expect(err).toMatchObject({ code: '42501' });
      expect(await ledgerNotes()).not.toContain('second run, other values');

      // The session goes on, and a third run is decided again (approved this time).
      const third = insert('third run');
      const r3 = await heldReview('alice');
      expect(await env.api('carol', 'POST', `/api/reviews/${r3.id}/approve`, {})).toMatchObject({ status: 200 });
      expect(await third).toBe('ok');
      expect(await ledgerNotes()).toContain('third run');
    } finally {
      await c.end();
    }
  });

  it('inside a transaction: the approved statement runs in the open transaction, which commits', async () => {
    const run = psql(env.gw.dsn({ user: 'alice' }), await env.gw.token({ user: 'alice' }), ['-At'], {
      input:
        "begin;\ninsert into ledger (note) values ('in a transaction');\nselect count(*) from ledger where note = 'in a transaction';\ncommit;\n",
    });
    const r = await heldReview('alice');
    expect(await env.api('carol', 'POST', `/api/reviews/${r.id}/approve`, {})).toMatchObject({ status: 200 });
    const result = await run;
    expect(result.stdout).toBe('BEGIN\nINSERT 0 1\n1\nCOMMIT\n');
    expect(await ledgerNotes()).toContain('in a transaction');
  });

  it('refuses self-approval: an approver cannot approve their own statement', async () => {
    const c = await pgClient('bob');
    try {
      const q = c.query("insert into ledger (note) values ('by bob') returning note");
      const r = await heldReview('bob');
      const self = await env.api('bob', 'POST', `/api/reviews/${r.id}/approve`, {});
      expect(self).toMatchObject({ status: 403, body: { error: 'self_approval', message: 'nobody approves their own statement' } });
      const viaCli = await cli('bob', ['approve', short(r.id)]);
      expect(viaCli.code).toBe(1);
      expect(viaCli.err).toContain('nobody approves their own statement');
      expect((await review(r.id)).state).toBe('pending');
      expect(await env.api('carol', 'POST', `/api/reviews/${r.id}/approve`, {})).toMatchObject({ status: 200 });
      expect((await q).rows).toEqual([{ note: 'by bob' }]);
    } finally {
      await c.end();
    }
  });

  it('needs N distinct approvals from approver groups; others cannot approve', async () => {
    const c = await pgClient('alice', 'app-md5');
    try {
      let settled = false;
      const q = c.query('alter table md5_owned add column extra int').finally(() => (settled = true));
      const r = await heldReview('alice', 'app-md5');
      expect(r).toMatchObject({ rule: 'md5-ddl', reasons: ['kind_matched'], what: 'ALTER TABLE', approvalsRequired: 2 });

      const one = await env.api<{ review: ReviewJson; message: string }>('carol', 'POST', `/api/reviews/${r.id}/approve`, {
        comment: 'one',
      });
      expect(one).toMatchObject({ status: 200, body: { message: 'approval recorded (1 of 2)', review: { state: 'pending' } } });
      expect(await env.api('carol', 'POST', `/api/reviews/${r.id}/approve`, {})).toMatchObject({
        status: 409,
        body: { error: 'already_approved' },
      });
      // An admin outside the approver groups may not approve; someone who cannot see it gets 404.
      expect(await env.api('dave', 'POST', `/api/reviews/${r.id}/approve`, {})).toMatchObject({
        status: 403,
        body: { error: 'not_an_approver' },
      });
      expect(await env.api('mallory', 'POST', `/api/reviews/${r.id}/approve`, {})).toMatchObject({ status: 404 });
      expect(settled).toBe(false);

      const two = await cli('dan', ['approve', short(r.id)]);
      expect(two.out).toBe(`approved review ${short(r.id)}: alice's statement runs now on app-md5\n`);
      await q;
      expect((await review(r.id)).approvals.map((a) => a.approver)).toEqual(['carol', 'dan']);
      const cols = await server.query(
        "select column_name from information_schema.columns where table_name = 'md5_owned' and column_name = 'extra'",
      );
      expect(cols.rows).toHaveLength(1);
    } finally {
      await c.end();
    }
  });

  it('a guardrail refusal wins over a review: refused at once, nothing held', async () => {
    const c = await pgClient('alice');
    try {
      const err = await c.query('delete from ledger').then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain('guardrail "careful-writes"');
      const { body } = await env.api<{ reviews: ReviewJson[] }>('carol', 'GET', '/api/reviews?state=pending');
      expect(body.reviews).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('the author may withdraw their own held statement with deny; the CLI deny takes --comment', async () => {
    const c = await pgClient('alice');
    try {
      const q = c.query("insert into ledger (note) values ('withdrawn')").then(
        () => undefined,
        (e: pg.DatabaseError) => e,
      );
      const r = await heldReview('alice');
      const res = await cli('alice', ['deny', short(r.id), '--comment', 'wrong table']);
      expect(res.out).toBe(`withdrew your statement (review ${short(r.id)}) on app\n`);
      const err = await q;
      expect(err?.code).toBe('57014');
      expect(err?.message).toBe(`jitgate: statement withdrawn (review ${short(r.id)}): wrong table`);
      expect(await review(r.id)).toMatchObject({ state: 'withdrawn', decidedBy: 'alice', outcome: ['withdrawn_by_author'] });
    } finally {
      await c.end();
    }
  });
});

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
