/**
 * Session recording end to end, with a real PostgreSQL, psql and the `pg` driver:
 *
 *   a psql session replays as psql printed it; bound parameters of extended-protocol (and prepared)
 *   statements; row caps with truncation marked; a held statement and its approval; the grant and
 *   its approvals at session start; failed logins audited; the API's access rules; a live tail over
 *   server-sent events and `replay --follow`; kill through the API and `jitgate kill`; search
 *   filters; fail closed when recordings cannot be written (and best-effort passes); tampering with
 *   a recording or the audit log is caught; and, last, no token or password used in this run appears
 *   in any file the gateways wrote.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerFromPem } from '../src/audit/signing.js';
import { pendingDecision } from '../src/core/pending-decision.js';
import type { Decision, Identity, SessionPipeline } from '../src/core/types.js';
import type { RecordedEvent } from '../src/recording/file-recorder.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { cli, decompressed, filesUnder, settledSession, until } from './support/recording.js';
import { collect } from './support/collect.js';

const person = (user: string, ...groups: string[]): Identity => ({ user, groups, kind: 'human', via: 'test' });
const PEOPLE: Record<string, Identity> = {
  alice: person('alice', 'engineering'),
  bob: person('bob', 'approvers'),
  audrey: person('audrey', 'auditors'),
  dave: person('dave', 'admins'),
  mallory: person('mallory', 'marketing'),
};

let server: PgServer;
let gw: TestGateway;
/** Every token and password this run hands to a client or types into SQL: none may be recorded. */
const secrets: string[] = [];
const PASSWORD_LITERAL = 'Sup3r-s3cret-literal-7f2c';

beforeAll(async () => {
  server = await startPostgres();
  await server.query('create table ledger (v int); grant all on ledger to public');
  for (const u of Object.values(server.users)) secrets.push(u.password);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers], maxDuration: 4h }
recording:
  limits: { rowsPerStatement: 50, rowsPerSession: 120 }
  connections:
    app-md5: { mode: best-effort }
audit:
  auditors: [auditors]
`,
  });
  gw.gateway.router.setAuthenticator((req) => {
    const m = /^Bearer test:(\w+)$/.exec(req.headers.authorization ?? '');
    return m ? (PEOPLE[m[1]!] ?? null) : null;
  });
  gw.gateway.access.setAdminCheck((i) => i.groups.includes('admins'));
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function token(o: { user?: string; connection?: string } = {}): Promise<string> {
  const t = await gw.token(o);
  secrets.push(t);
  return t;
}

async function api<T = Record<string, unknown>>(
  who: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(gw.httpUrl + path, {
    method,
    headers: { authorization: `Bearer test:${who}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function eventsOf(id: string): Promise<RecordedEvent[]> {
  const read = await gw.gateway.recording.read(id);
  expect(read?.result.intact).toBe(true);
  return read!.result.events;
}

async function client(opts: { user?: string; connection?: string; app: string }): Promise<pg.Client> {
  const c = new pg.Client({
    host: gw.host,
    port: gw.port,
    user: opts.user ?? 'alice',
    database: opts.connection ?? 'app',
    password: await token(opts),
    application_name: opts.app,
  });
  c.on('error', () => undefined);
  return c;
}

