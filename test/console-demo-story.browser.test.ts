/**
 * The README's demo story, literally, in Chromium against `jitgate serve` with no configuration (the
 * embedded default): alice requests access in the console, bob approves it, alice's psql (the
 * command the console shows, verifying the gateway's certificate) sees masked data, a refused DROP
 * and a held UPDATE that bob approves in the browser; carol, the auditor, watches the session's
 * replay and verifies the audit chain; dave, the admin, revokes alice's grant from the Grants page.
 *
 * Every page is photographed at desktop and phone width (test-artifacts/demo-story/) and checked
 * with axe-core: no serious or critical accessibility violation on any of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seriousAccessibilityProblems } from './support/axe.js';
import { waitUntil } from './support/wait.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'demo-story');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-demo-story-'));
/** Where alice runs psql: the gateway's certificate is saved here, as the console says. */
const workDir = join(dataDir, 'alice');
const env = { ...process.env, JITGATE_PG_PORT: '0', JITGATE_HTTP_PORT: '0', JITGATE_CONFIG: '' };

let gateway: ChildProcess;
let exited: Promise<number | null>;
let browser: Browser;
let base = '';
/** What axe found serious or worse, by page: expected to stay empty. */
const violations: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(workDir, { recursive: true });
  gateway = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--data-dir', dataDir], {
    cwd: dataDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  gateway.stdout!.on('data', (d) => (out += d));
  // The gateway's own log, kept beside the screenshots for whoever reads a failure.
  const log = createWriteStream(join(ARTIFACTS, 'gateway.log'));
  gateway.stderr!.pipe(log);
  exited = new Promise((r) => gateway.on('exit', (code) => r(code)));
  base = await waitUntil(
    'the startup banner',
    () => /Ctrl-C stops the gateway/.test(out) && /Web console {2}(http:\/\/\S+?)\/ /.exec(out)![1],
    {
      timeoutMs: 90_000,
      intervalMs: 100,
      seen: () => out,
    },
  );
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGINT');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function signIn(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.locator('button[type=submit]', { hasText: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000, message: `${user} signed in` }).toBe(user);
  return page;
}

/** Opens a console page through its navigation link, as a person would. */
async function open(page: Page, link: string, heading: RegExp): Promise<void> {
  await page.getByRole('navigation').getByRole('link', { name: link, exact: true }).click();
  await expect.poll(() => page.locator('main h1').first().textContent(), { message: `the ${link} page` }).toMatch(heading);
}

/**
 * The page as it is now, at desktop and phone width: screenshots kept as artifacts, and axe's
 * serious and critical violations collected (the test fails on any at the end).
 */
async function record(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}-desktop.png`), fullPage: true });
  await checkAccessibility(page, name);
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-phone.png`), fullPage: true });
  // At phone width the page itself never scrolls sideways (wide tables scroll in their own box).
  const overflow = await page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth);
  expect(overflow, `${name}: the page scrolls sideways at phone width`).toBeLessThanOrEqual(0);
  await page.setViewportSize(DESKTOP);
}

async function checkAccessibility(page: Page, name: string): Promise<void> {
  for (const problem of await seriousAccessibilityProblems(page, 'html')) violations.push(`${name}: ${problem}`);
}

/**
 * psql as alice, with exactly the command her console shows, from where she saved the certificate:
 * the statements go in on stdin, one session, as if typed.
 */
