/**
 * The console's Overview, Grants and Connections pages in a real browser (Debian's chromium driven
 * by playwright-core) against a real gateway with the development IdP and a real PostgreSQL:
 *   - an approver lands on the Overview; alice's request arrives in "Needs you now" without a
 *     reload, with how long it has waited; the charts show erin's session, her refused TRUNCATE and
 *     her held UPDATE with their rule names as labels, and each chart reads as a table too;
 *   - the Connections inventory finds connections by text and filters them by access, in words;
 *   - an admin revokes alice's grant from the Grants page, with a reason the dialog insists on; her
 *     grant is gone from the API and psql with her token is refused;
 *   - every page fits a phone-width screen, and axe-core finds no serious or critical violation
 *     on any of them at either width.
 * Screenshots go to test-artifacts/console/ (gitignored).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'console');
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let server: PgServer;
let gw: TestGateway;
let browser: Browser;
let base = '';
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startPostgres();
  await server.query(`create table customers (id int primary key, name text, email text);
    insert into customers values (1, 'Ada', 'ada@example.com');
    grant select, update, truncate on customers to public`);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers, admins], maxDuration: 4h }
guardrails:
  - name: no-truncate
    connections: [app]
    deny: { kinds: [truncate] }
    reason: emptying a table needs a migration
reviews:
  - name: customer-updates
    connections: [app]
    match: { kinds: [update] }
    approval: { approvers: [approvers], timeout: 5m }
masking:
  rules:
    - name: pii
      connections: [app]
      except: [admins]
      columns: { customers.email: email }
audit:
  auditors: [auditors]
`,
    configure: (config) => {
      config.identities = demoIdentities(DEMO_USERS);
    },
  });
  base = gw.httpUrl;

  // erin's session earlier today: a read, a refused TRUNCATE, an UPDATE held until bob approves it.
  const client = new pg.Client({
    host: gw.host,
    port: gw.port,
    user: 'erin',
    database: 'app',
    password: await gw.token({ user: 'erin', groups: ['engineering'] }),
  });
  await client.connect();
  try {
    await client.query('select name from customers');
    await client.query('truncate customers').catch(() => undefined);
    const update = client.query(`update customers set name = 'Ada L.' where id = 1`);
    let held: Array<{ id: string }> = [];
    for (let i = 0; i < 100 && held.length === 0; i++) {
      held = ((await call('bob', 'GET', '/api/reviews?state=pending')) as { reviews: Array<{ id: string }> }).reviews;
      if (held.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await call('bob', 'POST', `/api/reviews/${held[0]!.id}/approve`, {});
    await update;
  } finally {
    await client.end();
  }

  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await gw?.close();
  await server?.cleanup();
});

function bearer(user: string): string {
  const u = DEMO_USERS.find((d) => d.user === user)!;
  return gw.gateway.identity.sessions.issue({ issuer: 'dev', subject: u.user, user: u.user, groups: [...u.groups] }).accessToken;
}

async function call(user: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${bearer(user)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function signIn(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('dialog', (d) => void d.dismiss());
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.locator('button[type=submit]', { hasText: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe(user);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/**
 * axe-core's serious and critical violations in the page's content as it is now ("rule at
 * element"). The content (main) is what these pages own; the header is checked by the suites of
 * the pages it was built with.
 */