describe('what a session records', () => {
  it('replays a psql session exactly as psql printed it, with statements, errors and notices', async () => {
    const script = [
      'select id, name, payload from items order by id;',
      'select 1/0;',
      "do $$ begin raise notice 'checking % rows', 5; end $$;",
      'insert into ledger (v) values (7) returning v;',
      "select E'two\\nlines' as multi, 42 as answer, null::text as nothing;",
      `alter role nobody_here password '${PASSWORD_LITERAL}';`,
      'select count(*) from ledger;',
      'copy (select id, name from items order by id limit 2) to stdout;',
    ].join('\n');
    secrets.push(PASSWORD_LITERAL);
    const r = await psql(gw.dsn({}), await token(), ['-v', 'ON_ERROR_STOP=0'], { input: script });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('ERROR:  division by zero');
    const s = await settledSession(gw, { applicationName: 'jitgate-test' });
    expect(s.recording).toMatchObject({ state: 'complete', mode: 'required', truncated: false });

    const replay = await cli(['replay', s.id.slice(0, 8), '--data-dir', gw.dataDir]);
    expect(replay.err).toBe('');
    expect(replay.code).toBe(0);
    const lines = replay.out.split('\n');
    // Take away what psql did not print on stdout (prompts, the gateway's comments, messages it
    // printed on stderr): what is left is exactly psql's output.
    const stdoutPart = lines.filter((l) => !/^(app=> |app-> |-- |ERROR: {2}|NOTICE: {2})/.test(l)).join('\n');
    expect(stdoutPart).toBe(r.stdout);
    for (const m of r.stderr.split('\n').filter((l) => /^(ERROR|NOTICE): {2}/.test(l))) expect(lines).toContain(m);
    expect(lines).toContain('app=> select id, name, payload from items order by id;');
    expect(lines).toContain("app=> alter role nobody_here password '[redacted]';");
    expect(lines[0]).toMatch(new RegExp(`^-- session ${s.id}: alice on app with jitgate-test from 127\\.0\\.0\\.1:\\d+, `));
    expect(lines[1]).toMatch(
      /^-- access grant \S+ \(issued by local-admin:test; reason: "issued by an administrator on the gateway host"; until /,
    );
    expect(lines.at(-2)).toMatch(/^-- session ended after \S+ \(client_quit\): 8 statements, 10 rows recorded$/);

    const json = await cli(['replay', s.id, '--json', '--data-dir', gw.dataDir]);
    const events = json.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RecordedEvent);
    // Small results are one event each, with the statement boundary (ReadyForQuery) folded in.
    expect(events.map((e) => e.type)).toEqual([
      'session_start',
      ...['statement', 'result'],
      ...['statement', 'error'],
      ...['statement', 'notice', 'complete'],
      ...['statement', 'result'],
      ...['statement', 'result'],
      ...['statement', 'error'],
      ...['statement', 'result'],
      ...['statement', 'copy', 'complete'],
      'session_end',
    ]);
    expect(events.filter((e) => e.data.ready !== undefined)).toHaveLength(8);
    expect(events[2]!.data).toMatchObject({
      columns: [
        { name: 'id', type: 23 },
        { name: 'name', type: 25 },
        { name: 'payload', type: 25 },
      ],
      tag: 'SELECT 5',
      count: 5,
    });
    expect(events.find((e) => e.type === 'copy')!.data).toEqual({ data: ['1\talpha\n', '2\tbeta\n'] });
    expect(events[0]!.data).toMatchObject({
      user: 'alice',
      connection: 'app',
      applicationName: 'jitgate-test',
      authMethod: 'SCRAM-SHA-256',
      encrypted: false,
    });
    expect(events.find((e) => e.type === 'notice')!.data).toEqual({ severity: 'NOTICE', code: '00000', message: 'checking 5 rows' });
    expect(events.find((e) => e.type === 'error')!.data).toEqual({
      severity: 'ERROR',
      code: '22012',
      message: 'division by zero',
      ready: { ms: expect.any(Number) },
    });
    // The final digest went to the audit log when the session ended.
    const ended = (await gw.gateway.audit.about(s.id)).find((e) => e.type === 'session.ended')!;
    expect(ended.data.recording).toMatchObject({ state: 'complete', digest: events.at(-1)!.h, events: events.length });
  });

  it('records bound parameters of extended-protocol statements, prepared ones included', async () => {
    const c = await client({ app: 'pg-params' });
    await c.connect();
    await c.query('select name from items where id = $1 and name <> $2', [2, "o'brien"]);
    await c.query({ name: 'by-id', text: 'select name from items where id = $1', values: [1] });
    await c.query({ name: 'by-id', text: 'select name from items where id = $1', values: [3] });
    await c.query('select $1::text as nothing', [null]);
    await c.end();
    const s = await settledSession(gw, { applicationName: 'pg-params' });
    const events = await eventsOf(s.id);
    const parses = events.filter((e) => e.type === 'statement').map((e) => e.data);
    expect(parses.map((p) => [p.n, p.source, p.name ?? '', p.text])).toEqual([
      [1, 'parse', '', 'select name from items where id = $1 and name <> $2'],
      [2, 'parse', 'by-id', 'select name from items where id = $1'],
      [3, 'parse', '', 'select $1::text as nothing'],
    ]);
    const binds = events.filter((e) => e.type === 'bind').map((e) => [e.data.n, e.data.params]);
    expect(binds).toEqual([
      [1, ['2', "o'brien"]],
      [2, ['1']],
      [2, ['3']],
      [3, [null]],
    ]);
    const replay = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
    expect(replay.out).toContain("-- bind statement 1: $1 = '2', $2 = 'o''brien'\n");
    expect(replay.out).toContain("-- bind statement 2: $1 = '3'\n name  \n-------\n gamma\n(1 row)\n");
  });

  it('records rows up to the per-statement and per-session caps and marks what was cut', async () => {
    const r = await psql(gw.dsn({}), await token(), ['-A', '-t'], {
      input: [80, 40, 45, 1].map((n) => `select g from generate_series(1, ${n}) g;`).join('\n') + '\n',
    });
    expect(r.code).toBe(0);
    const s = await settledSession(gw, { applicationName: 'jitgate-test' });
    expect(s.recording).toMatchObject({ truncated: true, rowsRecorded: 120 });
    const results = (await eventsOf(s.id)).filter((e) => e.type === 'result').map((e) => e.data);
    expect(results.map((r) => [r.tag, r.count, (r.rows as unknown[]).length, r.truncated])).toEqual([
      ['SELECT 80', 80, 50, { cap: 'statement', recorded: 50 }],
      ['SELECT 40', 40, 40, undefined],
      ['SELECT 45', 45, 30, { cap: 'session', recorded: 30 }],
      ['SELECT 1', 1, 0, { cap: 'session', recorded: 0 }],
    ]);
    const replay = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
    expect(replay.out).toContain('\n 50\n-- jitgate: 30 more rows not recorded (limit per statement)\n(80 rows)\n');
    expect(replay.out).toContain('\n 30\n-- jitgate: 15 more rows not recorded (limit per session)\n(45 rows)\n');
  });

  it('records a held statement durably while it waits, then its approval and the wait', async () => {
    const service = gw.gateway.recording;
    const open = service.open.bind(service);
    let approve: ((d: Decision) => void) | undefined;
    // A scripted policy: statements touching "payroll" wait for a person (as review rules will).
    service.open = (info, openInner) =>
      open(info, async () => {
        const inner = await openInner();
        const holding: SessionPipeline = {
          ...inner,
          decide: (st) => {
            if (!st.text.includes('payroll')) return inner.decide(st);
            const held = pendingDecision(new Promise<Decision>((r) => (approve = r)));
            held.held({ notice: { effect: 'review', reasons: ['review:payroll'], rule: 'payroll' }, withdraw: () => undefined });
            return held.pending;
          },
        };
        return holding;
      });
    try {
      const running = psql(gw.dsn({}), await token(), [], { input: "select 'payroll' as what;\n" });
      await until(() => approve, 10_000, 'the held statement');
      const live = await until(() =>
        gw.gateway.recording.repo.search({ status: 'live', limit: 5 }).find((x) => x.applicationName === 'jitgate-test'),
      );
      // Checkpointed before the wait: the file already holds the held statement.
      const durable = await gw.gateway.recording.sink.read(live.recording!.location!);
      expect(durable.events.at(-1)).toMatchObject({ type: 'statement', data: { held: true, text: "select 'payroll' as what;" } });
      // Kept: the recorded wait (waitedMs) is what this checks, so the statement must wait a while.
      await new Promise((r) => setTimeout(r, 150));
      approve!({ effect: 'allow', reasons: ['approved'], approvedBy: 'bob' } as Decision);
      const r = await running;
      expect(r.stdout).toContain('payroll');
    } finally {
      service.open = open;
    }
    const s = await settledSession(gw, { applicationName: 'jitgate-test' });
    const decision = (await eventsOf(s.id)).find((e) => e.type === 'decision')!;
    expect(decision.data).toMatchObject({ n: 1, decision: { effect: 'allow', reasons: ['approved'], approvedBy: 'bob' } });
    expect(decision.data.waitedMs as number).toBeGreaterThanOrEqual(100);
    const replay = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
    expect(replay.out).toMatch(
      /-- jitgate: statement 1 held for approval\nNOTICE: {2}jitgate: statement held for approval\n-- jitgate: statement 1 approved after \S+ \(approved; by bob\)\n {2}what {3}\n-{9}\n payroll\n\(1 row\)\n\n/,
    );
    expect((await gw.gateway.audit.about(s.id)).map((e) => e.type)).toEqual([
      'session.started',
      'statement.held',
      'statement.decided',
      'session.ended',
    ]);
  });

  it('records the grant and its approvals at session start; the access workflow is audited', async () => {
    const asked = await api<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
      connection: 'app',
      duration: '1h',
      reason: 'ticket OPS-12',
    });
    expect(asked.status).toBe(201);
    expect((await api('bob', 'POST', `/api/requests/${asked.body.request.id}/approve`, { comment: 'ok' })).status).toBe(200);
    const t = await api<{ token: string; grant: { id: string } }>('alice', 'POST', '/api/tokens', { connection: 'app' });
    secrets.push(t.body.token);
    const r = await psql(gw.dsn({}), t.body.token, [], { input: 'select 1 as one;\n' });
    expect(r.code).toBe(0);
    const s = await settledSession(gw, { applicationName: 'jitgate-test' });
    const start = (await eventsOf(s.id))[0]!;
    expect(start.data).toMatchObject({
      user: 'alice',
      groups: ['engineering'],
      grant: {
        id: t.body.grant.id,
        reason: 'ticket OPS-12',
        requestId: asked.body.request.id,
        approvedBy: ['bob'],
        breakGlass: false,
        policy: 'app-engineers',
      },
    });
    const replay = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
    expect(replay.out).toContain(`-- access grant ${t.body.grant.id} (approved by bob; reason: "ticket OPS-12"; until `);
    const types = (await collect(gw.gateway.audit.entries()))
      .filter((e) => e.subject === asked.body.request.id || e.subject === t.body.grant.id)
      .map((e) => e.type);
    expect(types).toEqual(['access.request.created', 'access.request.approved', 'access.grant.created']);
  });

  it('audits failed logins (without the token that was tried)', async () => {
    const wrong = 'jg_' + 'A'.repeat(43);
    secrets.push(wrong);
    const r = await psql(gw.dsn({ user: 'mallory' }), wrong, [], { input: 'select 1;\n' });
    expect(r.code).not.toBe(0);
    const failed = (await collect(gw.gateway.audit.entries())).filter((e) => e.type === 'login.failed').at(-1)!;
    expect(failed).toMatchObject({ actor: 'mallory', data: { protocol: 'postgres', connection: 'app' } });
  });
});