function psql(command: string, token: string, statements: string[]) {
  const child = spawn('bash', ['-c', `${command} -X`], { cwd: workDir, env: { ...process.env, PGPASSWORD: token } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(statements.join('\n') + '\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((res) =>
    child.on('exit', (status) => {
      clearTimeout(timer);
      res({ status, stdout, stderr });
    }),
  );
  return { done, stderr: () => stderr };
}

it(
  'alice asks, bob approves, psql shows masking, a refused DROP and a held UPDATE; carol replays and verifies; dave revokes',
  { timeout: 300_000 },
  async () => {
    // A newcomer's first page.
    const anonymous = await browser.newContext({ viewport: DESKTOP });
    const signInPage = await anonymous.newPage();
    await signInPage.goto(`${base}/`);
    await expect.poll(() => signInPage.getByRole('link', { name: 'Sign in' }).count()).toBe(1);
    await record(signInPage, '00-sign-in');
    await anonymous.close();

    // alice has no access until she asks.
    const alice = await signIn('alice');
    const card = alice.getByTestId('connection-demo');
    await expect.poll(() => card.getByTestId('access-state').textContent()).toContain('No access');
    await record(alice, '01-alice-my-access');
    await card.getByLabel('Duration').selectOption('1h');
    await card.getByLabel('Reason').fill('INC-7: a customer asks about an order');
    await card.getByRole('button', { name: 'Request access' }).click();
    await expect.poll(() => card.getByTestId('access-state').textContent()).toContain('Pending approval');
    await open(alice, 'Connections', /Connections/);
    await record(alice, '02-alice-connections');
    await open(alice, 'My access', /My access/);

    // bob lands on the overview: alice's request is what needs him now.
    const bob = await signIn('bob');
    await expect.poll(() => bob.locator('main h1').first().textContent()).toMatch(/Overview/);
    await expect.poll(() => bob.locator('main').textContent(), { message: "alice's request on bob's overview" }).toContain('INC-7');
    // The activity charts load on their own; the picture (and axe) should see them.
    await expect.poll(() => bob.locator('main .charts').count(), { timeout: 20_000, message: 'the overview charts' }).toBe(1);
    await record(bob, '03-bob-overview');
    await open(bob, 'Approvals', /Approvals/);
    const request = bob.locator('article', { hasText: 'INC-7' });
    await expect.poll(() => request.count()).toBe(1);
    await record(bob, '04-bob-approvals-request');
    await request.getByRole('textbox').fill('ok for INC-7');
    await request.getByRole('button', { name: /^Approve/ }).click();

    // alice's page turns to granted by itself; she saves the certificate and takes a fresh token.
    await expect.poll(() => card.getByTestId('access-state').textContent(), { timeout: 20_000 }).toContain('Granted until');
    await expect.poll(() => card.getByTestId('psql-command').textContent()).toMatch(/^psql /);
    const command = (await card.getByTestId('psql-command').textContent())!;
    expect(command).toMatch(/^psql "host=\S+ port=\d+ dbname=demo user=alice sslmode=verify-full sslrootcert=jitgate-ca.pem"$/);
    const caHref = await card.getByTestId('ca-hint').getByRole('link', { name: 'jitgate-ca.pem' }).getAttribute('href');
    writeFileSync(join(workDir, 'jitgate-ca.pem'), await (await fetch(new URL(caHref!, base))).text());
    await card.getByRole('button', { name: 'Copy a fresh token' }).click();
    await expect.poll(() => card.getByRole('status').textContent()).toContain('in your clipboard');
    const token = await alice.evaluate(() => navigator.clipboard.readText());
    await record(alice, '05-alice-granted');

    // The README's "then try, in that psql", in one session: masked customers (with the notice naming
    // the masked columns), DROP TABLE refused by its guardrail, and an UPDATE held for an approver.
    const session = psql(command, token, [
      'SELECT email, card_number, password_hash FROM customers ORDER BY id LIMIT 2;',
      'DROP TABLE orders;',
      "UPDATE orders SET status = 'paid' WHERE id = 1;",
    ]);
    await expect
      .poll(() => session.stderr(), { timeout: 60_000, message: 'the NOTICE that the UPDATE is held' })
      .toMatch(/reviewed-writes/);
    const held = bob.locator('article', { hasText: 'Held statement' });
    await expect.poll(() => held.count(), { timeout: 30_000, message: "the held UPDATE on bob's Approvals page" }).toBe(1);
    expect(await held.textContent()).toContain("UPDATE orders SET status = 'paid' WHERE id = 1");
    await record(bob, '06-bob-approvals-held');
    await held.getByRole('textbox').fill('one order, fine');
    await held.getByRole('button', { name: /^Approve/ }).click();
    const done = await session.done;
    expect(done.status, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/jitgate: masked columns: email \(rule customer-pii/);
    expect(done.stdout).toMatch(/\*+@/);
    expect(done.stdout).toContain('[redacted]');
    expect(done.stdout).not.toMatch(/\$2[ab]\$/);
    expect(done.stdout).toContain('(2 rows)');
    expect(done.stderr).toMatch(/ERROR: .*no-destructive/);
    expect(done.stdout).toContain('UPDATE 1');

    // carol, the auditor: alice's session, its replay, and the audit chain.
    const carol = await signIn('carol');
    await expect.poll(() => carol.locator('main .charts').count(), { timeout: 20_000, message: "carol's overview charts" }).toBe(1);
    await record(carol, '07-carol-overview');
    await open(carol, 'Sessions', /Sessions/);
    await expect.poll(() => carol.locator('main').textContent(), { timeout: 20_000 }).toContain('alice');
    await record(carol, '08-carol-sessions');
    await carol.locator('tr', { hasText: 'alice' }).first().locator('a').first().click();
    await expect.poll(() => carol.locator('main h1').first().textContent()).toMatch(/^Session [0-9a-f-]{36}$/);
    await expect.poll(() => carol.getByTestId('timeline').textContent(), { timeout: 20_000 }).toContain('DROP TABLE orders');
    await record(carol, '09-carol-session-replay');
    await open(carol, 'Audit', /Audit/);
    await expect
      .poll(() => carol.getByTestId('chain-status').textContent(), { timeout: 30_000, message: 'the audit chain verified' })
      .toMatch(/Chain intact: \d+ entries/);
    await record(carol, '10-carol-audit');

    // dave, the admin, revokes alice's grant from the Grants page; her token stops working.
    const dave = await signIn('dave');
    await open(dave, 'Grants', /Grants/);
    const row = dave.locator('tr', { hasText: 'alice' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    await record(dave, '11-dave-grants');
    await row.getByRole('button', { name: "Revoke alice's grant on demo" }).click();
    const dialog = dave.getByRole('dialog');
    await dialog.getByRole('textbox').fill('INC-7 closed');
    await dialog.getByRole('button', { name: 'Revoke grant' }).click();
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(0);
    const after = await psql(command, token, ['SELECT 1;']).done;
    expect(after.status).not.toBe(0);
    expect(after.stderr).toMatch(/FATAL/);
    await expect.poll(() => card.getByTestId('access-state').textContent(), { timeout: 20_000 }).toContain('No access');
    await open(dave, 'Configuration', /Configuration/);
    await record(dave, '12-dave-configuration');

    expect(violations, violations.join('\n')).toEqual([]);
  },
);
