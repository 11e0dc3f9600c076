/**
 * The console's deliberate actions in a real browser (Debian's chromium driven by playwright-core)
 * against a real gateway with the development IdP and a real PostgreSQL, used like a person would,
 * with the keyboard where it makes sense:
 *   - the author of a held statement withdraws it from the console, after an in-page confirmation
 *     (Escape cancels, focus stays in the dialog); psql gets the error with the note;
 *   - an admin ends a live session through an in-page dialog that requires a reason (never
 *     window.prompt); psql is disconnected and the timeline says who and why;
 *   - an admin reads the configuration as tables, with secrets by reference only, and checks
 *     statements with the policy check form (refused, held, masked columns).
 * Screenshots go to test-artifacts/console/ (gitignored).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'console');

let server: PgServer;
let gw: TestGateway;
let browser: Browser;
let base = '';
let conninfo = '';
let dbToken = '';
const contexts: BrowserContext[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
/** Native dialogs (alert/confirm/prompt) any page opened: the console must need none. */
const nativeDialogs: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startPostgres();
  await server.query(`create table customers (id int primary key, name text, email text);
    insert into customers values (1, 'Ada', 'ada@example.com');
    grant select on customers to public`);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers, admins], maxDuration: 4h }
guardrails:
  - name: no-ddl
    connections: [app]
    deny: { kinds: [ddl, truncate] }
    reason: schema changes go through migrations
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
      except: [auditors]
      columns: { customers.email: email, "*.ssn": { strategy: partial, keep: 4 } }
audit:
  auditors: [auditors]
