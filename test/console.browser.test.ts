/**
 * The web console in a real browser (Debian's chromium driven by playwright-core) against a real
 * gateway with the development IdP and a real PostgreSQL, the everyday loop end to end:
 *   alice signs in and requests access; bob, signed in in a second browser context, sees the request
 *   arrive without reloading and approves it; alice's page turns to granted, she copies a fresh token
 *   and psql connects with the command the page shows; her query is held for review, bob approves it
 *   in the browser and the result arrives in psql (masked); the session page replays it all.
 * Screenshots of the main pages go to test-artifacts/console/ (gitignored).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'console');
const CLEAR_EMAIL = 'ada.lovelace@example.com';

let server: PgServer;
let gw: TestGateway;
let browser: Browser;
let base = '';

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startPostgres();
  await server.query(`create table customers (id int primary key, name text, email text);
    insert into customers values (1, 'Ada', '${CLEAR_EMAIL}');
    grant select on customers to public`);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers, admins], maxDuration: 4h }
reviews:
  - name: customer-reads
    connections: [app]
    match: { tables: [customers] }
    approval: { approvers: [approvers], timeout: 5m }
    reason: customer data is reviewed
masking:
  rules:
    - name: pii
      connections: [app]
      columns: { customers.email: email }
audit:
  auditors: [auditors]
`,
    configure: (config) => {
      config.identities = demoIdentities(DEMO_USERS);
    },
  });
  base = gw.httpUrl;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await server?.cleanup();
});

async function signIn(user: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.locator('button[type=submit]', { hasText: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe(user);
  return { context, page };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

it(
  'request, live approval, psql with the shown command, a held query approved in the browser, and the replay',
  { timeout: 180_000 },
  async () => {
    // The sign-in page first, as a newcomer sees it.
    const anonymous = await browser.newContext();
    const signInPage = await anonymous.newPage();
    await signInPage.goto(`${base}/`);
    await expect.poll(() => signInPage.getByRole('link', { name: 'Sign in' }).count()).toBe(1);
    await shot(signInPage, '01-sign-in');
    await anonymous.close();

    const bob = await signIn('bob');
    // The first Tab stop skips the navigation.
    await bob.page.keyboard.press('Tab');
    expect(await bob.page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await bob.page.getByRole('link', { name: 'Approvals' }).click();
    await expect.poll(() => bob.page.getByText('Nothing is waiting for you').count()).toBe(1);

    // alice asks for access.
    const alice = await signIn('alice');
    const card = alice.page.getByTestId('connection-app');
    await expect.poll(() => card.getByTestId('access-state').textContent()).toContain('No access');
    await card.getByLabel('Duration').selectOption('2h');
    await card.getByLabel('Reason').fill('INC-42: check a customer record');
    await card.getByRole('button', { name: 'Request access' }).click();
    await expect.poll(() => card.getByTestId('access-state').textContent()).toContain('Pending approval');

    // bob sees it arrive without reloading, with who, what and why, and approves it.
    const pending = bob.page.getByTestId('pending-items');
    await expect.poll(() => pending.textContent(), { timeout: 20_000 }).toContain('INC-42: check a customer record');
    const request = pending.locator('article', { hasText: 'INC-42' });
    expect(await request.textContent()).toMatch(/Access to app for 2h.*alice/s);
    await shot(bob.page, '03-approvals-request');
    await request.getByRole('textbox').fill('ok for the incident');
    await request.getByRole('button', { name: /^Approve/ }).click();
    await expect.poll(() => bob.page.getByTestId('decided-items').textContent()).toMatch(/granted.*by bob/s);

    // alice's page turns to granted by itself; the psql command is shown; the token only goes to the clipboard.
    await expect.poll(() => card.getByTestId('access-state').textContent(), { timeout: 20_000 }).toContain('Granted until');
    await expect.poll(() => card.getByTestId('psql-command').textContent()).toMatch(/^psql /);
    const command = (await card.getByTestId('psql-command').textContent())!;
    expect(command).toBe(`psql "host=127.0.0.1 port=${gw.port} dbname=app user=alice sslmode=verify-full sslrootcert=jitgate-ca.pem"`);
    await card.getByRole('button', { name: 'Copy a fresh token' }).click();
    await expect.poll(() => card.getByRole('status').textContent()).toContain('in your clipboard');
    const token = await alice.page.evaluate(() => navigator.clipboard.readText());
    expect(token.length).toBeGreaterThan(20);
    // The certificate the page links to, saved where psql runs: the command below verifies the gateway with it.
    const caHref = await card.getByTestId('ca-hint').getByRole('link', { name: 'jitgate-ca.pem' }).getAttribute('href');
    const workDir = mkdtempSync(join(tmpdir(), 'jitgate-console-psql-'));
    writeFileSync(join(workDir, 'jitgate-ca.pem'), await (await fetch(new URL(caHref!, gw.httpUrl))).text());
    expect(await alice.page.content()).not.toContain(token);
    await shot(alice.page, '02-my-access');

    // psql with exactly that command; the query touches customers, so it is held for review.
    const conninfo = /^psql "(.*)"$/.exec(command)![1]!;
    const psql = spawn('psql', [conninfo, '-X', '-At', '-c', 'select name, email from customers where id = 1'], {
      cwd: workDir,
      env: { ...process.env, PGPASSWORD: token, PGAPPNAME: 'console-e2e' },
    });
    let out = '';
    let err = '';
    psql.stdout.on('data', (d) => (out += d));
    psql.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => psql.on('exit', resolve));

    // bob sees the held statement (with its SQL and the rule's reason) and approves it.
    await expect.poll(() => pending.textContent(), { timeout: 30_000 }).toContain('select name, email from customers');
    const held = pending.locator('article', { hasText: 'Held statement' });
    expect(await held.textContent()).toContain('customer data is reviewed');
    expect(await held.locator('.sql-kw').first().textContent()).toBe('select');
    await shot(bob.page, '04-approvals-held-statement');
    // With the keyboard only: type the comment, Tab to Approve, Enter.
    await held.getByRole('textbox').fill('one row, fine');
    await bob.page.keyboard.press('Tab');
    expect(await bob.page.evaluate(() => document.activeElement?.textContent)).toBe('Approve');
    await bob.page.keyboard.press('Enter');

    // The result arrives in psql, masked by the gateway.
    expect(await exited, err).toBe(0);
    expect(out).toMatch(/^Ada\|/);
    expect(out).not.toContain(CLEAR_EMAIL);
    await expect.poll(() => bob.page.getByTestId('decided-items').textContent()).toMatch(/approved.*by bob/s);

    // The session page replays it: the statement, the approval, the masked result.
    await alice.page.getByRole('link', { name: 'Sessions' }).click();
    const row = alice.page.locator('tr', { hasText: 'console-e2e' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    // Listed as short as the CLI prints it; the page itself names the whole id, to paste into the CLI.
    const link = row.getByRole('link');
    const fullId = (await link.getAttribute('title'))!;
    expect(fullId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await link.textContent()).toBe(fullId.slice(0, 8));
    await link.click();
    await expect.poll(() => alice.page.getByRole('heading', { level: 1 }).textContent()).toBe(`Session ${fullId}`);
    const timeline = alice.page.getByTestId('timeline');
    await expect.poll(() => timeline.textContent(), { timeout: 20_000 }).toContain('Session ended');
    const replay = (await timeline.textContent())!;
    expect(replay).toContain('(1 row)');
    expect(replay).toContain('select name, email from customers where id = 1');
    expect(replay).toMatch(/held for approval/);
    expect(replay).toMatch(/decided: allow.*bob/s);
    expect(replay).toContain('Ada');
    expect(replay).not.toContain(CLEAR_EMAIL);
    expect(await alice.page.content()).not.toContain(token);
    await shot(alice.page, '05-session-replay');

    // An auditor's view of the audit log, with the chain verified.
    const carol = await signIn('carol');
    await carol.page.getByRole('link', { name: 'Audit' }).click();
    await expect.poll(() => carol.page.getByTestId('chain-status').textContent(), { timeout: 20_000 }).toContain('Chain intact');
    await expect
      .poll(() => carol.page.getByTestId('audit-entries').textContent())
      .toMatch(/alice requested access to app for 2h: “INC-42: check a customer record”/);
    await shot(carol.page, '06-audit');

    // Readable on a phone-sized screen: the navigation wraps, nothing needs horizontal scrolling.
    await alice.page.setViewportSize({ width: 390, height: 844 });
    await alice.page.getByRole('link', { name: 'My access' }).click();
    const overflow = await alice.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(alice.page, '07-my-access-narrow');

    for (const c of [alice.context, bob.context, carol.context]) await c.close();
  },
);
