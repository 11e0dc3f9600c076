/**
 * Watching a session and reading the audit log in a real browser (Debian's chromium driven by
 * playwright-core) against a real gateway with the development IdP and a real PostgreSQL:
 *   - while alice's psql session is open, its statement count rises on the Sessions list and on
 *     the session's page (it used to read 0 until the session ended);
 *   - carol (auditor) replays it: marks on the scrubber for the refused DROP, the held UPDATE and
 *     the masked result; play advances, pause stops, a faster speed plays faster; the scrubber,
 *     the marks and "jump to statement" move to a moment; the link to a moment opens there; the
 *     keyboard plays, pauses and steps;
 *   - the audit log reads as sentences with links to the session and the review, filters by
 *     actor, kind, target and time, and exports the filtered rows as CSV and JSON;
 *   - the header's live indicator is on on every page; at phone width no page scrolls sideways;
 *     axe-core finds no serious or critical violation on the replay and the audit log.
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
import { seriousAccessibilityProblems } from './support/axe.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'console');
const CLEAR_EMAIL = 'ada@example.com';

let server: PgServer;
let gw: TestGateway;
let browser: Browser;
let base = '';
let dbToken = '';
let sessionId = '';
const contexts: BrowserContext[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

const bearer = (user: string) => {
  const u = DEMO_USERS.find((d) => d.user === user)!;
  return gw.gateway.identity.sessions.issue({ issuer: 'dev', subject: u.user, user: u.user, groups: [...u.groups] }).accessToken;
};
async function call<T>(user: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${bearer(user)}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startPostgres();
  await server.query(`create table customers (id int primary key, name text, email text);
    insert into customers values (1, 'Ada', '${CLEAR_EMAIL}');
    grant select, update on customers to public`);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers, admins], maxDuration: 4h }
guardrails:
  - name: no-ddl
    connections: [app]
    deny: { kinds: [ddl] }
    reason: schema changes go through migrations
reviews:
  - name: customer-updates
    connections: [app]
    match: { kinds: [update] }
    approval: { approvers: [approvers], timeout: 5m }
    reason: changes to customers are reviewed
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
  const asked = await call<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
    connection: 'app',
    duration: '2h',
    reason: 'INC-9: fix a customer email',
  });
  await call('bob', 'POST', `/api/requests/${asked.request.id}/approve`, { comment: 'ok' });
  dbToken = (await call<{ token: string }>('alice', 'POST', '/api/tokens', { connection: 'app' })).token;
  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await gw?.close();
  await server?.cleanup();
});

async function signIn(user: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(user);
  await page.locator('button[type=submit]', { hasText: 'Sign in' }).click();
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe(user);
  return page;
}

/** alice's psql through the gateway; statements are written to its stdin one at a time. */
function psqlSession(appName: string) {
  const conninfo = `host=127.0.0.1 port=${gw.port} dbname=app user=alice sslmode=require`;
  const child = spawn('psql', [conninfo, '-X', '-At'], { env: { ...process.env, PGPASSWORD: dbToken, PGAPPNAME: appName } });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { send: (sql: string) => child.stdin.write(`${sql}\n`), out: () => out, err: () => err, exited, end: () => child.stdin.end() };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const position = (page: Page) => page.getByTestId('replay-position').textContent();
/** The scrubber's exact position in ms (the shown clock is rounded to tenths). */
const positionMs = (page: Page) => page.locator('#replay-position').evaluate((el) => Number((el as HTMLInputElement).value));
const current = (page: Page) => page.locator('.timeline li[aria-current=step]');
const timeline = (page: Page) => page.getByTestId('timeline');

it(
  'a live session counts its statements as they run; the replay plays, pauses, speeds up, jumps and links to a moment',
  { timeout: 240_000 },
  async () => {
    const dave = await signIn('dave');
    const psql = psqlSession('replay-e2e');
    psql.send('select 40 + 2;');
    await expect.poll(() => psql.out(), { timeout: 20_000 }).toContain('42');

    // The Sessions list shows the live session with its running statement count.
    await dave.getByRole('link', { name: 'Sessions' }).click();
    const row = dave.locator('tr', { hasText: 'replay-e2e' });
    await expect.poll(() => row.textContent(), { timeout: 20_000 }).toMatch(/live/);
    await expect.poll(() => row.locator('td[data-label=Statements]').textContent(), { timeout: 20_000 }).toBe('1');
    sessionId = (await row.getByRole('link').getAttribute('title'))!;

    psql.send('select name, email from customers where id = 1;');
    await expect.poll(() => psql.out(), { timeout: 20_000 }).toMatch(/Ada\|/);
    expect(psql.out()).not.toContain(CLEAR_EMAIL);
    await expect.poll(() => row.locator('td[data-label=Statements]').textContent(), { timeout: 20_000 }).toBe('2');

    // The session page says the same while the session runs.
    await row.getByRole('link').click();
    await expect.poll(() => dave.getByTestId('statement-count').textContent(), { timeout: 20_000 }).toBe('2');
    psql.send('drop table customers;');
    await expect.poll(() => psql.err(), { timeout: 20_000 }).toMatch(/no-ddl|schema changes go through migrations/);
    await expect.poll(() => dave.getByTestId('statement-count').textContent(), { timeout: 20_000 }).toBe('3');

    // A held UPDATE that bob approves.
    psql.send("update customers set name = 'Ada L.' where id = 1;");
    let reviewId = '';
    await expect
      .poll(
        async () => {
          const r = await call<{ reviews: Array<{ id: string; state: string }> }>('bob', 'GET', '/api/reviews?state=pending');
          reviewId = r.reviews[0]?.id ?? '';
          return reviewId;
        },
        { timeout: 20_000 },
      )
      .not.toBe('');
    await call('bob', 'POST', `/api/reviews/${reviewId}/approve`, { comment: 'typo fix' });
    await expect.poll(() => psql.out(), { timeout: 20_000 }).toContain('UPDATE 1');
    psql.send('select 1 / 0;');
    await expect.poll(() => psql.err(), { timeout: 20_000 }).toContain('division by zero');
    psql.end();
    // Without ON_ERROR_STOP psql goes on after the errors and ends normally.
    expect(await psql.exited).toBe(0);

    // carol, an auditor, opens the ended session.
    const carol = await signIn('carol');
    await carol.goto(`${base}/sessions/${sessionId}`);
    await expect.poll(() => timeline(carol).textContent(), { timeout: 20_000 }).toContain('Session ended');
    expect(await carol.getByTestId('statement-count').textContent()).toBe('5');

    // Marks on the scrubber: the refusal, the hold, the masked result and the error, each named.
    const marks = carol.getByTestId('replay-marks');
    await expect.poll(() => marks.locator('[data-kind=refusal]').count()).toBe(1);
    expect(await marks.locator('[data-kind=refusal]').getAttribute('aria-label')).toMatch(
      /^Statement 3 refused by no-ddl at \d+:\d\d\.\d$/,
    );
    expect(await marks.locator('[data-kind=hold]').getAttribute('aria-label')).toMatch(/^Statement 4 held for approval/);
    expect(await marks.locator('[data-kind=masked]').getAttribute('aria-label')).toMatch(/^Masked result: email/);
    expect(await marks.locator('[data-kind=error]').getAttribute('aria-label')).toMatch(/^Error 22012: division by zero/);
    expect(await carol.locator('.legend').textContent()).toMatch(/1 refusal.*1 hold.*1 masked result.*1 error/s);
    await shot(carol, '30-replay-marks');
    expect(await seriousAccessibilityProblems(carol), 'session replay').toEqual([]);

    // The start: only the session's start is shown, and how much follows.
    await carol.getByRole('button', { name: /Previous event/ }).focus();
    await carol.keyboard.press('Home');
    await expect.poll(() => position(carol)).toBe('0:00.0');
    expect(await timeline(carol).locator('li').count()).toBe(1);
    expect(await carol.getByTestId('replay-later').textContent()).toMatch(/\d+ more events after 0:00\.0/);
    expect(await carol.evaluate(() => location.search)).toBe('?t=0');

    // Play advances; pause stops.
    await carol.getByRole('button', { name: /Play/ }).click();
    await expect.poll(async () => positionMs(carol), { timeout: 20_000 }).toBeGreaterThan(300);
    await carol.getByRole('button', { name: /Pause/ }).click();
    const paused = await positionMs(carol);
    await carol.waitForTimeout(600);
    expect(await positionMs(carol)).toBe(paused);
    expect(await carol.evaluate(() => location.search)).toBe(`?t=${Math.round(paused) / 1000}`);

    // Speed: at 8× the position moves several times as fast as at 1× (same wall time, measured in the page).
    const rate = async (speed: string) => {
      await carol.getByLabel('Speed').selectOption(speed);
      await carol.getByRole('button', { name: /Previous event/ }).focus();
      await carol.keyboard.press('Home');
      await carol.getByRole('button', { name: /Play/ }).click();
      await expect.poll(async () => positionMs(carol), { timeout: 20_000 }).toBeGreaterThan(0);
      const [t0, p0] = await carol.evaluate(() => [
        performance.now(),
        Number((document.getElementById('replay-position') as HTMLInputElement).value),
      ]);
      await carol.waitForTimeout(300);
      const [t1, p1] = await carol.evaluate(() => [
        performance.now(),
        Number((document.getElementById('replay-position') as HTMLInputElement).value),
      ]);
      // (At 8× it may already have played to the end, where it stops by itself.)
      if ((await carol.getByTestId('play').textContent())!.includes('Pause')) await carol.getByTestId('play').click();
      await expect.poll(() => carol.getByTestId('play').textContent()).toContain('Play');
      return (p1! - p0!) / (t1! - t0!);
    };
    const slow = await rate('1');
    const fast = await rate('8');
    expect(fast).toBeGreaterThan(slow * 3);

    // A mark moves the position to its event: the refused DROP is the last thing shown.
    await marks.locator('[data-kind=refusal]').click();
    await expect.poll(() => current(carol).textContent()).toContain('drop table customers');
    expect(await current(carol).textContent()).toContain('refused');
    expect(await timeline(carol).textContent()).not.toContain('Session ended');

    // Jump to statement: the masked SELECT, with what was masked said in words.
    const jump = carol.getByLabel('Jump to statement');
    const option = await jump.locator('option', { hasText: 'select name, email' }).getAttribute('value');
    await jump.selectOption(option!);
    await expect.poll(() => current(carol).textContent()).toContain('select name, email from customers');
    // Its masked result, through its mark.
    await marks.locator('[data-kind=masked]').click();
    await expect.poll(() => current(carol).textContent()).toContain('Masked by the gateway: email (rule pii)');
    expect(await timeline(carol).textContent()).not.toContain(CLEAR_EMAIL);
    const maskedAt = await position(carol);
    const link = (await carol.getByTestId('moment-link').inputValue())!;
    expect(link).toMatch(new RegExp(`^${base}/sessions/${sessionId}\\?t=\\d+(\\.\\d+)?$`));
    await carol.getByRole('button', { name: 'Copy link' }).click();
    await expect.poll(() => carol.evaluate(() => navigator.clipboard.readText())).toBe(link);
    await shot(carol, '31-replay-moment');

    // The scrubber itself: back to the start, then the end shows everything.
    await carol.locator('#replay-position').fill('0');
    await expect.poll(() => position(carol)).toBe('0:00.0');
    const end = await carol.locator('#replay-position').getAttribute('max');
    await carol.locator('#replay-position').fill(end!);
    await expect.poll(() => timeline(carol).textContent()).toContain('Session ended');

    // The link opens the replay at that moment, in a fresh page (and with #t= too).
    for (const url of [link, link.replace('?t=', '#t=')]) {
      const opened = await carol.context().newPage();
      await opened.goto(url);
      await expect.poll(() => position(opened), { timeout: 20_000 }).toBe(maskedAt);
      expect(await current(opened).textContent()).toContain('Masked by the gateway: email');
      expect(await timeline(opened).textContent()).not.toContain('drop table customers');
      await opened.close();
    }

    // Keyboard only: Space on the scrubber plays and pauses, arrows step between events.
    await carol.locator('#replay-position').focus();
    await carol.keyboard.press('Home');
    await carol.keyboard.press('Space');
    await expect.poll(() => carol.getByTestId('play').textContent()).toContain('Pause');
    await carol.keyboard.press('Space');
    await expect.poll(() => carol.getByTestId('play').textContent()).toContain('Play');
    await carol.keyboard.press('Home');
    await carol.keyboard.press('ArrowRight');
    await expect.poll(() => current(carol).textContent()).toContain('select 40 + 2');
    await carol.keyboard.press('ArrowRight');
    await expect.poll(() => current(carol).textContent()).toMatch(/\(1 row\)/);
    await carol.keyboard.press('ArrowLeft');
    await expect.poll(() => current(carol).textContent()).toContain('select 40 + 2');
  },
);

it(
  'the audit log reads as sentences with links, filters by actor, action, target and time, and exports what is shown',
  { timeout: 120_000 },
  async () => {
    expect(sessionId).not.toBe(''); // the session of the test above
    const carol = await signIn('carol');
    await carol.getByRole('link', { name: 'Audit' }).click();
    await expect.poll(() => carol.getByTestId('chain-status').textContent(), { timeout: 20_000 }).toContain('Chain intact');
    const entries = carol.getByTestId('audit-entries');
    await expect
      .poll(() => entries.textContent(), { timeout: 20_000 })
      .toContain('alice requested access to app for 2h: “INC-9: fix a customer email”');
    const text = (await entries.textContent())!;
    expect(text).toContain('bob approved alice’s request for app: “ok”');
    expect(text).toMatch(/bob granted alice access to app until .*\(policy app-engineers\)/);
    expect(text).toMatch(/alice’s statement 3 on app was refused by no-ddl: “drop table customers;?”/);
    expect(text).toContain('bob approved alice’s held statement on app: “typo fix”');
    expect(await entries.locator('pre.json').count()).toBe(0);

    // Times in the viewer's zone: "… ago", the exact local time on hover.
    const time = entries.locator('li time').first();
    expect(await time.textContent()).toMatch(/^\d+ (s|min|h) ago$/);
    const [title, local] = await time.evaluate((el) => [el.getAttribute('title'), new Date(el.getAttribute('datetime')!).toLocaleString()]);
    expect(title).toBe(local);
    // The live indicator is on here too, though this page listens to no live events itself.
    await expect.poll(() => carol.locator('.who .dot').getAttribute('aria-label'), { timeout: 20_000 }).toBe('live');
    await shot(carol, '32-audit');
    expect(await seriousAccessibilityProblems(carol), 'audit log').toEqual([]);

    // The refused statement links to its session's replay; the approval to the review and the session.
    const refused = entries.locator('li[data-type="statement.denied"]').first();
    expect(await refused.getByRole('link', { name: `session ${sessionId.slice(0, 8)}` }).getAttribute('href')).toBe(
      `/sessions/${sessionId}`,
    );
    const approval = entries.locator('li[data-type="review.approved"]').first();
    expect(await approval.getByRole('link', { name: /^review / }).getAttribute('href')).toMatch(/^\/reviews\/[0-9a-f-]{36}$/);
    await approval.getByRole('link', { name: `session ${sessionId.slice(0, 8)}` }).click();
    await expect.poll(() => carol.getByRole('heading', { level: 1 }).textContent(), { timeout: 20_000 }).toBe(`Session ${sessionId}`);
    await carol.goBack();

    // A request's link shows its whole story: asked, approved, granted.
    const asked = entries.locator('li[data-type="access.request.created"]').first();
    await asked.getByRole('link', { name: /^request / }).click();
    await expect.poll(() => carol.evaluate(() => location.search), { timeout: 20_000 }).toMatch(/^\?target=[0-9a-f-]+$/);
    await expect
      .poll(async () => (await entries.locator('li').evaluateAll((els) => els.map((e) => e.getAttribute('data-type')))).sort())
      .toEqual(['access.grant.created', 'access.request.approved', 'access.request.created']);
    expect(await carol.getByLabel('Target').inputValue()).toMatch(/^[0-9a-f-]+$/);

    // Filters: action kind, actor, target, time range.
    const form = carol.getByRole('form', { name: 'Filter the audit log' });
    const types = () => entries.locator('li').evaluateAll((els) => els.map((e) => e.getAttribute('data-type')!));
    await carol.getByRole('button', { name: 'Clear filters' }).click();
    await form.getByLabel('Action').selectOption({ label: 'Statements (refused, held)' });
    await form.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(async () => (await types()).every((t) => t.startsWith('statement.'))).toBe(true);
    expect(await types()).toEqual(expect.arrayContaining(['statement.denied', 'statement.held', 'statement.decided']));

    await form.getByLabel('Action').selectOption({ label: 'Any action' });
    await form.getByLabel('Actor').fill('bob');
    await form.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect
      .poll(async () => (await entries.locator('li .audit-text').allTextContents()).every((t) => t.startsWith('bob ')))
      .toBe(true);
    const bobs = await entries.locator('li').count();
    expect(bobs).toBeGreaterThanOrEqual(3); // approved the request, granted, approved the statement

    // Export exactly these, as CSV and as JSON.
    const csvHref = (await carol.getByTestId('export-csv').getAttribute('href'))!;
    expect(csvHref).toContain('actor=bob');
    const csv = await (await carol.context().request.get(base + csvHref)).text();
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('seq,at,type,actor,subject,data,hash');
    expect(lines.length - 1).toBe(bobs);
    for (const line of lines.slice(1)) expect(line.split(',')[3]).toBe('bob');
    const json = (await (
      await carol.context().request.get(base + (await carol.getByTestId('export-json').getAttribute('href'))!)
    ).json()) as Array<{ actor: string; type: string }>;
    expect(json).toHaveLength(bobs);
    expect(json.every((e) => e.actor === 'bob')).toBe(true);
    expect(json.map((e) => e.type)).toContain('review.approved');

    // Target: the session (by the start of its id) with its statements.
    await form.getByLabel('Actor').fill('');
    await form.getByLabel('Target').fill(sessionId.slice(0, 8));
    await form.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(async () => (await types()).includes('session.started')).toBe(true);
    expect(await types()).toEqual(expect.arrayContaining(['session.started', 'session.ended', 'statement.denied']));
    expect((await types()).some((t) => t.startsWith('access.'))).toBe(false);

    // Time range: nothing in the future; everything in the last hour.
    await form.getByLabel('Target').fill('');
    await form.getByLabel('Time').selectOption({ label: 'Between…' });
    const inAnHour = await carol.evaluate(() => {
      const d = new Date(Date.now() + 3_600_000);
      const pad = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
    await form.getByLabel('From').fill(inAnHour);
    await form.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => carol.getByText('No entries match.').count(), { timeout: 20_000 }).toBe(1);
    await form.getByLabel('Time').selectOption({ label: 'Last hour' });
    await form.getByRole('button', { name: 'Filter', exact: true }).click();
    await expect.poll(() => entries.locator('li').count(), { timeout: 20_000 }).toBeGreaterThan(5);
  },
);

it(
  'at phone width no page scrolls sideways (wide tables scroll in their own box or become lists) and the live indicator is on',
  { timeout: 180_000 },
  async () => {
    const pages = ['/', '/access', '/connections', '/grants', '/approvals', '/sessions', `/sessions/${sessionId}`, '/audit', '/admin'];
    for (const user of ['dave', 'alice']) {
      const page = await signIn(user, { width: 390, height: 844 });
      for (const path of pages) {
        await page.goto(base + path);
        await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe(user);
        await expect
          .poll(() => page.evaluate(() => /Loading|Verifying the chain/.test(document.querySelector('main')!.textContent ?? '')), {
            timeout: 20_000,
            message: `${user} ${path} is still loading`,
          })
          .toBe(false);
        const overflow = await page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth);
        expect(overflow, `${user} ${path} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
        // A table wider than the screen sits in a box that scrolls, with a cue that it does.
        const loose = await page.evaluate(
          () =>
            [...document.querySelectorAll('main table')].filter(
              (t) => t.getBoundingClientRect().width > window.innerWidth && !t.closest('.scroll'),
            ).length,
        );
        expect(loose, `${user} ${path}`).toBe(0);
        await expect.poll(() => page.locator('.who .dot').getAttribute('aria-label'), { timeout: 20_000 }).toBe('live');
        if (path.startsWith('/sessions/') || path === '/audit')
          expect(await seriousAccessibilityProblems(page), `${user} ${path} at phone width`).toEqual([]);
        await shot(page, `40-phone-${user}${path.replace(/\//g, '-').replace(/-[0-9a-f-]{36}$/, '-id')}`);
      }
    }
  },
);
