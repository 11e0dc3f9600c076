/**
 * The access verbs through the real CLI code against a real gateway and PostgreSQL: in-process
 * (runCli) for request/requests/approve/deny/revoke/token/whoami/connections/grants, and as a child
 * process (the real entry module through tsx) for `connect`, which launches psql, and
 * `connect --tunnel`, which the pg driver uses like a GUI tool would.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { ManualClock } from '../src/core/clock.js';
import { startAccessGateway, type AccessGateway, type Person } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');

let server: PgServer;
let env: AccessGateway;
let work: string;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  server = await startPostgres();
  env = await startAccessGateway(server, { clock });
  work = mkdtempSync(join(tmpdir(), 'jitgate-access-cli-'));
});

afterAll(async () => {
  await env?.gw.close();
  await server?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function cliEnv(who: Person): NodeJS.ProcessEnv {
  // XDG_CONFIG_HOME: no saved sign-in from the machine running the tests can interfere.
  return { JITGATE_URL: env.gw.httpUrl, JITGATE_TOKEN: env.bearer(who), XDG_CONFIG_HOME: join(work, 'config') };
}

/** runCli in-process as `who`; output can be read while it runs. */
function run(who: Person, args: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env: cliEnv(who),
    cwd: work,
    now: () => Date.now(),
  };
  const done = runCli(args, io);
  return { done, out: () => out, err: () => err };
}

async function cli(who: Person, args: string[]) {
  const r = run(who, args);
  const code = await r.done;
  return { code, out: r.out(), err: r.err() };
}

