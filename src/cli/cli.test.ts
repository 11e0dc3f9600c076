/**
 * The CLI, twice: the real entry module (src/cli/main.ts) as a child process through tsx, the way a
 * user runs it, and runCli in-process for the finer cases.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { TokenAuthority } from '../access/tokens.js';
import { SecretStore } from '../credentials/secret-store.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { CliIo } from './io.js';
import { runCli } from './program.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
// tsx is resolved from the repository, not from each test's temporary working directory.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MASTER_KEY = randomBytes(32).toString('base64');
const work = mkdtempSync(join(tmpdir(), 'jitgate-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const GOOD = `development: true
dataDir: state
connections:
  - name: prod
    host: db.example.com
    database: app
    user: gw
    password: secret:prod-db
`;
const BAD = `connections:
  - name: prod
    host: db.example.com
    port: abc
    database: app
    user: gw
    password: hunter2
`;

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(work, 'case-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function jitgate(args: string[], opts: { cwd: string; input?: string; env?: Record<string, string> }) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env.JITGATE_CONFIG;
  if (!opts.env?.JITGATE_MASTER_KEY) delete env.JITGATE_MASTER_KEY;
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: opts.cwd,
    env,
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the jitgate binary', { timeout: 180_000 }, () => {
  it('config check: ok and a summary for a good file', async () => {
    const dir = dirWith({ 'good.yaml': GOOD });
    const r = jitgate(['config', 'check', '--config', 'good.yaml'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `ok: good.yaml, development mode, 1 connection (prod), postgres on 127.0.0.1:5433, http on 127.0.0.1:8080, ` +
        `TLS optional, auth scram-sha-256, tokens 15m, store ${join(dir, 'state', 'jitgate.db')}\n`,
    );
  });

  it('config check: every problem with its position and exit 1 for a bad file', async () => {
    const dir = dirWith({ 'jitgate.yaml': BAD });
    const r = jitgate(['config', 'check'], { cwd: dir }); // found as ./jitgate.yaml
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'jitgate.yaml:4:11: connections[0].port: expected an integer between 1 and 65535, got "abc"\n' +
        'jitgate.yaml:7:15: connections[0].password: a plain password is not allowed in the config; use a secret ' +
        'reference instead: env:NAME, file:PATH, or secret:NAME after storing it with `jitgate secrets set NAME`\n',
    );
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  it('token and secrets: a round trip through the store named in the config', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD });
    const env = { JITGATE_MASTER_KEY: MASTER_KEY };

    const set = jitgate(['secrets', 'set', 'prod-db'], { cwd: dir, env, input: 'backend-pass\n' });
    expect(set).toMatchObject({ code: 0, stdout: 'secret prod-db stored\n' });
    expect(set.stderr).not.toContain('backend-pass');

    const token = jitgate(['token', '--user', 'alice', '--connection', 'prod', '--ttl', '10m', '--groups', 'engineering'], { cwd: dir });
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^jg_[A-Za-z0-9_-]{43}\n$/);
    expect(token.stderr).toMatch(/for alice on prod expires .* in 10m\)/);
    expect(token.stderr).not.toContain(token.stdout.trim());

    const store = openSqliteStore(join(dir, 'state', 'jitgate.db'));
    try {
      const secrets = new SecretStore(store, { env: { JITGATE_MASTER_KEY: MASTER_KEY } });
      expect(await secrets.get('prod-db')).toBe('backend-pass');
      const authority = new TokenAuthority(store);
      const now = Date.now();
      expect(await authority.verifyCleartext('alice', 'prod', token.stdout.trim(), now)).toBeDefined();
      expect(await authority.verifyCleartext('alice', 'prod', token.stdout.trim(), now + 11 * 60_000)).toBeUndefined();
    } finally {
      void store.close();
    }

    // The rest in-process, against the same store (each child process costs seconds under tsx).
    const list = capture(dir);
    expect(await runCli(['secrets', 'list'], list.io)).toBe(0);
    expect(list.out()).toMatch(/^NAME\s+UPDATED\nprod-db\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
    const rm = capture(dir);
    expect(await runCli(['secrets', 'rm', 'prod-db'], rm.io)).toBe(0);
    expect(rm.out()).toBe('secret prod-db removed\n');
    const again = capture(dir);
    expect(await runCli(['secrets', 'rm', 'prod-db'], again.io)).toBe(1);
    expect(again.err()).toBe('jitgate: no secret named prod-db\n');
  });

  it('refuses an unknown connection and a secret value on the command line', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD });
    const r = jitgate(['token', '--user', 'alice', '--connection', 'nope'], { cwd: dir });
    expect(r).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'jitgate: unknown connection "nope" in jitgate.yaml (configured: prod)\n',
    });
    const s = jitgate(['secrets', 'set', 'x', 'the-value'], { cwd: dir, env: { JITGATE_MASTER_KEY: MASTER_KEY } });
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/^jitgate: secret values are read from standard input, never from the command line/);
  });
});

// ---------------------------------------------------------------------------------------------

interface Captured {
  io: CliIo;
  out: () => string;
  err: () => string;
}

function capture(cwd: string, opts: { env?: NodeJS.ProcessEnv; stdin?: string; now?: number } = {}): Captured {
  let out = '';
  let err = '';
  return {
    io: {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
      stdin: Readable.from(opts.stdin !== undefined ? [Buffer.from(opts.stdin)] : []),
      env: opts.env ?? {},
      cwd,
      now: () => opts.now ?? Date.now(),
    },
    out: () => out,
    err: () => err,
  };
}

describe('runCli in-process', () => {
  it('finds the config: --config, then JITGATE_CONFIG, then ./jitgate.yaml, else the embedded .data', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD, 'other.yaml': GOOD.replace('dataDir: state', 'dataDir: other-state') });
    const storeOf = async (args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir) => {
      const c = capture(cwd, { env });
      expect(await runCli(['sessions', '--json', ...args], c.io)).toBe(0);
      return c;
    };
    await storeOf([]);
    await storeOf(['--config', 'other.yaml']);
    const empty = mkdtempSync(join(work, 'empty-'));
    await storeOf([], {}, empty);
    await storeOf([], { JITGATE_CONFIG: join(dir, 'other.yaml') }, mkdtempSync(join(work, 'env-')));
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(dir, 'state', 'jitgate.db'))).toBe(true);
    expect(existsSync(join(dir, 'other-state', 'jitgate.db'))).toBe(true);
    expect(existsSync(join(empty, '.data', 'jitgate.db'))).toBe(true);

    const noFile = capture(empty);
    expect(await runCli(['config', 'check'], noFile.io)).toBe(1);
    expect(noFile.err()).toMatch(/^jitgate: no config file to check: pass --config FILE/);
  });

  it('sessions: a table with filters, and JSON', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD });
    mkdirSync(join(dir, 'state'));
    const store = openSqliteStore(join(dir, 'state', 'jitgate.db'));
    const t0 = 1_700_000_000_000;
    const base = { protocol: 'postgres', clientAddress: '10.0.0.5:50123', applicationName: 'psql' };
    await store.startSession({ ...base, id: 's-alice', user: 'alice', connection: 'prod', startedAt: t0 });
    await store.startSession({
      ...base,
      id: 's-bob',
      user: 'bob',
      connection: 'prod',
      startedAt: t0 + 1000,
      instanceId: '5f0e2a9c-7d1b-4c3e-9a8f-0123456789ab',
    });
    await store.endSession('s-alice', t0 + 133_000, 'client_quit', {
      bytesFromClient: 2048,
      bytesToClient: 3 * 1024 * 1024,
      statements: 12,
    });
    void store.close();

    const all = capture(dir, { now: t0 + 61_000 });
    expect(await runCli(['sessions'], all.io)).toBe(0);
    const lines = all.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+CONNECTION\s+CLIENT\s+STARTED\s+DURATION\s+STATUS\s+INSTANCE\s+STMTS\s+IN\s+OUT$/);
    expect(lines[1]).toMatch(/^s-bob\s+bob\s+prod\s+10\.0\.0\.5:50123\s+\S+ \S+\s+1m\s+active\s+5f0e2a9c\s+0\s+0B\s+0B$/);
    expect(lines[2]).toMatch(/^s-alice\s+alice\s+prod\s+10\.0\.0\.5:50123\s+\S+ \S+\s+2m13s\s+client_quit\s+-\s+12\s+2\.0KiB\s+3\.0MiB$/);

    const active = capture(dir);
    expect(await runCli(['sessions', '--active'], active.io)).toBe(0);
    expect(active.out()).toContain('s-bob');
    expect(active.out()).not.toContain('s-alice');

    const json = capture(dir);
    expect(await runCli(['sessions', '--json', '--user', 'alice'], json.io)).toBe(0);
    expect(JSON.parse(json.out())).toEqual([
      expect.objectContaining({
        id: 's-alice',
        endReason: 'client_quit',
        startedAt: new Date(t0).toISOString(),
        statements: 12,
        instanceId: null,
      }),
    ]);

    const none = capture(dir);
    expect(await runCli(['sessions', '--connection', 'staging'], none.io)).toBe(0);
    expect(none.out()).toBe('');
    expect(none.err()).toBe('no sessions\n');

    const badLimit = capture(dir);
    expect(await runCli(['sessions', '--limit', 'x'], badLimit.io)).toBe(1);
    expect(badLimit.err()).toBe('jitgate: --limit: expected a positive integer, got "x"\n');
  });

  it('token: validates --ttl and uses the config default', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD.replace('development: true', 'development: true\nauth: { tokenTtl: 1h }') });
    const t0 = 1_700_000_000_000;
    const c = capture(dir, { now: t0 });
    // alice never signed in to this gateway: her groups are unknown, so the admin must state them.
    const unknown = capture(dir, { now: t0 });
    expect(await runCli(['token', '-u', 'alice', '--connection', 'prod'], unknown.io)).toBe(1);
    expect(unknown.err()).toMatch(
      /^jitgate: the gateway has no sign-in on record for "alice", so their groups .* are unknown: state them with --groups/,
    );
    expect(unknown.out()).toBe('');
    expect(await runCli(['token', '-u', 'alice', '--connection', 'prod', '--groups', 'engineering'], c.io)).toBe(0);
    expect(c.err()).toContain(`(${new Date(t0 + 3_600_000).toISOString()}, in 1h)`);
    expect(c.err()).toContain('groups: engineering (stated on the command line, recorded in the audit log)');
    for (const [ttl, message] of [
      ['soon', '--ttl: expected a duration such as 30s, 15m or 1h, got "soon"'],
      ['25h', '--ttl: must be at most 1d'],
      ['10ms', '--ttl: must be at least 1s'],
    ]) {
      const bad = capture(dir);
      expect(await runCli(['token', '-u', 'alice', '--connection', 'prod', '--ttl', ttl!, '--groups', 'engineering'], bad.io)).toBe(1);
      expect(bad.err()).toBe(`jitgate: ${message}\n`);
      expect(bad.out()).toBe('');
    }
    // Without --user the token comes from the API as the signed-in user, and nobody is signed in here.
    const missing = capture(dir, { env: { XDG_CONFIG_HOME: join(dir, 'no-sign-in') } });
    expect(await runCli(['token', '--connection', 'prod'], missing.io)).toBe(1);
    expect(missing.err()).toMatch(/^jitgate: not signed in/);
  });

  it("token: the hint names the connection's own listener and client, at its configured port", async () => {
    const yaml = `development: true
dataDir: state
listeners:
  postgres: { port: 6543 }
  mysql: { port: 4407 }
connections:
  - { name: prod, host: db.example.com, database: app, user: gw, password: secret:prod-db }
  - { name: shop, type: mysql, host: db.example.com, database: shop, user: gw, password: secret:shop-db }
`;
    const dir = dirWith({ 'jitgate.yaml': yaml });
    const pgHint = capture(dir);
    expect(await runCli(['token', '-u', 'alice', '--connection', 'prod', '--groups', 'engineering'], pgHint.io)).toBe(0);
    expect(pgHint.err()).toContain('psql "host=127.0.0.1 port=6543 user=alice dbname=prod sslmode=require"');
    const myHint = capture(dir);
    expect(await runCli(['token', '-u', 'alice', '--connection', 'shop', '--groups', 'engineering'], myHint.io)).toBe(0);
    expect(myHint.err()).toContain('mysql -h 127.0.0.1 -P 4407 -u alice -p --ssl shop');
    expect(myHint.err()).not.toContain('psql');
  });

  it('token without a config file: the embedded default, its connections and its .data store', async () => {
    const dir = mkdtempSync(join(work, 'embedded-'));
    const bad = capture(dir);
    expect(await runCli(['token', '-u', 'alice', '--connection', 'nope'], bad.io)).toBe(1);
    expect(bad.err()).toBe('jitgate: unknown connection "nope" in the embedded default (it has: demo)\n');
    const ok = capture(dir);
    expect(await runCli(['token', '-u', 'alice', '--connection', 'demo'], ok.io)).toBe(0);
    expect(ok.err()).toContain('psql "host=127.0.0.1 port=5433 user=alice dbname=demo sslmode=require"');
    // The embedded default's development identity provider knows its users' groups.
    expect(ok.err()).toContain("groups: engineering (from the development identity provider's users)");
    const store = openSqliteStore(join(dir, '.data', 'jitgate.db'));
    expect(await new TokenAuthority(store).verifyCleartext('alice', 'demo', ok.out().trim(), Date.now())).toBeDefined();
    void store.close();
  });

  it('secrets: a missing or wrong master key is a one-line error, before any value is read', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD });
    const noKey = capture(dir, { stdin: 'v' });
    expect(await runCli(['secrets', 'set', 'a'], noKey.io)).toBe(1);
    expect(noKey.err()).toMatch(/^jitgate: JITGATE_MASTER_KEY is not set: .*\n$/);

    const ok = capture(dir, { stdin: 'v', env: { JITGATE_MASTER_KEY: MASTER_KEY } });
    expect(await runCli(['secrets', 'set', 'a'], ok.io)).toBe(0);

    const wrong = capture(dir, { stdin: 'w', env: { JITGATE_MASTER_KEY: randomBytes(32).toString('hex') } });
    expect(await runCli(['secrets', 'set', 'b'], wrong.io)).toBe(1);
    expect(wrong.err()).toBe('jitgate: JITGATE_MASTER_KEY is not the key the existing secrets were encrypted with\n');

    const empty = capture(dir, { stdin: '', env: { JITGATE_MASTER_KEY: MASTER_KEY } });
    expect(await runCli(['secrets', 'set', 'c'], empty.io)).toBe(1);
    expect(empty.err()).toMatch(/^jitgate: no value on standard input/);

    const badName = capture(dir, { stdin: 'v', env: { JITGATE_MASTER_KEY: MASTER_KEY } });
    expect(await runCli(['secrets', 'set', 'bad name'], badName.io)).toBe(1);
    expect(badName.err()).toMatch(/^jitgate: invalid secret name "bad name"/);

    const json = capture(dir);
    expect(await runCli(['secrets', 'list', '--json'], json.io)).toBe(0);
    expect(JSON.parse(json.out())).toEqual([{ name: 'a', updatedAt: expect.any(String) }]);
  });

  it('secrets set on a terminal: asks twice without echo, in raw mode', async () => {
    const dir = dirWith({ 'jitgate.yaml': GOOD });
    const run = async (first: string, second: string) => {
      const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: vi.fn() });
      const c = capture(dir, { env: { JITGATE_MASTER_KEY: MASTER_KEY } });
      let err = '';
      c.io.stdin = stdin;
      c.io.err = (t) => {
        err += t;
        // type each answer only once its prompt is shown, as a person would
        if (t.startsWith('Value for secret')) stdin.write(first);
        if (t.startsWith('Repeat')) stdin.write(second);
      };
      const code = await runCli(['secrets', 'set', 'tty-secret'], c.io);
      return { code, err, out: c.out(), rawMode: stdin.setRawMode.mock.calls.map((x) => x[0]) };
    };

    const ok = await run('px\u007fa\u007f\u007fpass\r', 'pass\r'); // with backspaces
    expect(ok).toMatchObject({ code: 0, out: 'secret tty-secret stored\n', rawMode: [true, false, true, false] });
    expect(ok.err).toBe('Value for secret tty-secret: \nRepeat the value: \n');
    const store = openSqliteStore(join(dir, 'state', 'jitgate.db'));
    expect(await new SecretStore(store, { env: { JITGATE_MASTER_KEY: MASTER_KEY } }).get('tty-secret')).toBe('pass');
    void store.close();

    const differ = await run('one\r', 'two\r');
    expect(differ.code).toBe(1);
    expect(differ.err).toContain('jitgate: the two values differ; nothing stored\n');
    const cancelled = await run('abc\u0003', '');
    expect(cancelled.code).toBe(1);
    expect(cancelled.err).toContain('jitgate: cancelled; nothing stored\n');
    expect(cancelled.rawMode).toEqual([true, false]);
  });

  it('unknown commands and options exit 1; --help exits 0', async () => {
    const dir = dirWith({});
    const unknown = capture(dir);
    expect(await runCli(['frobnicate'], unknown.io)).toBe(1);
    expect(unknown.err()).toContain("unknown command 'frobnicate'");
    const help = capture(dir);
    expect(await runCli(['--help'], help.io)).toBe(0);
    expect(help.out()).toContain('Usage: jitgate');
    expect(help.out()).toMatch(/serve.*\n[\s\S]*token/);
  });
});
