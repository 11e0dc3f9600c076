/**
 * SAML sign-in in a real browser (Debian's chromium driven by playwright-core) against a real SAML
 * IdP process (samlp, ./support/saml-idp-process.ts): the web console's "Sign in" goes to the IdP
 * (HTTP-Redirect AuthnRequest), the IdP's page posts the signed response to the gateway's ACS
 * (HTTP-POST), and the console comes back signed in; `jitgate login --issuer corp` opens the same
 * flow in the browser and ends on its loopback page with the sign-in saved. A forged-response
 * refusal shows its reason on the console's sign-in page.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loginCommand } from '../src/cli/commands/login.js';
import type { CliIo } from '../src/cli/io.js';
import { parseConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { startSamlIdp, type SamlTestIdp } from './support/saml-idp.js';
import { collect } from './support/collect.js';

const work = mkdtempSync(join(tmpdir(), 'jitgate-saml-browser-'));
let idp: SamlTestIdp;
let gateway: Gateway;
let browser: Browser;
let url: string;

beforeAll(async () => {
  idp = await startSamlIdp({
    users: [
      { user: 'alice', groups: ['eng-team'] },
      { user: 'dave', groups: ['idp-admins'] },
    ],
    signResponse: true,
  });
  const yaml = `
development: true
dataDir: ${join(work, 'gateway')}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { enabled: false }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
identities:
  saml:
    - name: corp
      metadata: ${idp.metadataUrl}
      groupMap: { eng-team: [engineering], idp-admins: [admins] }
      requireSigned: both
  admins: { groups: [admins] }
`;
  gateway = await startGateway(parseConfig(yaml, 'saml-browser.yaml', work), {
    env: {},
    logger: createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' }),
  });
  url = gateway.addresses.http;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await idp?.close();
  rmSync(work, { recursive: true, force: true });
});

async function signInAtIdp(page: Page, user: string): Promise<void> {
  await page.getByRole('heading', { name: 'Test SAML IdP' }).waitFor({ timeout: 20_000 });
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(user);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

it('signs in to the web console through the SAML IdP', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  expect(new URL(page.url()).origin).toBe(idp.base);
  await signInAtIdp(page, 'alice');
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe('alice');
  expect(new URL(page.url()).origin).toBe(url);
  const me = (await page.evaluate(async () => (await fetch('/api/auth/me', { credentials: 'same-origin' })).json())) as {
    user: string;
    groups: string[];
  };
  expect(me).toMatchObject({ user: 'alice', groups: ['engineering'] });
  await context.close();
});

it('an administrator signed in through SAML finds the provider on the Configuration page', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await signInAtIdp(page, 'dave');
  await expect.poll(() => page.getByTestId('signed-in-user').textContent(), { timeout: 20_000 }).toBe('dave');
  await page.getByRole('navigation').getByRole('link', { name: 'Configuration', exact: true }).click();
  const table = page.getByRole('table', { name: 'SAML identity providers' });
  await expect.poll(() => table.count(), { timeout: 20_000, message: 'the SAML providers table' }).toBe(1);
  const row = table.getByRole('row', { name: /corp/ });
  expect(await row.textContent()).toContain(idp.metadataUrl);
  expect(await row.textContent()).toContain('idp-admins → admins');
  expect(await row.textContent()).toContain('response and assertion');
  expect(await row.getByRole('link').getAttribute('href')).toBe('/api/auth/saml/corp/metadata');
  await context.close();
});

it('jitgate login --issuer corp: the browser signs in at the IdP and the CLI saves the sign-in', { timeout: 60_000 }, async () => {
  const home = join(work, 'home-alice');
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: Readable.from([]),
    env: { XDG_CONFIG_HOME: join(home, '.config'), HOME: home },
    cwd: home,
    now: () => Date.now(),
  };
  const context = await browser.newContext();
  const page = await context.newPage();
  let browsing: Promise<void> | undefined;
  await loginCommand(
    io,
    { url, issuer: 'corp' },
    {
      // What `jitgate login` does with a desktop browser, with this test's Chromium as the browser.
      openBrowser: (authorizationUrl) => {
        browsing = page.goto(authorizationUrl).then(() => signInAtIdp(page, 'alice'));
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    },
  );
  await browsing;
  expect(err).toContain('Opening your browser to sign in');
  expect(out).toMatch(new RegExp(`^signed in to ${url} as alice \\(engineering\\) until .*; saved in `));
  await expect.poll(() => page.locator('h1').textContent(), { timeout: 10_000 }).toBe('Signed in');
  expect(new URL(page.url()).hostname).toBe('127.0.0.1');
  const saved = JSON.parse(readFileSync(join(home, '.config', 'jitgate', 'credentials.json'), 'utf8')) as {
    user: string;
    accessToken: string;
  };
  expect(saved.user).toBe('alice');
  const me = await (await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${saved.accessToken}` } })).json();
  expect(me).toMatchObject({ user: 'alice', groups: ['engineering'], via: 'session' });
  await context.close();
});

it('a response tampered with in the browser is refused, and the console says why', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The person at the keyboard edits the IdP's answer on its way to the gateway: alice -> dave.
  await page.route(`${url}/api/auth/saml/corp/acs`, async (route) => {
    const form = new URLSearchParams(route.request().postData() ?? '');
    const xml = Buffer.from(form.get('SAMLResponse') ?? '', 'base64').toString('utf8');
    form.set('SAMLResponse', Buffer.from(xml.replace('>alice<', '>dave<')).toString('base64'));
    await route.continue({ postData: form.toString() });
  });
  await page.goto(`${url}/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await signInAtIdp(page, 'alice');
  await expect.poll(() => new URL(page.url()).pathname, { timeout: 20_000 }).toBe('/signin');
  await expect.poll(() => page.locator('main').textContent()).toContain('the response is not signed by the identity provider as required');
  expect(await page.getByTestId('signed-in-user').count()).toBe(0);
  const refused = (await collect(gateway.audit.entries())).filter((e) => e.type === 'auth.saml.refused');
  expect(refused.at(-1)?.data).toMatchObject({
    provider: 'corp',
    reason: 'the response is not signed by the identity provider as required',
  });
  await context.close();
});