`,
    configure: (config) => {
      config.identities = demoIdentities(DEMO_USERS);
    },
  });
  base = gw.httpUrl;

  // alice's access is set up through the API (the request flow itself is console.browser.test.ts's).
  const bearer = (user: string) => {
    const u = DEMO_USERS.find((d) => d.user === user)!;
    return gw.gateway.identity.sessions.issue({ issuer: 'dev', subject: u.user, user: u.user, groups: [...u.groups] }).accessToken;
  };
  const call = async (user: string, path: string, body: unknown) => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer(user)}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const asked = await call('alice', '/api/requests', { connection: 'app', duration: '2h', reason: 'INC-7: customer records' });
  await call('bob', `/api/requests/${(asked.request as { id: string }).id}/approve`, { comment: 'ok' });
  dbToken = ((await call('alice', '/api/tokens', { connection: 'app' })) as { token: string }).token;
  conninfo = `host=127.0.0.1 port=${gw.port} dbname=app user=alice sslmode=require`;

  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await gw?.close();
  await server?.cleanup();
});

async function signIn(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('dialog', (d) => {
    nativeDialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.locator('button[type=submit]', { hasText: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe(user);
  return page;
}

/** alice's psql through the gateway: the statements on stdin, which stays open until `end`. */
function psqlSession(appName: string, input: string) {
  const child = spawn('psql', [conninfo, '-X', '-At', '-v', 'ON_ERROR_STOP=1'], {
    env: { ...process.env, PGPASSWORD: dbToken, PGAPPNAME: appName },
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdin.write(input);
  return { out: () => out, err: () => err, exited, end: () => child.stdin.end() };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const focused = (page: Page) =>
  page.evaluate(() => (document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent ?? '').trim());
const focusTag = (page: Page) => page.evaluate(() => document.activeElement?.tagName.toLowerCase());

it('the author withdraws a held statement from the console after confirming; Escape cancels', { timeout: 120_000 }, async () => {
  const page = await signIn('alice');
  const psql = psqlSession('console-withdraw', 'select name from customers where id = 1;\n');

  // Her own held statement is listed for her, with who must approve and a Withdraw action.
  await page.getByRole('link', { name: 'Approvals' }).click();
  const mine = page.getByTestId('my-held-items');
  await expect.poll(() => mine.textContent(), { timeout: 30_000 }).toContain('select name from customers');
  const card = mine.locator('article');
  expect(await card.getByTestId('waiting').textContent()).toContain('Waiting for approvers');
  await shot(page, '10-author-held-statement');

  // The link psql was given (/reviews/<id>) offers her the same action.
  const reviewId = (await card.getAttribute('data-testid'))!.replace(/^review-/, '');
  const linked = await page.context().newPage();
  await linked.goto(`${base}/reviews/${reviewId}`);
  await expect.poll(() => linked.getByRole('button', { name: /^Withdraw statement/ }).count(), { timeout: 20_000 }).toBe(1);
  expect(await linked.getByTestId('waiting').textContent()).toContain('Your session is held');
  await linked.close();

  // Keyboard: focus Withdraw, Enter opens the dialog with focus inside it; Escape cancels.
  const withdraw = card.getByRole('button', { name: /^Withdraw statement/ });
  await withdraw.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Withdraw this statement?' });
  await expect.poll(() => dialog.count()).toBe(1);
  expect(await dialog.getAttribute('aria-modal')).toBe('true');
  expect(await focusTag(page)).toBe('textarea');
  await page.keyboard.press('Escape');
  await expect.poll(() => dialog.count()).toBe(0);
  expect(await focused(page)).toMatch(/^Withdraw statement/); // focus is back on what opened it
  expect(await card.getByTestId('waiting').count()).toBe(1); // nothing happened

  // Again: a note, and Tab stays inside the dialog (wraps both ways).
  await page.keyboard.press('Enter');
  await expect.poll(() => dialog.count()).toBe(1);
  await page.keyboard.type('wrong customer, sorry');
  await page.keyboard.press('Tab');
  expect(await focused(page)).toBe('Keep waiting');
  await page.keyboard.press('Tab');
  expect(await focused(page)).toBe('Withdraw statement');
  await page.keyboard.press('Tab');
  expect(await focusTag(page)).toBe('textarea');
  await page.keyboard.press('Shift+Tab');
  expect(await focused(page)).toBe('Withdraw statement');
  await shot(page, '11-withdraw-dialog');
  await page.keyboard.press('Enter');

  // psql gets the refusal with her note at once; the item is decided as withdrawn by her.
  await expect.poll(() => psql.err(), { timeout: 20_000 }).toMatch(/withdrawn.*wrong customer, sorry/s);
  expect(await psql.exited).toBe(3); // ON_ERROR_STOP: the statement failed
  expect(psql.out()).not.toContain('Ada');
  await expect.poll(() => dialog.count()).toBe(0);
  await expect
    .poll(() => page.getByTestId('decided-items').textContent(), { timeout: 20_000 })
    .toMatch(/withdrawn.*by alice.*wrong customer, sorry/s);
  expect(await page.getByTestId('my-held-items').count()).toBe(0);
  await shot(page, '12-withdrawn');
  expect(nativeDialogs).toEqual([]);
});

it(
  'control characters in a held statement show as visible escapes, not as text direction or line tricks',
  { timeout: 120_000 },
  async () => {
    // A CR and a right-to-left override inside a comment: the approver must see them, not be misled by them.
    const psql = psqlSession('console-escapes', 'select name from customers where id = 1 /* \r\u202eevil */;\n');
    const page = await signIn('bob');
    await page.getByRole('link', { name: 'Approvals' }).click();
    const card = page.locator('article', { hasText: 'where id = 1 /*' }).first();
    await expect.poll(() => card.textContent(), { timeout: 30_000 }).toContain('\\r\\u202eevil');
    const text = (await card.locator('pre.sql').textContent()) ?? '';
    expect(text).toContain('/* \\r\\u202eevil */');
    expect(text).not.toMatch(/[\r\u202e]/);
    expect(await card.locator('pre.sql .ctl').count()).toBe(2);
    await shot(page, '13-control-characters');
    await card.getByRole('button', { name: /^Deny/ }).first().click();
    await expect.poll(() => psql.err(), { timeout: 20_000 }).toMatch(/denied/);
    psql.end();
    await psql.exited;
  },
);

it('an admin ends a live session through a dialog that requires a reason', { timeout: 120_000 }, async () => {
  // A psql session that stays open (stdin not closed) after one statement that is not held.
  const psql = psqlSession('console-kill', 'select 40 + 2;\n');

  const page = await signIn('dave');
  await page.getByRole('link', { name: 'Sessions' }).click();
  const row = page.locator('tr', { hasText: 'console-kill' });
  await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
  await row.getByRole('link').click();
  const end = page.getByRole('button', { name: 'End session now' });
  await expect.poll(() => end.count(), { timeout: 20_000 }).toBe(1);

  // Enter on the button opens the dialog; the reason field has focus.
  await end.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'End this session?' });
  await expect.poll(() => dialog.count()).toBe(1);
  expect(await focusTag(page)).toBe('textarea');
  expect(await dialog.textContent()).toContain('alice');

  // Submitting without a reason is refused in place: the dialog stays, focus returns to the field.
  await page.keyboard.press('Tab');
  expect(await focused(page)).toBe('Cancel');
  await page.keyboard.press('Tab');
  expect(await focused(page)).toBe('End session');
  await page.keyboard.press('Enter');
  await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('Please give a reason');
  expect(await focusTag(page)).toBe('textarea');
  expect(await dialog.getByRole('textbox').getAttribute('aria-invalid')).toBe('true');
  await shot(page, '13-end-session-reason-required');

  // Escape cancels: nothing ended, focus is back on the button.
  await page.keyboard.press('Escape');
  await expect.poll(() => dialog.count()).toBe(0);
  expect(await focused(page)).toBe('End session now');
  expect(psql.err()).toBe('');

  // With a reason (Ctrl+Enter submits from the field) the session ends.
  await page.keyboard.press('Enter');
  await expect.poll(() => dialog.count()).toBe(1);
  await page.keyboard.type('INC-7: runaway session');
  await shot(page, '14-end-session-dialog');
  await page.keyboard.press('Control+Enter');
  await expect.poll(() => dialog.count(), { timeout: 20_000 }).toBe(0);
  await expect.poll(() => page.getByRole('status').textContent()).toContain('INC-7: runaway session');
  await expect.poll(() => page.getByTestId('timeline').textContent(), { timeout: 20_000 }).toMatch(/Ended by dave: INC-7: runaway session/);
  psql.end();
  await psql.exited;
  await expect.poll(() => end.count(), { timeout: 20_000 }).toBe(0);
  await shot(page, '15-session-ended');
  expect(nativeDialogs).toEqual([]);
});

it('an admin reads the configuration as tables, secrets by reference only', { timeout: 60_000 }, async () => {
  const page = await signIn('dave');
  await page.getByRole('link', { name: 'Configuration' }).click();
  const table = (name: string) => page.getByRole('table', { name });
  await expect.poll(() => table('Connections').textContent(), { timeout: 20_000 }).toContain(`127.0.0.1:${server.port}`);
  const app = table('Connections').locator('tr', { hasText: 'app' }).first();
  expect(await app.textContent()).toContain('env:PG_SCRAM');
  await expect.poll(() => table('Access policies').textContent()).toMatch(/app-engineers.*1 approval from.*approvers.*admins.*4h/s);
  await expect
    .poll(() => table('Guardrails').textContent())
    .toMatch(/no-ddl.*statement kinds: ddl, truncate.*schema changes go through migrations/s);
  await expect
    .poll(() => table('Review rules').textContent())
    .toMatch(/customer-reads.*tables: customers.*1 approval from.*approvers.*within 5m.*customer data is reviewed/s);
  await expect
    .poll(() => table('Masking rules').textContent())
    .toMatch(/pii.*except.*auditors.*column customers\.email → email.*column \*\.ssn → partial \(keep last 4\)/s);
  await expect.poll(() => table('Password references').textContent()).toMatch(/app.*env:PG_SCRAM/s);
  await expect.poll(() => table('Development users').textContent()).toMatch(/dave.*admins/s);

  // Keyboard: the section links jump to a section.
  await page.getByRole('navigation', { name: 'Configuration sections' }).getByRole('link', { name: 'Review rules' }).focus();
  await page.keyboard.press('Enter');
  await expect.poll(() => page.evaluate(() => location.hash)).toBe('#config-reviews');

  // The policy check form: what would happen to a statement, without running it.
  const check = page.getByRole('form', { name: 'Policy check' });
  await check.getByLabel('Connection').selectOption('app');
  await check.getByLabel('User').fill('alice');
  await check.getByLabel('Groups').fill('engineering');
  await check.getByLabel('Statement').fill('DROP TABLE customers');
  await check.getByRole('button', { name: 'Check' }).click();
  const answer = page.getByTestId('policy-answer');
  await expect.poll(() => answer.textContent(), { timeout: 20_000 }).toMatch(/Refused by guardrail “no-ddl” \(kind_denied\)/);
  expect(await answer.textContent()).toContain('schema changes go through migrations');
  await check.getByLabel('Statement').fill('select name, email from customers');
  await check.getByRole('button', { name: 'Check' }).click();
  await expect
    .poll(() => answer.textContent(), { timeout: 20_000 })
    .toMatch(/Held for review by rule “customer-reads”.*1 approval from approvers/s);
  await expect
    .poll(() => page.getByRole('table', { name: 'Result columns' }).textContent())
    .toMatch(/name\s*clear.*email\s*rule pii \(masked_column, email\)\s*public\.customers\.email/s);
  await shot(page, '17-policy-check');
  // The masking report for the last day, from the recordings.
  const report = page.getByRole('form', { name: 'Masking report' });
  await report.getByLabel('Since').fill('1d');
  await report.getByRole('button', { name: 'Show report' }).click();
  await expect
    .poll(() => page.getByTestId('masking-report').textContent(), { timeout: 20_000 })
    .toMatch(/\d+ session recordings? read.*Masked columns.*Statements refused by masking.*Columns only detectors masked/s);
  expect((await server.query('select count(*)::int as n from customers')).rows[0]).toEqual({ n: 1 });

  // No raw JSON dump, and no secret value anywhere on the page.
  expect(await page.locator('pre.json').count()).toBe(0);
  const html = await page.content();
  for (const u of Object.values(server.users)) expect(html).not.toContain(u.password);
  expect(html).not.toContain(gw.config.identities.devIdp!.agent.clientSecret);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, '16-configuration');
  expect(nativeDialogs).toEqual([]);
});