describe('the HTTP API', () => {
  let aliceSession: string;
  beforeAll(async () => {
    aliceSession = (await settledSession(gw, { user: 'alice' })).id;
  });

  it('lets auditors and admins read every session, a user only their own', async () => {
    const bobToken = await token({ user: 'bob' });
    expect((await psql(gw.dsn({ user: 'bob' }), bobToken, [], { input: 'select 1;\n' })).code).toBe(0);
    const bobSession = (await settledSession(gw, { user: 'bob' })).id;

    const mine = await api<{ sessions: Array<{ user: string }> }>('alice', 'GET', '/api/sessions?limit=500');
    expect(mine.status).toBe(200);
    expect(new Set(mine.body.sessions.map((s) => s.user))).toEqual(new Set(['alice']));
    expect((await api('alice', 'GET', '/api/sessions?user=bob')).status).toBe(403);
    expect((await api('alice', 'GET', `/api/sessions/${bobSession}`)).status).toBe(404);
    expect((await api('mallory', 'GET', `/api/sessions/${aliceSession}/events`)).status).toBe(404);
    expect((await api('mallory', 'GET', `/api/sessions/${aliceSession}/events/stream`)).status).toBe(404);

    for (const who of ['audrey', 'dave']) {
      const all = await api<{ sessions: Array<{ user: string }> }>(who, 'GET', '/api/sessions?limit=500');
      expect(new Set(all.body.sessions.map((s) => s.user))).toEqual(new Set(['alice', 'bob']));
      const events = await api<{ events: RecordedEvent[]; verification: { ok: boolean } }>(
        who,
        'GET',
        `/api/sessions/${bobSession}/events`,
      );
      expect(events.status).toBe(200);
      expect(events.body.verification.ok).toBe(true);
      expect(events.body.events[0]!.type).toBe('session_start');
    }
    const own = await api<{ session: { id: string; status: string; recording: { state: string } } }>(
      'bob',
      'GET',
      `/api/sessions/${bobSession.slice(0, 10)}`,
    );
    expect(own.body.session).toMatchObject({ id: bobSession, status: 'ended', recording: { state: 'complete' } });
    expect((await fetch(`${gw.httpUrl}/api/sessions`)).status).toBe(401);
  });

  it('filters by user, connection, time, status and statement text (API and CLI)', async () => {
    const q = async (query: string) =>
      (await api<{ sessions: Array<{ id: string; user: string }> }>('audrey', 'GET', `/api/sessions?${query}`)).body.sessions;
    expect((await q('statement=GENERATE_SERIES(1, 80)')).length).toBe(1);
    expect((await q('statement=no such statement text')).length).toBe(0);
    expect((await q('user=bob')).every((s) => s.user === 'bob')).toBe(true);
    expect((await q('status=live')).length).toBe(0);
    expect((await q('since=1h&until=' + new Date(Date.now() + 60_000).toISOString())).length).toBeGreaterThan(3);
    expect((await q('until=2000-01-01')).length).toBe(0);
    expect((await api('audrey', 'GET', '/api/sessions?since=yesterday')).status).toBe(400);

    const byText = await cli(['sessions', '--statement', 'payroll', '--json', '--data-dir', gw.dataDir]);
    expect(byText.code).toBe(0);
    expect((JSON.parse(byText.out) as unknown[]).length).toBe(1);
    const table = await cli(['sessions', '--user', 'bob', '--status', 'ended', '--since', '1h', '--data-dir', gw.dataDir]);
    expect(table.out.split('\n')[1]).toMatch(/^\S+\s+bob\s+app\s/);
    expect((await cli(['sessions', '--since', 'last tuesday', '--data-dir', gw.dataDir])).err).toMatch(
      /^jitgate: --since: expected an ISO 8601 time/,
    );
  });

  it('tails a live session over server-sent events, and `replay --follow` follows it too', async () => {
    const c = await client({ app: 'live-tail' });
    await c.connect();
    const live = await until(() => gw.gateway.recording.repo.search({ status: 'live' }).find((s) => s.applicationName === 'live-tail'));
    await c.query('select 1 as first');

    const follow = cli(['replay', live.id, '--follow', '--speed', '100', '--data-dir', gw.dataDir]);
    const res = await fetch(`${gw.httpUrl}/api/sessions/${live.id}/events/stream`, { headers: { authorization: 'Bearer test:audrey' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const received: Array<{ event: string; data: string }> = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) received.push({ event, data });
        }
      }
    })();
    await until(() => received.some((e) => e.event === 'result'), 10_000, 'the recorded part of the stream');
    await c.query('select 2 as second');
    await until(() => received.some((e) => e.data.includes('select 2 as second')), 10_000, 'a live event');
    await c.end();
    await reading;
    const events = received.filter((e) => e.event !== 'end').map((e) => JSON.parse(e.data) as RecordedEvent);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i)); // everything, once, in order
    expect(events.at(-1)!.type).toBe('session_end');
    expect(received.at(-1)!.event).toBe('end');

    const followed = await follow;
    expect(followed.code).toBe(0);
    expect(followed.out).toContain('app=> select 1 as first\n first \n-------\n     1\n(1 row)\n');
    expect(followed.out).toContain('app=> select 2 as second\n');
    expect(followed.out).toMatch(/-- session ended after \S+ \(client_quit\)/);

    // Resuming after an event id sends only what came after it.
    const resumed = await fetch(`${gw.httpUrl}/api/sessions/${live.id}/events/stream`, {
      headers: { authorization: 'Bearer test:audrey', 'last-event-id': String(events.length - 2) },
    });
    const rest = await resumed.text();
    expect(rest.match(/^id: /gm)).toHaveLength(1);
    expect(rest).toContain('event: session_end');
  });

  it('kills a live session through the API (own user) and `jitgate kill` (admin); both recorded and audited', async () => {
    for (const [who, how] of [
      ['alice', 'api'],
      ['dave', 'cli'],
    ] as const) {
      const c = await client({ app: `kill-${how}` });
      await c.connect();
      await c.query('select 1');
      const live = await until(() => gw.gateway.recording.repo.search({ status: 'live' }).find((s) => s.applicationName === `kill-${how}`));
      const lost = new Promise<Error>((resolve) => c.once('error', resolve));
      if (how === 'api') {
        expect((await api('audrey', 'POST', `/api/sessions/${live.id}/kill`, { reason: 'x' })).status).toBe(403); // auditors read, they do not kill
        expect((await api('mallory', 'POST', `/api/sessions/${live.id}/kill`, { reason: 'x' })).status).toBe(404);
        expect((await api('alice', 'POST', `/api/sessions/${live.id}/kill`, {})).status).toBe(400);
        const killed = await api(who, 'POST', `/api/sessions/${live.id}/kill`, { reason: 'closing my own session' });
        expect(killed).toMatchObject({ status: 202, body: { killed: true } });
      } else {
        const r = await cli(['kill', live.id.slice(0, 8), '--reason', 'incident 9'], {
          JITGATE_URL: gw.httpUrl,
          JITGATE_TOKEN: 'test:dave',
        });
        expect(r).toMatchObject({ code: 0, out: `ended session ${live.id}\n` });
      }
      const err = (await lost) as Error & { code?: string };
      expect(err.code).toBe('57P01');
      expect(err.message).toContain(how === 'api' ? 'session ended by alice: closing my own session' : 'session ended by dave: incident 9');
      const s = await settledSession(gw, { applicationName: `kill-${how}` });
      expect(s.endReason).toBe('killed');
      const events = await eventsOf(s.id);
      expect(events.find((e) => e.type === 'kill')!.data).toEqual({
        by: who,
        reason: how === 'api' ? 'closing my own session' : 'incident 9',
      });
      expect(events.at(-1)!.data).toMatchObject({ reason: 'killed' });
      expect((await gw.gateway.audit.about(s.id)).find((e) => e.type === 'session.killed')).toMatchObject({ actor: who });
      expect((await api('dave', 'POST', `/api/sessions/${s.id}/kill`, { reason: 'again' })).status).toBe(409);
    }
  });

  it('places and releases legal holds (auditors, admins), audited', async () => {
    expect((await api('alice', 'POST', `/api/sessions/${aliceSession}/hold`, { reason: 'mine' })).status).toBe(403);
    const held = await api<{ recording: { hold: { by: string; reason: string } } }>(
      'audrey',
      'POST',
      `/api/sessions/${aliceSession}/hold`,
      { reason: 'case 42' },
    );
    expect(held.status).toBe(200);
    expect(held.body.recording.hold).toMatchObject({ by: 'audrey', reason: 'case 42' });
    expect((await api('dave', 'POST', `/api/sessions/${aliceSession}/unhold`, {})).status).toBe(200);
    expect((await api('dave', 'POST', `/api/sessions/${aliceSession}/unhold`, {})).status).toBe(409);
    const cliHold = await cli(['sessions', 'hold', aliceSession, '--reason', 'litigation', '--data-dir', gw.dataDir]);
    expect(cliHold).toMatchObject({ code: 0, err: '' });
    expect(gw.gateway.recording.repo.get(aliceSession)!.hold).toMatchObject({
      reason: 'litigation',
      by: expect.stringMatching(/^local-admin/),
    });
    expect((await gw.gateway.audit.about(aliceSession)).map((e) => e.type).filter((t) => t.startsWith('legal_hold'))).toEqual([
      'legal_hold.set',
      'legal_hold.released',
      'legal_hold.set',
    ]);
  });
});

