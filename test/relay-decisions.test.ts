/**
 * The session seam's decisions on the wire: refused statements (simple and extended protocol, in
 * and out of transactions) and held statements, against a real PostgreSQL. These are the
 * mechanisms guardrails and approvals build on; here a scripted pipeline makes the decisions.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pendingDecision } from '../src/core/pending-decision.js';
import type { Decision, HoldInfo, PendingDecision, ResultEvent, ResultObserver, SessionPipeline, Statement } from '../src/core/types.js';
import { connectBackend } from '../src/protocols/postgres/backend.js';
import { build } from '../src/protocols/postgres/codec.js';
import { PostgresRelay } from '../src/protocols/postgres/relay.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { errorOf, wrap, type RawSession } from './support/raw-client.js';
import { waitUntil } from './support/wait.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
  await server.query('create table ledger (v int); grant all on ledger to public');
});
afterAll(() => server?.cleanup());

type Decide = (s: Statement) => Decision | PendingDecision;

async function session(decide: Decide, observer?: ResultObserver): Promise<RawSession & { relay: PostgresRelay }> {
  const accepted = new Promise<net.Socket>((resolve) => {
    const srv = net.createServer((s) => {
      srv.close();
      resolve(s);
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      clientSocket = net.connect(port, '127.0.0.1');
    });
  });
  let clientSocket!: net.Socket;
  const serverSide = await accepted;
  const backend = await connectBackend(
    {
      connection: 'app',
      protocol: 'postgres',
      host: server.host,
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
      tls: { mode: 'disable' },
      connectTimeoutMs: 5000,
    },
    new Map(),
  );
  const pipeline: SessionPipeline = { id: 'test', decide, end: () => undefined, observer };
  const relay = new PostgresRelay({
    client: serverSide,
    backend: backend.socket,
    pipeline,
    readyStatus: backend.readyStatus,
    cancelBackend: async () => undefined,
    onEnd: () => undefined,
  });
  relay.start(Buffer.alloc(0), backend.leftover);
  return Object.assign(wrap(clientSocket), { relay });
}

/** A decision the gateway takes a moment to reach (masking reading its catalog) with nobody asked. */
function waitsForGateway(settle: (release: (d: Decision) => void) => void): PendingDecision {
  return pendingDecision(new Promise<Decision>(settle)).pending;
}

/**
 * A statement the gateway first decides itself (masking reading its catalog) and then holds for a
 * person, as the session pipeline does: `checked()` ends the gateway's part, `decide` the person's.
 */
function heldAfterGatewayCheck() {
  const script = {
    checked: undefined as (() => void) | undefined,
    decide: undefined as ((d: Decision) => void) | undefined,
    withdrawn: false,
  };
  const decide = (): PendingDecision => {
    const later = pendingDecision(
      new Promise<void>((r) => (script.checked = r)).then(() => {
        const review = pendingDecision(new Promise<Decision>((r) => (script.decide = r)));
        const hold: HoldInfo = {
          notice: {
            effect: 'review',
            reasons: ['review:deletes'],
            rule: 'deletes',
            message: 'jitgate: statement held for approval (rule "deletes")',
          },
          withdraw: () => {
            script.withdrawn = true;
            script.decide!({
              effect: 'deny',
              reasons: ['cancelled_by_client'],
              code: 'cancelled',
              message: 'canceling statement due to user request',
            });
          },
        };
        review.held(hold);
        review.pending.onHold(later.held);
        return review.pending;
      }),
    );
    return later.pending;
  };
  return { script, decide };
}

const deny = (reason: string): Decision => ({ effect: 'deny', reasons: [reason], message: `jitgate: refused by rule test (${reason})` });
const allow: Decision = { effect: 'allow', reasons: [] };

function bindExecuteSync(statement = ''): Buffer {
  const bind = Buffer.concat([Buffer.from([0x42, 0, 0, 0, 0]), Buffer.from(`\0${statement}\0`), Buffer.from([0, 0, 0, 0, 0, 0])]);
  bind.writeInt32BE(bind.length - 1, 1);
  const exec = Buffer.from([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0]);
  return Buffer.concat([bind, exec]);
}
const sync = Buffer.from([0x53, 0, 0, 0, 4]);

