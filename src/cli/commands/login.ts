/**
 * `jitgate login [--device] [--url URL] [--issuer NAME] [--no-browser]` and `jitgate logout`.
 *
 * login (default, authorization code + PKCE): a loopback server on 127.0.0.1 (random port) receives
 * the IdP's redirect; the sign-in URL is opened in a browser when possible and always printed. The
 * PKCE verifier never leaves this process until the gateway redeems the code with it.
 * login --device: prints the verification URL and user code (for a machine without a browser) and
 * polls the gateway at the interval the IdP asks for.
 * Either way the gateway answers with its own session (see ../credentials.ts for how it is kept and
 * refreshed). Only the outcome is printed; no token is ever written to the terminal.
 *
 * logout: ends the sign-in at the gateway (session and refresh token) and removes the file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { formatTime } from '../format.js';
import { openBrowser } from '../browser.js';
import { readSignIn, removeSignIn, saveSignIn, signInFromAnswer, type SavedSignIn } from '../credentials.js';
import { errorMessage, normalizeUrl, postJson } from '../gateway-http.js';
import { CliError, type CliIo } from '../io.js';
import { startLoopback } from '../loopback.js';

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8080';
const BROWSER_WAIT_MS = 5 * 60_000;

export interface LoginOptions {
  url?: string;
  device?: boolean;
  issuer?: string;
  /** commander's --no-browser sets this to false. */
  browser?: boolean;
}

/** What the command does to the world besides HTTP, injectable for tests. */
export interface LoginDeps {
  openBrowser: (url: string, env: NodeJS.ProcessEnv) => void;
  /** Waits between device-flow polls. */
  sleep: (ms: number) => Promise<void>;
}

export const defaultLoginDeps: LoginDeps = {
  openBrowser: (url, env) => void openBrowser(url, env),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export async function gatewayUrlFor(io: CliIo, flag: string | undefined): Promise<string> {
  if (flag) return normalizeUrl(flag);
  if (io.env.JITGATE_URL) return normalizeUrl(io.env.JITGATE_URL);
  const saved = await readSignIn(io).catch(() => undefined);
  return saved?.url ?? DEFAULT_GATEWAY_URL;
}

export async function loginCommand(io: CliIo, opts: LoginOptions, deps: LoginDeps = defaultLoginDeps): Promise<void> {
  const url = await gatewayUrlFor(io, opts.url);
  const answer = opts.device ? await deviceLogin(io, url, opts, deps) : await pkceLogin(io, url, opts, deps);
  const signIn = signInFromAnswer(url, answer);
  const path = await saveSignIn(io, signIn);
  io.out(describeSignIn(signIn) + `; saved in ${path}\n`);
}

export function describeSignIn(s: SavedSignIn): string {
  const groups = s.groups.length > 0 ? s.groups.join(', ') : 'no groups';
  return `signed in to ${s.url} as ${s.user} (${groups}) until ${formatTime(Date.parse(s.refreshTokenExpiresAt))}`;
}

async function pkceLogin(io: CliIo, url: string, opts: LoginOptions, deps: LoginDeps): Promise<Record<string, unknown>> {
  const loopback = await startLoopback();
  try {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
    const start = await postJson(url, '/api/auth/login/start', {
      flow: 'pkce',
      redirectUri: loopback.redirectUri,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      ...(opts.issuer ? { issuer: opts.issuer } : {}),
    });
    if (start.status !== 200) throw new CliError(`cannot start the sign-in: ${errorMessage(start)}`);
    const loginId = String(start.body.loginId);
    const authorizationUrl = String(start.body.authorizationUrl);
    const browser = opts.browser !== false && !io.env.JITGATE_NO_BROWSER;
    io.err(
      `${browser ? 'Opening your browser to sign in. If it does not open, visit' : 'To sign in, visit'}:\n\n  ${authorizationUrl}\n\n`,
    );
    if (browser) deps.openBrowser(authorizationUrl, io.env);
    const result = await loopback.wait(loginId, BROWSER_WAIT_MS).catch(() => {
      throw new CliError('no sign-in within 5 minutes; run `jitgate login` again');
    });
    if ('error' in result) throw new CliError(`the sign-in failed: ${result.error}${result.description ? `: ${result.description}` : ''}`);
    const token = await postJson(url, '/api/auth/token', {
      grantType: 'authorization_code',
      loginId,
      code: result.code,
      codeVerifier: verifier,
      ...(result.iss ? { iss: result.iss } : {}),
    });
    if (token.status !== 200) throw new CliError(`the gateway refused the sign-in: ${errorMessage(token)}`);
    return token.body;
  } finally {
    await loopback.close();
  }
}

async function deviceLogin(io: CliIo, url: string, opts: LoginOptions, deps: LoginDeps): Promise<Record<string, unknown>> {
  const start = await postJson(url, '/api/auth/login/start', { flow: 'device', ...(opts.issuer ? { issuer: opts.issuer } : {}) });
  if (start.status !== 200) throw new CliError(`cannot start the sign-in: ${errorMessage(start)}`);
  const b = start.body;
  const loginId = String(b.loginId);
  const expiresAt = Date.parse(String(b.expiresAt));
  io.err(
    `To sign in, open ${String(b.verificationUri)} on any device and enter the code\n\n  ${String(b.userCode)}\n\n` +
      (typeof b.verificationUriComplete === 'string' ? `(or open ${b.verificationUriComplete})\n` : '') +
      'Waiting for the sign-in...\n',
  );
  let intervalMs = (typeof b.interval === 'number' ? b.interval : 5) * 1000;
  for (;;) {
    await deps.sleep(intervalMs);
    const poll = await postJson(url, '/api/auth/token', { grantType: 'device_code', loginId });
    if (poll.status === 200) return poll.body;
    const error = poll.body.error;
    if (error === 'authorization_pending') {
      if (io.now() > expiresAt) throw new CliError('the code expired before the sign-in was completed; run `jitgate login --device` again');
      continue;
    }
    if (error === 'slow_down') {
      intervalMs += 5000;
      continue;
    }
    if (error === 'expired_token')
      throw new CliError('the code expired before the sign-in was completed; run `jitgate login --device` again');
    if (error === 'access_denied') throw new CliError('the sign-in was declined');
    throw new CliError(`the gateway refused the sign-in: ${errorMessage(poll)}`);
  }
}

export async function logoutCommand(io: CliIo): Promise<void> {
  const saved = await readSignIn(io);
  if (!saved) {
    io.err('not signed in\n');
    return;
  }
  try {
    const r = await postJson(saved.url, '/api/auth/logout', { refreshToken: saved.refreshToken }, saved.accessToken);
    if (r.status !== 200)
      io.err(`jitgate: the gateway did not confirm the sign-out (${errorMessage(r)}); removing the local sign-in anyway\n`);
  } catch (err) {
    io.err(`jitgate: ${(err as Error).message}; removing the local sign-in anyway (it stays valid at the gateway until it expires)\n`);
  }
  await removeSignIn(io);
  io.out(`signed out of ${saved.url}\n`);
}