describe('request, approve, deny, revoke', () => {
  it('request waits for the decision, printing each approval', async () => {
    const waiting = run('alice', ['request', 'app-md5', '--for', '30m', '--reason', 'schema check']);
    await vi.waitFor(() => expect(waiting.err(), 'the CLI to say it waits').toMatch(/waiting up to/), { timeout: 5000 });
    const id = /request ([0-9a-f]{8}) for app-md5 \(30m\) is pending: needs 2 approvals from approvers/.exec(waiting.err())?.[1];
    expect(id, waiting.err()).toBeDefined();

    const listed = await cli('carol', ['requests']);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(
      new RegExp(
        `Requests you can approve\\nID\\s+USER\\s+CONNECTION\\s+STATE\\s+FOR\\s+APPROVALS\\s+EXPIRES\\s+REASON\\n${id}\\s+alice\\s+app-md5\\s+pending\\s+30m\\s+0/2\\s+.*schema check`,
      ),
    );

    const first = await cli('carol', ['approve', id!, '--comment', 'looks fine']);
    expect(first).toMatchObject({ code: 0, out: `approved request ${id} of alice for app-md5 (1/2 approvals; more needed)\n` });
    await vi.waitFor(
      () => expect(waiting.err(), 'the CLI to report the first approval').toContain('approved by carol ("looks fine") (1 of 2)'),
      { timeout: 5000 },
    );

    const self = await cli('alice', ['approve', id!]);
    expect(self).toMatchObject({ code: 1, err: 'jitgate: nobody approves their own request\n' });
    const outsider = await cli('frank', ['approve', id!]); // dba approves app, not app-md5
    expect(outsider).toMatchObject({ code: 1, err: `jitgate: no request ${id}\n` });

    const second = await cli('dan', ['approve', id!]);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(
      new RegExp(`^approved request ${id}: alice has grant [0-9a-f]{8} on app-md5 until .* approved by carol, dan\\n$`),
    );

    expect(await waiting.done).toBe(0);
    expect(waiting.err()).toContain('approved by dan (2 of 2)');
    // (the gateway's test clock stands still while real time runs on: "in 29m5xs" is fine)
    expect(waiting.out()).toMatch(/^access granted: grant [0-9a-f]{8} on app-md5 until .*\(in (30m|29m\d+s)\), approved by carol, dan\n$/);
  });

  it('a denial ends the wait with exit 1 and the reason', async () => {
    const waiting = run('alice', ['request', 'app', '--for', '1h', '--reason', 'curious']);
    await vi.waitFor(() => expect(waiting.err(), 'the CLI to say it waits 30m').toMatch(/waiting up to 30m/), { timeout: 5000 });
    const id = /request ([0-9a-f]{8})/.exec(waiting.err())![1]!;
    expect(await cli('carol', ['deny', id])).toMatchObject({ code: 1 }); // --reason is required
    expect(await cli('carol', ['deny', id, '--reason', 'use the replica'])).toMatchObject({
      code: 0,
      out: `denied request ${id} of alice for app\n`,
    });
    expect(await waiting.done).toBe(1);
    expect(waiting.err()).toMatch(new RegExp(`jitgate: request ${id} was denied by carol: use the replica\\n$`));
  });

  it('--no-wait prints the id; the requester can withdraw; break-glass needs a reason', async () => {
    const r = await cli('alice', ['request', 'app', '--for', '15m', '--reason', 'later', '--no-wait']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(await cli('alice', ['deny', r.out.trim(), '--reason', 'not needed'])).toMatchObject({
      code: 0,
      out: `withdrew request ${r.out.slice(0, 8)} for app\n`,
    });

    expect(await cli('alice', ['request', 'app', '--break-glass'])).toMatchObject({
      code: 1,
      err: 'jitgate: --break-glass needs --reason "...": say why, it is sent to the approvers\n',
    });
    const bg = await cli('alice', ['request', 'app', '--for', '20m', '--break-glass', '--reason', 'pager: orders down']);
    expect(bg.code).toBe(0);
    expect(bg.err).toContain('BREAK-GLASS: access granted without approval; the approvers are notified');
    expect(bg.out).toMatch(/^access granted: grant [0-9a-f]{8} on app until .* BREAK-GLASS \(no approval\)\n$/);
    const tooLong = await cli('alice', ['request', 'app', '--for', '5h', '--reason', 'x']);
    expect(tooLong).toMatchObject({ code: 1, err: 'jitgate: policy "app-engineers" allows at most 4h on "app" (asked for 5h)\n' });
  });

  it('token, whoami, connections, grants and revoke', async () => {
    const granted = await cli('mallory', ['request', 'app-trust']); // no --for: 1h (the policy allows up to 8h)
    expect(granted.code, granted.err).toBe(0);
    expect(granted.out).toMatch(/until .*\(in (1h|59m\d+s)\), granted by policy trust-for-everyone\n$/);

    const t = await cli('mallory', ['token', 'app-trust']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^jg_[A-Za-z0-9_-]{43}\n$/);
    expect(t.err).toMatch(/use it as the password: psql "host=127\.0\.0\.1 port=\d+ user=mallory dbname=app-trust sslmode=require"/);
    expect(t.err).not.toContain(t.out.trim());
    const q = await psql(env.gw.dsn({ user: 'mallory', connection: 'app-trust' }), t.out.trim(), ['-At', '-c', 'select 1']);
    expect(q.stdout.trim()).toBe('1');
    expect(await cli('mallory', ['token', 'app'])).toMatchObject({
      code: 1,
      err: 'jitgate: you have no active access grant for "app": run `jitgate request app`\n',
    });

    const who = await cli('mallory', ['whoami']);
    expect(who.out).toMatch(
      new RegExp(
        `^mallory \\(human, signed in via test\\) at ${env.gw.httpUrl}\\ngroups: marketing\\ngrant [0-9a-f]{8} on app-trust until .*granted by policy trust-for-everyone\\n$`,
      ),
    );

    const conns = await cli('mallory', ['connections']);
    expect(conns.out).toMatch(
      /^NAME\s+TYPE\s+ACCESS\s+HOW TO GET IT\napp-trust\s+postgres\s+granted until .*\s+granted at once, up to 8h\n$/,
    );
    const aliceConns = await cli('alice', ['connections', '--json']);
    expect(JSON.parse(aliceConns.out).map((c: { name: string }) => c.name)).toEqual(['app', 'app-md5', 'app-trust']);

    const grants = await cli('dave', ['grants']); // an admin sees everyone's
    expect(grants.out).toMatch(/mallory\s+app-trust/);
    const grantId = /grant ([0-9a-f]{8}) on app-trust/.exec(who.out)![1]!;
    expect(await cli('alice', ['revoke', grantId])).toMatchObject({ code: 1, err: `jitgate: no grant ${grantId}\n` });
    expect(await cli('dave', ['revoke', grantId, '--reason', 'audit'])).toMatchObject({
      code: 0,
      out: `revoked grant ${grantId} of mallory on app-trust; its live sessions are ended\n`,
    });
    expect((await cli('mallory', ['whoami'])).out).toContain('grants: none active');
  });
});

describe('connect', () => {
  function child(who: Person, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
    const proc = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
      cwd: work,
      env: { ...process.env, ...cliEnv(who), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    return { proc, exited, out: () => out, err: () => err };
  }

  it('launches psql with the token in its environment, never on its command line', async () => {
    expect((await cli('bob', ['request', 'app', '--for', '1h', '--break-glass', '--reason', 'connect test'])).code).toBe(0);
    // A psql wrapper that records what psql was given, then runs the real one.
    const log = join(work, 'psql-wrapper.log');
    const wrapper = join(work, 'psql-wrapper.sh');
    writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "ARGS: $*" "PGPASSWORD: \${PGPASSWORD%%_*}_..." > '${log}'\nexec psql "$@"\n`);
    chmodSync(wrapper, 0o755);
    const c = child('bob', ['connect', 'app', '--', '-XAt', '-c', 'select current_user, current_database()'], { JITGATE_PSQL: wrapper });
    expect(await c.exited, c.err()).toBe(0);
    expect(c.out()).toBe(`${server.users.scram.user}|app\n`);
    const seen = readFileSync(log, 'utf8');
    expect(seen).toMatch(
      new RegExp(
        `^ARGS: host=127\\.0\\.0\\.1 port=${env.gw.port} user=bob dbname=app sslmode=require -XAt -c select current_user, current_database\\(\\)\\nPGPASSWORD: jg_\\.\\.\\.\\n$`,
      ),
    );
    expect(seen).not.toMatch(/jg_[A-Za-z0-9_-]{20}/);

    // psql's exit status is jitgate's.
    const failing = child('bob', ['connect', 'app', '--', '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'select * from no_such_table']);
    expect(await failing.exited).toBe(1);
    expect(failing.err()).toContain('relation "no_such_table" does not exist');
  }, 60_000);

  it('--tunnel: the pg driver connects to a local port without a password; revocation reaches it', async () => {
    expect((await cli('alice', ['request', 'app-trust', '--for', '1h'])).code).toBe(0);
    const t = child('alice', ['connect', 'app-trust', '--tunnel', '--port', '0']);
    try {
      await vi.waitFor(() => expect(t.out(), 'the tunnel to listen').toMatch(/listening on 127\.0\.0\.1:\d+\n/), {
        timeout: 30_000,
        interval: 100,
      });
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(t.out())![1]);
      const viaTunnel = () =>
        new pg.Client({ host: '127.0.0.1', port, user: 'whatever', database: 'whatever', application_name: 'gui-tool' });

      const a = viaTunnel();
      await a.connect();
      expect((await a.query('select current_user as u, current_database() as d')).rows).toEqual([{ u: server.users.trust.user, d: 'app' }]);
      const b = viaTunnel(); // a second connection reuses the cached token
      await b.connect();
      expect((await b.query({ text: 'select $1::int + 1 as n', values: [41] })).rows).toEqual([{ n: 42 }]);
      await b.end();
      expect(t.err()).not.toMatch(/jg_[A-Za-z0-9_-]{20}/);

      // Revoking alice's grant ends the tunnelled session, and new ones are refused with the reason.
      const errors: Error[] = [];
      a.on('error', (e) => errors.push(e));
      const grant = (await env.api<{ mine: Array<{ id: string; connection: string }> }>('alice', 'GET', '/api/grants')).body.mine.find(
        (g) => g.connection === 'app-trust',
      )!;
      expect((await env.api('dave', 'POST', `/api/grants/${grant.id}/revoke`, { reason: 'tunnel test' })).status).toBe(200);
      const expected = `jitgate: access grant ${grant.id.slice(0, 8)} was revoked by dave: tunnel test`;
      await vi.waitFor(() => expect(errors[0]?.message).toBe(expected), { timeout: 2000 });
      await expect(viaTunnel().connect()).rejects.toMatchObject({ code: '28000', message: expected });
    } finally {
      t.proc.kill('SIGINT');
    }
    expect(await t.exited).toBe(0);
    expect(t.err()).toContain('stopping the tunnel');
  }, 90_000);
});
