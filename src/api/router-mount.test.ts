import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Router } from './router.js';

const router = new Router();
let calls = 0;
let base = '';
const server = http.createServer((req, res) => {
  void router.handle(req, res).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});

beforeAll(async () => {
  router.setAuthenticator(() => {
    calls++;
    return null;
  });
  router.mount('/dev-idp/', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`mounted ${req.method} ${req.url}`);
  });
  router.add('GET', '/api/x', () => ({ ok: true }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it('a mount gets every request under its prefix as is: no authentication, no body parsing', async () => {
  const post = await fetch(`${base}/dev-idp/token?a=1`, { method: 'POST', body: 'not json', headers: { authorization: 'Bearer x' } });
  expect(await post.text()).toBe('mounted POST /dev-idp/token?a=1');
  expect(await (await fetch(`${base}/dev-idp`)).text()).toBe('mounted GET /dev-idp');
  expect(calls).toBe(0);
  expect((await fetch(`${base}/dev-idpx`)).status).toBe(404);
  expect((await fetch(`${base}/api/x`)).status).toBe(401);
  expect(calls).toBe(1);
});
