/**
 * A newcomer's first run, literally as the README and the startup banner say: `jitgate serve` with no
 * configuration starts the embedded default and prints one psql line; that line works as printed;
 * reading `customers` shows masked values and the masked-columns notice; DROP TABLE is refused naming
 * the guardrail; an UPDATE is held with the NOTICE, bob signs in with `jitgate login` and approves it
 * with `jitgate approve`, and the UPDATE completes; carol, the auditor, verifies the audit chain; more tokens come from `jitgate token`, the sessions
 * show up in `jitgate sessions`, and Ctrl-C drains and exits cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { ScriptedBrowser } from './support/browser.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');
const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-quickstart-'));
const env = { ...process.env, JITGATE_PG_PORT: '0', JITGATE_HTTP_PORT: '0', JITGATE_CONFIG: '' };
/** bob's CLI sign-in lives here (the gateway's own state is under dataDir). */
const bobEnv = { ...env, XDG_CONFIG_HOME: join(dataDir, 'bob-config'), JITGATE_NO_BROWSER: '1' };

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function cli(args: string[], e: NodeJS.ProcessEnv = env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: dataDir, env: e, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run a command to its end without blocking the event loop; `onStderr` sees stderr as it arrives. */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; onStderr?: (all: string) => void } = {}) {
  const child = spawn(cmd, args, { cwd: dataDir, env: opts.env ?? env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    opts.onStderr?.(stderr);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((res) =>
    child.on('exit', (status) => {
      clearTimeout(timer);
      res({ status, stdout, stderr });
    }),
  );
}

/** `jitgate login` as the banner says, with the browser part scripted (password = user name). */
async function signIn(http: string, user: string, e: NodeJS.ProcessEnv): Promise<void> {
  let browsed: Promise<string> | undefined;
  const login = await run(process.execPath, ['--import', TSX, MAIN, 'login', '--url', http], {
    env: e,
    onStderr: (all) => {
      const m = /http\S+\/dev-idp\/auth\?\S+/.exec(all);
      if (m && !browsed) {
        browsed = (async () => {
          const browser = new ScriptedBrowser();
          const page = await browser.open(m[0]);
          return (await browser.submit(page, { username: user, password: user })).html;
        })();
      }
    },
  });
  expect(login.status, login.stderr).toBe(0);
  expect(await browsed).toContain('Signed in');
}

it('tells the demo story from the printed one-liner: masking, a refused DROP, a held UPDATE that bob approves', async () => {
  const gateway = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--data-dir', dataDir], {
    cwd: dataDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  gateway.stdout.on('data', (d) => (out += d));
  gateway.stderr.on('data', () => undefined);
  const exited = new Promise<number | null>((r) => gateway.on('exit', (code) => r(code)));
  try {
    await expect.poll(() => out, { timeout: 90_000, interval: 100 }).toMatch(/Ctrl-C stops the gateway/);
    // The banner: the line to paste stands alone, and every demo user is named with their part.
    const line = out.split('\n').find((l) => l.includes('psql "postgresql:'));
    // psql verifies the gateway against the certificate it generated, not just any TLS server.
    const caFile = join(resolve(dataDir), 'tls', 'gateway.crt');
    expect(line, out).toMatch(
      /^PGPASSWORD=jg_\S+ psql "postgresql:\/\/erin@127\.0\.0\.1:\d+\/demo\?sslmode=verify-full&sslrootcert=(\S+)"$/,
    );
    expect(decodeURIComponent(/sslrootcert=([^"]+)"/.exec(line!)![1]!)).toBe(caFile);
    expect(out).toMatch(/Connect with psql as erin \(on-call engineer, access granted at once by policy demo-oncall/);
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) expect(out).toMatch(new RegExp(`^    ${u} `, 'm'));
    expect(out).not.toMatch(/"level":/); // machine logs stay out of the banner
    const http = /Web console {2}(http:\/\/\S+?)\/ /.exec(out)![1]!;

    const psql = (sql: string) => run('bash', ['-c', `${line} -X -c "${sql}"`]);

    const read = await psql('SELECT email, phone, card_number, password_hash FROM customers ORDER BY id LIMIT 2');
    expect(read.stderr).toMatch(
      /NOTICE: {2}jitgate: masked columns: email \(rule customer-pii.*phone .*card_number .*password_hash \(rule customer-pii/,
    );
    expect(read.stdout).toMatch(/\*+@/); // email: shape and domain kept
    expect(read.stdout).toContain('[redacted]'); // card number
    expect(read.stdout).toMatch(/h:[0-9a-f]{16}/); // password hash: keyed hash
    expect(read.stdout).not.toMatch(/\$2[ab]\$/);

    const drop = await psql('DROP TABLE orders');
    expect(drop.status).not.toBe(0);
    expect(drop.stderr).toMatch(/ERROR: .*no-destructive/);

    // The UPDATE is held: psql waits while the NOTICE says who approves and how.
    let reviewId: string | undefined;
    const updateDone = run('bash', ['-c', `${line} -X -c "UPDATE orders SET status = 'paid' WHERE id = 1"`], {
      onStderr: (all) => (reviewId ??= /jitgate approve ([0-9a-f]{8})/.exec(all)?.[1]),
    });
    await expect.poll(() => reviewId, { timeout: 30_000, interval: 100 }).toMatch(/^[0-9a-f]{8}$/);

    // bob signs in as the banner says (the browser part scripted), and approves with the CLI.
    await signIn(http, 'bob', bobEnv);
    const approved = cli(['approve', reviewId!, '--comment', 'fine'], bobEnv);
    expect(approved.status, approved.stderr + approved.stdout).toBe(0);
    const done = await updateDone;
    expect(done.stderr).toMatch(/NOTICE: .*reviewed-writes/);
    expect(done.stderr).toMatch(new RegExp(`${http}/reviews/${reviewId}[0-9a-f-]{28}`));
    expect(done.stdout).toContain('UPDATE 1');

    // carol's part: the auditor role, so the console's "Verifying the chain…" completes.
    const carolEnv = { ...bobEnv, XDG_CONFIG_HOME: join(dataDir, 'carol-config') };
    await signIn(http, 'carol', carolEnv);
    const carol = JSON.parse(readFileSync(join(carolEnv.XDG_CONFIG_HOME, 'jitgate', 'credentials.json'), 'utf8')) as {
      accessToken: string;
    };
    const verified = await fetch(`${http}/api/audit/verify`, { headers: { authorization: `Bearer ${carol.accessToken}` } });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({ ok: true });

    // `jitgate ca` hands any client the same certificate; `jitgate token` then offers verify-full.
    const ca = cli(['ca', '--url', http]);
    expect(ca.status, ca.stderr).toBe(0);
    expect(ca.stdout.trim()).toBe(readFileSync(caFile, 'utf8').trim());
    expect(ca.stderr).toMatch(/SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    const saved = cli(['ca', '--save'], bobEnv);
    expect(saved.status, saved.stderr).toBe(0);
    expect(readFileSync(saved.stdout.trim(), 'utf8')).toBe(readFileSync(caFile, 'utf8'));

    const minted = cli(['token', '--data-dir', dataDir, '--user', 'bob', '--connection', 'demo', '--ttl', '5m']);
    expect(minted.status, minted.stderr).toBe(0);
    const token = minted.stdout.trim();
    expect(token).toMatch(/^jg_/);
    // bob now holds a grant (admin-issued): his own token's hint verifies with the saved certificate.
    const bobToken = cli(['token', 'demo'], bobEnv);
    expect(bobToken.status, bobToken.stderr).toBe(0);
    expect(bobToken.stderr).toContain(`sslmode=verify-full sslrootcert=${saved.stdout.trim()}"`);
    const url = line!.match(/"(postgresql:[^"]+)"/)![1]!.replace('erin@', 'bob@');
    const second = spawnSync('psql', [url, '-XAt', '-c', 'select current_database()'], {
      env: { ...process.env, PGPASSWORD: token },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(second.stderr).toBe('');

    const listed = cli(['sessions', '--data-dir', dataDir, '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    const sessions = JSON.parse(listed.stdout) as Array<{ user: string; connection: string; endReason: string }>;
    expect([...new Set(sessions.map((s) => s.user))].sort()).toEqual(['bob', 'erin']);
    expect(sessions.every((s) => s.connection === 'demo')).toBe(true);
  } finally {
    gateway.kill('SIGINT');
  }
  expect(await exited).toBe(0);
}, 240_000);
