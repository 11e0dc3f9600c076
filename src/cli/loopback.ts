/**
 * The loopback redirect server of `jitgate login` (RFC 8252 7.3): listens on 127.0.0.1 on a port
 * the system picks, and waits for the identity provider to send the browser back to /callback with
 * the authorization code. Only a redirect that carries the login's `state` counts: anything else
 * (a stray request, a page from another login) is answered and ignored, so it cannot end the login.
 */
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** `iss`: the issuer that answered (RFC 9207), when the IdP says. */
export type RedirectResult = { code: string; iss?: string } | { error: string; description?: string };

export interface LoopbackServer {
  redirectUri: string;
  /** Resolves with the first redirect carrying `state`; rejects after `timeoutMs`. */
  wait(state: string, timeoutMs: number): Promise<RedirectResult>;
  close(): Promise<void>;
}

const PAGE = (title: string, text: string) =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
  `<body style="font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto"><h1>${title}</h1><p>${text}</p></body></html>`;

export async function startLoopback(): Promise<LoopbackServer> {
  let expected: string | undefined;
  let settle: ((r: RedirectResult) => void) | undefined;
  const server: Server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, title: string, text: string) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
      res.end(PAGE(title, text));
    };
    if (req.method !== 'GET' || url.pathname !== '/callback')
      return send(404, 'Not found', 'This is the sign-in callback of jitgate login.');
    if (expected === undefined || url.searchParams.get('state') !== expected) {
      return send(400, 'Unexpected sign-in', 'This page does not belong to the sign-in jitgate login is waiting for.');
    }
    const code = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    if (code) {
      send(200, 'Signed in', 'You can close this tab and return to the terminal.');
      const iss = url.searchParams.get('iss');
      settle?.({ code, ...(iss ? { iss } : {}) });
    } else {
      send(400, 'Sign-in failed', `The identity provider said: ${escape(error ?? 'no code')}. Return to the terminal.`);
      const description = url.searchParams.get('error_description') ?? undefined;
      settle?.({ error: error ?? 'invalid_request', ...(description ? { description } : {}) });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    wait: (state, timeoutMs) =>
      new Promise<RedirectResult>((resolve, reject) => {
        expected = state;
        const timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
        settle = (r) => {
          clearTimeout(timer);
          settle = undefined;
          resolve(r);
        };
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
