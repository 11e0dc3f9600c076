/**
 * Serves the web console (built by Vite from web/ into dist/console) at `/`: files with their
 * content types, hashed assets cached for a year, index.html revalidated each time, and every
 * other non-API path answered with index.html so the console's own routes survive a reload.
 * Every answer carries a strict Content-Security-Policy: scripts, styles and connections from this
 * origin only, no inline script, no framing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the console (same place from src/ under tsx and from dist/). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console', import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/** Returns a handler for the HTTP server's fallback; false for paths it does not serve (/api/...). */
export function consoleHandler(dir = CONSOLE_DIR): (req: IncomingMessage, res: ServerResponse) => boolean {
  const root = resolve(dir);
  const cache = new Map<string, Buffer>();
  const read = (file: string) => {
    let body = cache.get(file);
    if (!body) {
      body = readFileSync(file);
      if (cache.size < 500) cache.set(file, body);
    }
    return body;
  };
  return (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://gateway').pathname);
    if (path === '/api' || path.startsWith('/api/') || path.startsWith('/dev-idp')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const index = join(root, 'index.html');
    if (!existsSync(index)) {
      const text = 'The web console is not built. Run `npm run build` (it builds web/ into dist/console).\n';
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : text);
      return true;
    }
    const candidate = normalize(join(root, path));
    let file = index;
    if (candidate.startsWith(root + sep) && existsSync(candidate) && statSync(candidate).isFile()) file = candidate;
    else if (extname(path) !== '' && path.startsWith('/assets/')) {
      // A missing asset is a 404, not the page (a stale tab asking for an old bundle must notice).
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : 'not found\n');
      return true;
    }
    const body = read(file);
    const hashed = file.startsWith(join(root, 'assets') + sep);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
