import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCertificate } from '../../tls/certificate.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clientProof, deriveVerifier, newSalt } from '../../crypto/scram.js';
import { build, Framer } from './codec.js';
import { MessageStream } from './message-stream.js';
import { authenticateClient, type ClientAuthResult, type TokenVerifier } from './server-auth.js';

const TOKEN = 'jg_test-token';
const salt = newSalt();
const verifier: TokenVerifier = {
  scramCandidates: async (user) => ({
    salt,
    iterations: 4096,
    candidates:
      user === 'alice'
        ? [
            { ...deriveVerifier('jg_other', salt), tokenId: 't0' },
            { ...deriveVerifier(TOKEN, salt), tokenId: 't1' },
          ]
        : [],
  }),
  verifyCleartext: async (user, _c, token) => (user === 'alice' && token === TOKEN ? 't1' : undefined),
};

const sockets: net.Socket[] = [];
afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));

/** A server running authenticateClient and a raw client socket talking to it. */
async function pair(tls: { certificate: Buffer } | null = null, methods: Array<'scram-sha-256' | 'cleartext'> = ['scram-sha-256']) {
  let result!: Promise<ClientAuthResult>;
  const server = net.createServer((s) => {
    sockets.push(s);
    const stream = new MessageStream(s, 5000);
    stream.startTyped();
    result = authenticateClient(stream, (b) => s.write(b), 'alice', 'app', verifier, { methods, tls });
    result.catch(() => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  sockets.push(client);
  await new Promise((r) => client.once('connect', r));
  server.close();
  const framer = new Framer();
  const inbox: Array<{ type: string; body: Buffer }> = [];
  client.on('data', (c: Buffer) =>
    framer.push(c, (t, b, s, e) => inbox.push({ type: String.fromCharCode(t), body: Buffer.from(b.subarray(s + 5, e)) })),
  );
  const next = async () => {
    await vi.waitFor(() => expect(inbox.length, 'a message from the server').toBeGreaterThan(0), { timeout: 5000, interval: 5 });
    return inbox.shift()!;
  };
  // The server's side of the connection has started authenticating.
  await vi.waitFor(() => expect(result, 'authenticateClient to start').toBeDefined(), { timeout: 5000, interval: 5 });
  return { client, next, result: () => result };
}

async function scramExchange(opts: { token: string; gs2: string; mechanism?: string; binding?: Buffer }) {
  const p = await pair(opts.binding ? { certificate: Buffer.from('not-a-cert') } : null);
  const offer = await p.next();
  expect(offer.body.readInt32BE(0)).toBe(10);
  const bare = 'n=,r=clientnonce123';
  p.client.write(build.saslInitialResponse(opts.mechanism ?? 'SCRAM-SHA-256', `${opts.gs2}${bare}`));
  const cont = await p.next();
  const serverFirst = cont.body.subarray(4).toString();
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const c = Buffer.concat([Buffer.from(opts.gs2), opts.binding ?? Buffer.alloc(0)]).toString('base64');
  const withoutProof = `c=${c},r=${attrs.r}`;
  const { proof } = clientProof(opts.token, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), `${bare},${serverFirst},${withoutProof}`);
  p.client.write(build.saslResponse(`${withoutProof},p=${proof.toString('base64')}`));
  return p.result();
}

describe('authenticateClient', () => {
  it("accepts the token whichever of the user's active tokens it is, and names it", async () => {
    await expect(scramExchange({ token: TOKEN, gs2: 'n,,' })).resolves.toMatchObject({ ok: true, tokenId: 't1', method: 'SCRAM-SHA-256' });
  });

  it('rejects a wrong token without a protocol error', async () => {
    await expect(scramExchange({ token: 'jg_wrong', gs2: 'n,,' })).resolves.toEqual({ ok: false, reason: 'bad_token' });
  });

  it('refuses a client that claims we cannot bind while we offered -PLUS (downgrade)', async () => {
    const { cert } = await ensureCertificate(mkdtempSync(join(tmpdir(), 'jitgate-cert-')));
    const p = await pair({ certificate: new X509Certificate(cert).raw });
    const offer = await p.next();
    expect(offer.body.subarray(4).toString()).toContain('SCRAM-SHA-256-PLUS');
    p.client.write(build.saslInitialResponse('SCRAM-SHA-256', 'y,,n=,r=abc'));
    await expect(p.result()).rejects.toThrow(/channel binding negotiation/);
  });

  it('refuses an authorization identity and malformed SCRAM messages', async () => {
    const p = await pair();
    await p.next();
    p.client.write(build.saslInitialResponse('SCRAM-SHA-256', 'n,a=admin,n=,r=abc'));
    await expect(p.result()).rejects.toThrow(/authorization identity/);
    const q = await pair();
    await q.next();
    q.client.write(build.saslInitialResponse('SCRAM-SHA-256', 'garbage'));
    await expect(q.result()).rejects.toThrow(/malformed/);
  });

  it('offers cleartext only over TLS', async () => {
    const plain = await pair(null, ['cleartext']);
    await expect(plain.result()).resolves.toEqual({ ok: false, reason: 'method_unavailable' });
    const secure = await pair({ certificate: Buffer.from('x') }, ['cleartext']);
    const ask = await secure.next();
    expect(ask.body.readInt32BE(0)).toBe(3);
    secure.client.write(build.password(TOKEN));
    await expect(secure.result()).resolves.toMatchObject({ ok: true, tokenId: 't1', method: 'cleartext' });
  });
});