async function accessibilityProblems(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the console's CSP rightly refuses inline scripts.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: string): Promise<unknown> } }).axe;
    return await axe.run('main');
  })) as { violations: Array<{ id: string; impact: string | null; nodes: Array<{ html: string; failureSummary?: string }> }> };
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id} at ${v.nodes.map((n) => `${n.html} (${n.failureSummary ?? ''})`).join(', ')}`);
}

/** Checked with axe at desktop width, then at phone width, where nothing may scroll sideways; screenshots of that. */
async function atPhoneWidth(page: Page, name: string): Promise<void> {
  expect(await accessibilityProblems(page), `${name} at desktop width`).toEqual([]);
  await page.setViewportSize({ width: 390, height: 844 });
  await expect.poll(() => overflow(page)).toBeLessThanOrEqual(0);
  expect(await accessibilityProblems(page), `${name} at phone width`).toEqual([]);
  await shot(page, name);
  await page.setViewportSize({ width: 1280, height: 900 });
}

let aliceRequest = '';

it(
  'an approver lands on the Overview: a request arrives live with its age, the charts are labelled and read as tables',
  { timeout: 120_000 },
  async () => {
    const page = await signIn('bob');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    expect(await page.getByRole('link', { name: 'Overview' }).getAttribute('aria-current')).toBe('page');
    const needs = page.getByRole('region', { name: 'Needs you now' });
    await expect.poll(() => needs.textContent(), { timeout: 20_000 }).toContain('Nothing is waiting for you');

    // alice asks; bob's page shows it without a reload, with how long it has waited.
    const asked = (await call('alice', 'POST', '/api/requests', { connection: 'app', duration: '2h', reason: 'INC-77: refund check' })) as {
      request: { id: string };
    };
    aliceRequest = asked.request.id;
    const item = page.getByTestId(`waiting-request-${aliceRequest}`);
    await expect.poll(() => item.count(), { timeout: 20_000 }).toBe(1);
    expect(await item.textContent()).toMatch(/alice asks for app for 2h.*INC-77: refund check.*waiting \d+ s/s);

    // erin's session: counted per connection, its refusal and hold under their rules' names.
    const connections = page.getByTestId('chart-connections');
    await expect
      .poll(() => connections.locator('svg text').allTextContents(), { timeout: 20_000 })
      .toEqual(expect.arrayContaining(['app', '1', '3']));
    expect(await connections.locator('.chart-plot').getAttribute('aria-label')).toBe(
      'Sessions and statements per connection: app 1 sessions, 3 statements',
    );
    const refusals = page.getByTestId('chart-refusals');
    expect(await refusals.locator('svg text').allTextContents()).toEqual(expect.arrayContaining(['no-truncate', '1']));
    const holds = page.getByTestId('chart-holds');
    expect(await holds.locator('svg text').allTextContents()).toEqual(expect.arrayContaining(['customer-updates', '1']));
    // Series are told apart by pattern and named in a legend, not by colour alone.
    const fills = await connections
      .locator('.recharts-bar-rectangle path, .recharts-bar-rectangle rect')
      .evaluateAll((els) => els.map((e) => e.getAttribute('fill') ?? ''));
    expect(new Set(fills.map((f) => f.replace(/^url\(#[^-]*-/, '').replace(/\)$/, '')))).toEqual(new Set(['sessions', 'statements']));
    expect(await connections.locator('.recharts-legend-wrapper').textContent()).toMatch(/Sessions.*Statements/);
    const approvals = page.getByTestId('chart-approval-time');
    expect(await approvals.textContent()).toMatch(/Held statements: 1 approval, median \d+ s/);

    // The same figures as a table, for anyone who does not read charts.
    await refusals.getByText('Show as a table').click();
    expect(await refusals.locator('table tbody tr').allTextContents()).toEqual(['no-truncate1']);
    await shot(page, '30-overview');

    // The window switch: a week includes the day.
    await page.getByRole('button', { name: 'Last 7 days' }).click();
    expect(await page.getByRole('button', { name: 'Last 7 days' }).getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => connections.locator('.chart-plot').getAttribute('aria-label')).toContain('app 1 sessions, 3 statements');
    await atPhoneWidth(page, '31-overview-narrow');

    // bob approves from the Approvals page the item linked to; the Overview empties again.
    await item.getByRole('link').click();
    const request = page.getByTestId('pending-items').locator('article', { hasText: 'INC-77' });
    await expect.poll(() => request.count(), { timeout: 20_000 }).toBe(1);
    await request.getByRole('button', { name: /^Approve/ }).click();
    await expect.poll(() => page.getByTestId('decided-items').textContent(), { timeout: 20_000 }).toMatch(/granted/);
    await page.getByRole('link', { name: 'Overview' }).click();
    await expect.poll(() => needs.textContent(), { timeout: 20_000 }).toContain('Nothing is waiting for you');
  },
);

it('the Connections inventory searches and filters, with every rule in words', { timeout: 60_000 }, async () => {
  const page = await signIn('alice');
  // A plain user lands on My access, which lists her grant.
  await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('My access');
  await expect.poll(() => page.getByTestId('my-grants').textContent(), { timeout: 20_000 }).toContain('app');
  expect(await page.getByRole('link', { name: 'Overview' }).count()).toBe(0);

  await page.getByRole('link', { name: 'Connections' }).click();
  const app = page.getByTestId('inventory-app');
  await expect.poll(() => app.textContent(), { timeout: 20_000 }).toContain('refuses TRUNCATE statements');
  const text = (await app.textContent())!;
  expect(text).toContain('access needs 1 approval from approvers, admins');
  expect(text).toContain('holds UPDATE statements');
  expect(text).toContain('column customers.email: shown as a masked email address');
  expect(text).toContain('for everyone except admins');
  expect(await app.getByTestId('inventory-access').textContent()).toContain('access until');
  await shot(page, '32-connections');

  // Search by what a rule says; filter by access.
  await page.getByLabel('Search').fill('masked email');
  await expect.poll(() => page.getByTestId('connections-count').textContent()).toBe('1 connection');
  await page.getByLabel('Search').fill('no such thing');
  await expect.poll(() => page.getByText('No connection matches these filters.').count()).toBe(1);
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByLabel('My access').selectOption('none');
  await expect.poll(() => page.getByText('No connection matches these filters.').count()).toBe(1);
  expect(new URL(page.url()).searchParams.get('access')).toBe('none');
  await page.getByLabel('My access').selectOption('granted');
  await expect.poll(() => page.getByTestId('inventory-app').count()).toBe(1);
  await atPhoneWidth(page, '33-connections-narrow');

  // An admin sees every connection; the search narrows them, and the masking rule is not hers.
  const dave = await signIn('dave');
  await dave.goto(`${base}/connections?q=md5`);
  await expect.poll(() => dave.getByTestId('connections-count').textContent(), { timeout: 20_000 }).toMatch(/^1 of \d+ connections match$/);
  expect(await dave.getByTestId('inventory-app-md5').count()).toBe(1);
  await dave.getByLabel('Search').fill('');
  await dave.getByLabel('Type').selectOption('postgres');
  const masking = dave.getByTestId('inventory-app').locator('section', { hasText: 'Masking' });
  await expect.poll(() => masking.textContent()).toContain('not you');
});

it(
  'an admin revokes a grant from the Grants page with a required reason; the grant is gone and psql is refused',
  { timeout: 90_000 },
  async () => {
    const token = ((await call('alice', 'POST', '/api/tokens', { connection: 'app' })) as { token: string }).token;
    const before = await psql(gw.dsn({ user: 'alice' }), token, ['-At', '-c', 'select 40 + 2']);
    expect(before.stdout.trim()).toBe('42');

    const page = await signIn('dave');
    await page.getByRole('link', { name: 'Grants' }).click();
    const table = page.getByTestId('grants-others');
    const row = table.locator('tr', { hasText: 'alice' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    expect(await row.textContent()).toMatch(/app.*in 1 h 59 min|app.*in 2 h/s);
    expect(await row.textContent()).toContain('approved by bob');
    await page.getByLabel('Search grants').fill('erin');
    await expect.poll(() => table.locator('tbody tr').allTextContents()).toEqual([expect.stringContaining('erin')]);
    await page.getByLabel('Search grants').fill('');
    await shot(page, '34-grants');

    await row.getByRole('button', { name: "Revoke alice's grant on app" }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke this grant?' });
    await expect.poll(() => dialog.count()).toBe(1);
    // Without a reason the dialog stays and says why.
    await dialog.getByRole('button', { name: 'Revoke grant' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('Please give a reason');
    await dialog.getByRole('textbox').fill('INC-77 closed');
    await dialog.getByRole('button', { name: 'Revoke grant' }).click();
    await expect.poll(() => dialog.count()).toBe(0);
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(0);

    // alice's access is gone: the API lists no grant for her, and her token no longer opens a session.
    const grants = (await call('alice', 'GET', '/api/grants')) as { mine: unknown[] };
    expect(grants.mine).toEqual([]);
    const ended = (await call('alice', 'GET', '/api/grants?all=1')) as { mine: Array<{ revokedBy: string; revokeReason: string }> };
    expect(ended.mine[0]).toMatchObject({ revokedBy: 'dave', revokeReason: 'INC-77 closed' });
    const after = await psql(gw.dsn({ user: 'alice' }), token, ['-At', '-c', 'select 1']);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/revoked/);
    await atPhoneWidth(page, '35-grants-narrow');
  },
);