describe('refused statements', () => {
  it('answers a refused simple query with 42501 naming the rule; the session goes on', async () => {
    const s = await session((st) => (st.text.includes('secret') ? deny('table_denied') : allow));
    s.socket.write(build.query('select * from secret'));
    const refused = await s.until('Z');
    expect(refused.map((m) => m.type).join('')).toBe('EZ');
    expect(errorOf(refused[0]!)).toMatchObject({ code: '42501', message: 'jitgate: refused by rule test (table_denied)' });
    s.socket.write(build.query('select 41 + 1'));
    const next = await s.until('Z');
    expect(next.map((m) => m.type).join('')).toBe('TDCZ');
    s.socket.destroy();
  });

  it('aborts an open transaction block exactly as a failed statement would', async () => {
    const s = await session((st) => (st.text.includes('forbidden') ? deny('ddl_denied') : allow));
    s.socket.write(build.query('begin'));
    await s.until('Z');
    s.socket.write(build.query('insert into ledger values (1)'));
    expect((await s.until('Z')).map((m) => m.type).join('')).toBe('CZ');
    s.socket.write(build.query('drop table forbidden'));
    const refused = await s.until('Z');
    expect(errorOf(refused[0]!).code).toBe('42501');
    expect(refused.at(-1)!.body.toString()).toBe('E'); // transaction status: failed
    s.socket.write(build.query('rollback'));
    await s.until('Z');
    expect((await server.query('select count(*)::int n from ledger')).rows[0]!.n).toBe(0);
    s.socket.destroy();
  });

  it('refuses a Parse inside a pipeline in order, and the batch fails as a whole like PostgreSQL', async () => {
    const s = await session((st) => (st.text.includes('pg_read_file') ? deny('function_denied') : allow));
    s.socket.write(
      Buffer.concat([
        build.parse('', 'insert into ledger values (7)'),
        bindExecuteSync(),
        build.parse('', "select pg_read_file('/etc/passwd')"),
        bindExecuteSync(),
        sync,
      ]),
    );
    const messages = await s.until('Z');
    expect(messages.map((m) => m.type).join('')).toBe('12CEZ');
    expect(errorOf(messages[3]!)).toMatchObject({ code: '42501', message: 'jitgate: refused by rule test (function_denied)' });
    // The implicit transaction of the batch was rolled back, as an error would in PostgreSQL.
    expect((await server.query('select count(*)::int n from ledger where v = 7')).rows[0]!.n).toBe(0);
    s.socket.write(build.query('select 1'));
    expect((await s.until('Z')).map((m) => m.type).join('')).toBe('TDCZ');
    s.socket.destroy();
  });

  it("passes the backend's own errors through untouched", async () => {
    const s = await session(() => allow);
    s.socket.write(build.query('select jitgate_refused_x_0'));
    const messages = await s.until('Z');
    expect(errorOf(messages[0]!).code).toBe('42703');
    s.socket.destroy();
  });
});