describe('fail closed', () => {
  let blocked: TestGateway;
  beforeAll(async () => {
    blocked = await startTestGateway(server, {
      // The recordings "directory" is a file: nothing can be created under it (even as root).
      beforeStart: (dir) => writeFileSync(join(dir, 'not-a-dir'), 'x'),
      extraYaml: `recording:
  dir: not-a-dir/recordings
  connections:
    app-md5: { mode: best-effort }
`,
    });
  });
  afterAll(() => blocked?.close());

  it('refuses the statements of a session that cannot be recorded; best-effort connections run unrecorded', async () => {
    const t1 = await blocked.token();
    secrets.push(t1);
    const refused = await psql(blocked.dsn({}), t1, [], { input: 'select 1;\n' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      'ERROR:  jitgate cannot record this session, and this connection requires recording: statement refused; try again later',
    );
    expect(refused.stderr).toContain('reason: recording_unavailable');
    const t2 = await blocked.token({ connection: 'app-md5' });
    secrets.push(t2);
    const passed = await psql(blocked.dsn({ connection: 'app-md5' }), t2, ['-A', '-t'], { input: 'select 41 + 1;\n' });
    expect(passed).toMatchObject({ code: 0, stdout: '42\n' });
    const audit = (await collect(blocked.gateway.audit.entries())).filter((e) => e.type === 'recording.unavailable');
    expect(audit.map((e) => e.data.mode)).toEqual(['required', 'best-effort']);
    const listed = await cli(['sessions', '--json', '--data-dir', blocked.dataDir]);
    expect((JSON.parse(listed.out) as Array<{ recording: { state: string } }>).map((s) => s.recording.state)).toEqual([
      'unavailable',
      'unavailable',
    ]);
  });

  it('catches an edited audit entry: `jitgate audit verify` names it', async () => {
    const ok = await cli(['audit', 'verify', '--data-dir', blocked.dataDir]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^audit log verified: \d+ entries \(#1\.\.#\d+\)/);
    const db = new Database(join(blocked.dataDir, 'jitgate.db'));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.prepare(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2`).run();
    db.close();
    const bad = await cli(['audit', 'verify', '--data-dir', blocked.dataDir]);
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('audit log does NOT verify: entry #2: its content does not match its hash (the entry was changed)\n');
  });
});

describe('tamper evidence', () => {
  it('verifies the audit log with signed checkpoints, online and as an offline export', async () => {
    await gw.gateway.audit.checkpoint(signerFromPem(readFileSync(join(gw.dataDir, 'audit-signing.key'), 'utf8'), 'test'));
    const verify = await cli(['audit', 'verify', '--recordings', '--data-dir', gw.dataDir]);
    expect(verify.err).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.out).toMatch(
      /^audit log verified: \d+ entries \(#1\.\.#\d+\), 1 signed checkpoint, signed up to #\d+ by the trusted key\nrecordings verified: \d+, each chain intact/,
    );

    const exported = await cli(['audit', 'export', '--since', '1h', '--data-dir', gw.dataDir]);
    const file = join(gw.dataDir, 'export.jsonl');
    writeFileSync(file, exported.out);
    const key = await cli(['audit', 'public-key', '--data-dir', gw.dataDir]);
    writeFileSync(join(gw.dataDir, 'audit.pub'), key.out);
    const offline = await cli(['audit', 'verify', '--file', file, '--public-key', join(gw.dataDir, 'audit.pub'), '--data-dir', gw.dataDir]);
    expect(offline.code).toBe(0);
    expect(offline.out).toMatch(/^export .* verified: .* by the trusted key/);
    const lines = exported.out.trim().split('\n');
    const victim = JSON.parse(lines[3]!) as { seq: number; data: Record<string, unknown> };
    lines[3] = JSON.stringify({ ...victim, data: { ...victim.data, tampered: true } });
    writeFileSync(file, lines.join('\n') + '\n');
    const tampered = await cli([
      'audit',
      'verify',
      '--file',
      file,
      '--public-key',
      join(gw.dataDir, 'audit.pub'),
      '--data-dir',
      gw.dataDir,
    ]);
    expect(tampered.code).toBe(1);
    expect(tampered.out).toMatch(new RegExp(`does NOT verify: entry #${victim.seq}: its content does not match its hash`));
  });

  it('catches an edited recording and one cut short', async () => {
    const s = await settledSession(gw, { applicationName: 'pg-params' });
    const path = join(gw.gateway.recording.config.dir, s.recording.location!);
    const original = readFileSync(path);
    const backup = path + '.orig';
    copyFileSync(path, backup);
    try {
      const text = decompressed(path);
      writeFileSync(path, zlib.gzipSync(text.replace('"gamma"', '"GAMMA"')));
      const edited = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
      expect(edited.code).toBe(1);
      expect(edited.err).toMatch(/does not verify:\n {2}- the hash chain breaks at event \d+/);
      const audit = await cli(['audit', 'verify', '--recordings', '--data-dir', gw.dataDir]);
      expect(audit.code).toBe(1);
      expect(audit.out).toContain(`recording of session ${s.id} does NOT verify`);

      // Dropping the last events keeps the chain intact; the digests at session end catch it.
      const kept = text.split('\n').slice(0, -3).join('\n') + '\n';
      writeFileSync(path, zlib.gzipSync(kept));
      const cut = await cli(['replay', s.id, '--data-dir', gw.dataDir]);
      expect(cut.code).toBe(1);
      expect(cut.err).toContain('its last event does not carry the final digest recorded at session end');
      expect(cut.err).toContain("does not carry the digest in the audit log's session.ended entry");
    } finally {
      writeFileSync(path, original);
    }
    expect((await cli(['replay', s.id, '--data-dir', gw.dataDir])).code).toBe(0);
  });
});

describe('credentials never enter a recording', () => {
  it('no token or password used in this run appears in any file the gateways wrote', async () => {
    await until(() => gw.gateway.recording.repo.search({ status: 'live' }).length === 0 || undefined, 10_000, 'sessions to end');
    expect(secrets.length).toBeGreaterThan(15);
    const files = filesUnder(gw.dataDir).filter((f) => !f.endsWith('.orig'));
    const recordings = files.filter((f) => f.endsWith('.jsonl.gz'));
    expect(recordings.length).toBeGreaterThanOrEqual(9);
    for (const f of files) {
      const text = f.endsWith('.gz') ? decompressed(f) : readFileSync(f).toString('latin1');
      for (const secret of secrets) {
        if (text.includes(secret)) throw new Error(`${f} contains a secret used in this run: ${secret.slice(0, 6)}...`);
      }
    }
    // And the recordings really hold what the sessions did (the search above looked at the right text).
    expect(recordings.map(decompressed).join('\n')).toContain('division by zero');
  });
});
