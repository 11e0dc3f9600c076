/**
 * Keys that must agree across instances live in the shared store under the master key: two gateways
 * with their own data directories (two hosts) on one store, a real PostgreSQL and the pg driver.
 *
 *  - A had been a single-host gateway: its audit signing key and masking hash key files are moved
 *    into the store (an auditor's pinned key survives); B's own older files are not used;
 *  - a hashed column reads the same through A and through B (hashes join across instances);
 *  - a checkpoint B signs verifies with the key pinned from A;
 *  - an unknown user gets the same fake SCRAM salt from both (no instance gives itself away);
 *  - both present the same generated TLS certificate.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEntriesAsync } from '../src/audit/chain.js';
import { generateSigningKey, signerFromPem } from '../src/audit/signing.js';
import { build } from '../src/protocols/postgres/codec.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { wrap } from './support/raw-client.js';
import { cli } from './support/recording.js';

const MASTER_KEY = randomBytes(32).toString('base64');
const A_AUDIT_KEY = generateSigningKey();
const A_HASH_KEY = randomBytes(32).toString('hex');
const pinned = signerFromPem(A_AUDIT_KEY, 'A');

let server: PgServer;
let a: TestGateway;
let b: TestGateway;
let storePath: string;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(`create table people (id int, email text); insert into people values (1, 'ann@example.com');
    grant select on people to public`);
  storePath = join(mkdtempSync(join(tmpdir(), 'jitgate-shared-store-')), 'jitgate.db');
  const extraYaml = `store: { path: ${storePath} }
masking:
  rules:
    - name: pii
      columns: { people.email: hash }
`;
  const options = { extraYaml, env: { JITGATE_MASTER_KEY: MASTER_KEY } };
  a = await startTestGateway(server, {
    ...options,
    beforeStart: (dir) => {
      writeFileSync(join(dir, 'audit-signing.key'), A_AUDIT_KEY, { mode: 0o600 });
      writeFileSync(join(dir, 'masking-hash.key'), A_HASH_KEY + '\n', { mode: 0o600 });
    },
  });
  b = await startTestGateway(server, {
    ...options,
    beforeStart: (dir) => {
      writeFileSync(join(dir, 'audit-signing.key'), generateSigningKey(), { mode: 0o600 });
      writeFileSync(join(dir, 'masking-hash.key'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    },
  });
});

afterAll(async () => {
  await b?.close().catch(() => undefined);
  await a?.close();
  await server?.cleanup();
});

async function hashedEmail(gw: TestGateway): Promise<string> {
  const client = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: await gw.token() });
  await client.connect();
  try {
    const { rows } = await client.query<{ email: string }>('select email from people');
    return rows[0]!.email;
  } finally {
    await client.end();
  }
}

/** The salt the gateway offers in SCRAM's server-first-message to `user`. */
async function scramSalt(gw: TestGateway, user: string): Promise<string> {
  const socket = net.connect(gw.port, gw.host);
  const s = wrap(socket);
  try {
    socket.write(build.startup({ user, database: 'app' }));
    const [sasl] = (await s.until('R')).slice(-1);
    expect(sasl!.body.readInt32BE(0)).toBe(10); // AuthenticationSASL
    socket.write(build.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=clientnonce'));
    const [cont] = (await s.until('R')).slice(-1);
    expect(cont!.body.readInt32BE(0)).toBe(11); // AuthenticationSASLContinue
    const salt = /(?:^|,)s=([^,]+)/.exec(cont!.body.subarray(4).toString('utf8'))?.[1];
    expect(salt).toBeDefined();
    return salt!;
  } finally {
    socket.destroy();
  }
}

async function presentedCertificate(gw: TestGateway): Promise<string> {
  const res = await fetch(`${gw.httpUrl}/api/tls/ca`);
  return ((await res.json()) as { certificate: string }).certificate;
}

describe('keys shared by instances on one store', () => {
  it('a hashed column reads the same through A and B', async () => {
    const email = await hashedEmail(a);
    expect(email).not.toContain('ann@');
    expect(await hashedEmail(b)).toBe(email);
  });

  it('an unknown user gets the same fake SCRAM salt from both instances', async () => {
    const fromA = await scramSalt(a, 'nobody-here');
    expect(await scramSalt(b, 'nobody-here')).toBe(fromA);
    expect(await scramSalt(b, 'someone-else')).not.toBe(fromA);
  });

  it('both present the one generated TLS certificate', async () => {
    const fromA = await presentedCertificate(a);
    expect(fromA).toContain('BEGIN CERTIFICATE');
    expect(await presentedCertificate(b)).toBe(fromA);
  });

  it('`jitgate audit public-key` on B’s host prints the shared key, not B’s older file', async () => {
    const configPath = join(b.dataDir, 'cli.yaml');
    writeFileSync(configPath, `dataDir: ${b.dataDir}\nstore: { path: ${storePath} }\nlog: { level: silent }\n`);
    const shown = await cli(['audit', 'public-key', '--config', configPath], { JITGATE_MASTER_KEY: MASTER_KEY });
    expect(shown).toMatchObject({ code: 0, out: `${pinned.publicKey}\n` });
    const verified = await cli(['audit', 'verify', '--config', configPath], { JITGATE_MASTER_KEY: MASTER_KEY });
    expect(verified).toMatchObject({ code: 0, out: expect.stringMatching(/^audit log verified: /) as unknown });
  });

  it('the checkpoint B signs at shutdown verifies with the key an auditor pinned from A', async () => {
    await b.gateway.audit.append({ type: 'test.marker', actor: 'test' });
    const head = (await b.gateway.audit.head())!.seq;
    await b.close();
    const checkpoint = await a.gateway.audit.lastCheckpoint();
    expect(checkpoint?.seq).toBeGreaterThan(head);
    expect(checkpoint?.data).toMatchObject({ keyId: pinned.keyId });
    expect(await verifyEntriesAsync(a.gateway.audit.entries(), { trusted: [pinned] })).toMatchObject({ ok: true, keyTrusted: true });
  });
});