describe('held statements', () => {
  it('holds a statement until decided, keeps later messages behind it, then relays in order', async () => {
    let release: ((d: Decision) => void) | undefined;
    const s = await session((st) => (st.text.includes('held') ? waitsForGateway((r) => (release = r)) : allow));
    s.socket.write(Buffer.concat([build.query("select 'held' as x"), build.query("select 'after' as x")]));
    // Both arrived in one chunk: once the first is held, the relay has dealt with the second too.
    const decide = await waitUntil('the first statement to be held', () => release);
    expect(s.messages).toEqual([]);
    const active = await server.query("select count(*)::int n from pg_stat_activity where query like 'select ''after''%'");
    expect(active.rows[0]!.n).toBe(0); // the later statement did not reach the backend early
    expect(s.messages).toEqual([]);
    decide(allow);
    const first = await s.until('Z');
    const second = await s.until('Z');
    expect(first.find((m) => m.type === 'D')!.body.toString('utf8', 6)).toBe('held');
    expect(second.find((m) => m.type === 'D')!.body.toString('utf8', 6)).toBe('after');
    s.socket.destroy();
  });

  it('a held statement that is then refused gets 42501 and the rest of the session continues', async () => {
    let release: ((d: Decision) => void) | undefined;
    const s = await session((st) => (st.text.includes('delete') ? waitsForGateway((r) => (release = r)) : allow));
    s.socket.write(Buffer.concat([build.query('delete from ledger'), build.query('select 2')]));
    const decide = await waitUntil('the delete to be held', () => release);
    decide(deny('review_denied'));
    const refused = await s.until('Z');
    expect(errorOf(refused[0]!).code).toBe('42501');
    const next = await s.until('Z');
    expect(next.map((m) => m.type).join('')).toBe('TDCZ');
    s.socket.destroy();
  });
});

describe('statements the gateway decides first and then holds for a person', () => {
  it('get the hold notice when they are held, and run once approved', async () => {
    const { script, decide } = heldAfterGatewayCheck();
    const s = await session((st) => (st.text.includes('delete') ? decide() : allow));
    s.socket.write(build.query('delete from ledger'));
    const checked = await waitUntil('the delete to wait for the gateway', () => script.checked);
    expect(s.messages).toEqual([]);
    checked();
    await waitUntil('the hold notice', () => s.messages.find((m) => m.type === 'N'));
    expect(errorOf(s.messages[0]!).message).toBe('jitgate: statement held for approval (rule "deletes")');
    script.decide!(allow);
    const answer = await s.until('Z');
    expect(answer.map((m) => m.type).join('')).toBe('NCZ');
    s.socket.destroy();
  });

  it('are withdrawn by a cancel the client sent while the gateway was still deciding', async () => {
    const { script, decide } = heldAfterGatewayCheck();
    const s = await session((st) => (st.text.includes('delete') ? decide() : allow));
    s.socket.write(build.query('delete from ledger'));
    const checked = await waitUntil('the delete to wait for the gateway', () => script.checked);
    await s.relay.clientCancel();
    expect(script.withdrawn).toBe(false);
    checked();
    const answer = await s.until('Z');
    expect(answer.map((m) => m.type).join('')).toBe('NEZ');
    expect(script.withdrawn).toBe(true);
    expect(errorOf(answer[1]!)).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
    s.socket.destroy();
  });
});

describe('result observer', () => {
  it('sees what the client is sent: columns, rows up to its cap, completion, refusals, readiness', async () => {
    const events: ResultEvent[] = [];
    let rows = 0;
    const observer: ResultObserver = {
      wantsRows: () => rows < 2,
      onResult: (e) => {
        if (e.kind === 'row') rows++;
        events.push(e);
      },
    };
    const s = await session((st) => (st.text.includes('nope') ? deny('table_denied') : allow), observer);
    s.socket.write(build.query("select g as n, 'v' || g as label, null::text as nothing from generate_series(1, 5) g"));
    await s.until('Z');
    s.socket.write(build.query('select * from nope'));
    await s.until('Z');
    expect(events[0]).toEqual({
      kind: 'columns',
      columns: [
        { name: 'n', type: 23 },
        { name: 'label', type: 25 },
        { name: 'nothing', type: 25 },
      ],
    });
    expect(events.filter((e) => e.kind === 'row')).toEqual([
      { kind: 'row', values: ['1', 'v1', null] },
      { kind: 'row', values: ['2', 'v2', null] },
    ]);
    expect(events.slice(3)).toEqual([
      { kind: 'complete', tag: 'SELECT 5' },
      { kind: 'ready' },
      { kind: 'error', severity: 'ERROR', code: '42501', message: 'jitgate: refused by rule test (table_denied)' },
      { kind: 'ready' },
    ]);
    s.socket.destroy();
  });
});
