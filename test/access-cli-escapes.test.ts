/**
 * Terminal escape injection through the CLI: statement texts, request reasons and result values come
 * from clients, and a raw CR or ESC in them must reach the approver's or auditor's terminal as a
 * visible escape (`\r`, `\x1b`), never as a control character that rewrites what is on screen.
 * A real gateway and PostgreSQL, the pg driver and psql as the clients, the CLI in-process (runCli).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { ManualClock } from '../src/core/clock.js';
import { startAccessGateway, type AccessGateway, type Person } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

let server: PgServer;
let env: AccessGateway;
let work: string;
const clock = new ManualClock(Date.now());
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

beforeAll(async () => {
  server = await startPostgres();
  env = await startAccessGateway(server, {
    clock,
    extraYaml: `reviews:
  - name: trust-writes
    connections: [app-trust]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
    reason: writes are reviewed
`,
  });
  work = mkdtempSync(join(tmpdir(), 'jitgate-cli-escapes-'));
}, 120_000);

afterAll(async () => {
  await env?.gw.close();
  await server?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function cli(who: Person, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env: { JITGATE_URL: env.gw.httpUrl, JITGATE_TOKEN: env.bearer(who), XDG_CONFIG_HOME: join(work, 'config') },
    cwd: work,
    now: () => Date.now(),
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('the CLI shows control characters from clients as visible escapes', { timeout: 60_000 }, () => {
  it('jitgate requests: a held statement and a request reason with CR and ESC', async () => {
    // On a terminal, the CR and the erase-line sequence would leave only "select 1" visible.
    const sneaky = "update items set payload = 'gone' where id = 1 /*\r\x1b[2K*/ -- \x1b[1Gselect 1";
    const client = new pg.Client({
      host: env.gw.host,
      port: env.gw.port,
      user: 'alice',
      database: 'app-trust',
      password: await env.gw.token({ user: 'alice', connection: 'app-trust', groups: ['engineering'] }),
    });
    client.on('error', () => undefined);
    await client.connect();
    const held = client.query(sneaky).catch((err: Error) => err);
    const pending = await cli('alice', ['request', 'app', '--for', '15m', '--reason', 'fix\r\x1b[2Kroutine check', '--no-wait']);
    expect(pending.code, pending.err).toBe(0);

    let listed = { code: -1, out: '', err: '' };
    await vi.waitFor(
      async () => {
        listed = await cli('bob', ['requests']);
        expect(listed.out, 'the held statement in jitgate requests').toContain('Statements held for approval');
      },
      { timeout: 10_000 },
    );
    expect(listed.code).toBe(0);
    expect(listed.out).toContain("update items set payload = 'gone' where id = 1 /*\\r\\x1b[2K*/ -- \\x1b[1Gselect 1");
    expect(listed.out).toContain('fix\\r\\x1b[2Kroutine check');
    expect(listed.out).not.toMatch(RAW_CONTROL);

    // --json stays valid JSON and gives back the exact text.
    const json = await cli('bob', ['requests', '--json']);
    expect(json.out).not.toMatch(RAW_CONTROL);
    const parsed = JSON.parse(json.out) as { reviews: Array<{ statement: string }>; approvable: Array<{ reason: string }> };
    expect(parsed.reviews.map((r) => r.statement)).toContain(sneaky);
    expect(parsed.approvable.map((r) => r.reason)).toContain('fix\r\x1b[2Kroutine check');

    await client.end();
    await held;
  });

  it('jitgate replay: a result value with ESC', async () => {
    const token = await env.gw.token({ user: 'alice', connection: 'app', groups: ['engineering'] });
    const r = await psql(env.gw.dsn({ user: 'alice', connection: 'app' }), token, [
      '-At',
      '-c',
      "select E'card \\x1b[8m4111 1111 1111 1111\\x1b[0m ok' as v",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { body } = await env.api<{ sessions: Array<{ id: string }> }>('alice', 'GET', '/api/sessions?user=alice&connection=app');
    const id = body.sessions[0]!.id;
    await vi.waitFor(
      async () =>
        expect(
          (await env.api<{ session: { status: string } }>('alice', 'GET', `/api/sessions/${id}`)).body.session.status,
          'the session to end',
        ).toBe('ended'),
      { timeout: 10_000 },
    );

    const replay = await cli('alice', ['replay', '--remote', id]);
    expect(replay.code, replay.err).toBe(0);
    expect(replay.out).toContain('card \\x1b[8m4111 1111 1111 1111\\x1b[0m ok');
    expect(replay.out).not.toMatch(RAW_CONTROL);
  });
});
