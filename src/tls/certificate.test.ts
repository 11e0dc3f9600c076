import { X509Certificate, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretStore } from '../credentials/secret-store.js';
import { SharedKeys } from '../credentials/shared-keys.js';
import { openSqliteStore } from '../store/sqlite.js';
import { CertificateError, GENERATED_VALIDITY_DAYS, ensureCertificate } from './certificate.js';

let dataDir: string;

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jitgate-tls-'));
});
afterEach(async () => {
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** Serve one TLS handshake with the pair and connect to it trusting the certificate as CA. */
async function handshake(pair: { cert: string; key: string }, target: { host: string; servername?: string }): Promise<string> {
  const server = tls.createServer({ cert: pair.cert, key: pair.key }, (socket) => {
    socket.end('hello over tls');
  });
  await new Promise<void>((resolve) => server.listen(0, target.host, resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: target.host, port, ca: pair.cert, servername: target.servername }, () => {
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('end', () => resolve(text));
      });
      socket.on('error', reject);
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('ensureCertificate (generated)', () => {
  it('generates once with private permissions and reuses the pair on later starts', async () => {
    const first = await ensureCertificate(dataDir);
    expect(first.generated).toBe(true);
    expect(first.certPath).toBe(path.join(dataDir, 'tls', 'gateway.crt'));
    expect(first.keyPath).toBe(path.join(dataDir, 'tls', 'gateway.key'));
    expect(first.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(first.key).toContain('PRIVATE KEY-----');
    expect(await fs.readFile(first.certPath, 'utf8')).toBe(first.cert);
    expect(await fs.readFile(first.keyPath, 'utf8')).toBe(first.key);

    if (process.platform !== 'win32') {
      expect((await fs.stat(first.keyPath)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(path.dirname(first.keyPath))).mode & 0o777).toBe(0o700);
    }

    const x509 = new X509Certificate(first.cert);
    expect(x509.subjectAltName).toContain('DNS:localhost');
    expect(x509.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(x509.subjectAltName).toMatch(/IP Address:(0:0:0:0:0:0:0:1|::1)/);
    const days = (Date.parse(x509.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(GENERATED_VALIDITY_DAYS - 2);
    expect(days).toBeLessThanOrEqual(GENERATED_VALIDITY_DAYS + 1);

    const second = await ensureCertificate(dataDir);
    expect(second.generated).toBe(false);
    expect(second.cert).toBe(first.cert);
    expect(second.key).toBe(first.key);
  });

  it('tightens a loosened key file mode on reuse', async () => {
    if (process.platform === 'win32') return;
    const first = await ensureCertificate(dataDir);
    await fs.chmod(first.keyPath, 0o644);
    await ensureCertificate(dataDir);
    expect((await fs.stat(first.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('regenerates a generated pair that is corrupt or about to expire', async () => {
    const first = await ensureCertificate(dataDir);
    await fs.writeFile(first.certPath, 'garbage');
    const replaced = await ensureCertificate(dataDir);
    expect(replaced.generated).toBe(true);
    expect(replaced.cert).not.toBe(first.cert);

    const later = new Date(Date.now() + (GENERATED_VALIDITY_DAYS - 3) * 86_400_000);
    const renewed = await ensureCertificate(dataDir, {}, later);
    expect(renewed.generated).toBe(true);
  });

  it('completes a TLS handshake for servername localhost and for 127.0.0.1 with the certificate as CA', async () => {
    const pair = await ensureCertificate(dataDir);
    expect(await handshake(pair, { host: '127.0.0.1', servername: 'localhost' })).toBe('hello over tls');
    expect(await handshake(pair, { host: '127.0.0.1' })).toBe('hello over tls');
  });

  it('fails verification for a name the certificate does not cover', async () => {
    const pair = await ensureCertificate(dataDir);
    await expect(handshake(pair, { host: '127.0.0.1', servername: 'db.example.com' })).rejects.toThrow(/altnames|Hostname/i);
  });
});

describe('ensureCertificate (configured)', () => {
  it('reads configured PEM files without touching the data directory', async () => {
    const generated = await ensureCertificate(path.join(dataDir, 'elsewhere'));
    const certPath = path.join(dataDir, 'my.crt');
    const keyPath = path.join(dataDir, 'my.key');
    await fs.writeFile(certPath, generated.cert);
    await fs.writeFile(keyPath, generated.key);

    const loaded = await ensureCertificate(dataDir, { cert: certPath, key: keyPath });
    expect(loaded).toEqual({ cert: generated.cert, key: generated.key, certPath, keyPath, generated: false });
    await expect(fs.stat(path.join(dataDir, 'tls'))).rejects.toThrow();
  });

  it('names the path of an unreadable file', async () => {
    const missing = path.join(dataDir, 'nope.crt');
    const err = await ensureCertificate(dataDir, { cert: missing, key: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as CertificateError).path).toBe(missing);
    expect((err as Error).message).toContain(missing);
    expect((err as Error).message).toContain('ENOENT');
  });

  it('names the path of a file that is not PEM', async () => {
    const generated = await ensureCertificate(path.join(dataDir, 'g'));
    const certPath = path.join(dataDir, 'cert.pem');
    const keyPath = path.join(dataDir, 'key.der');
    await fs.writeFile(certPath, generated.cert);
    await fs.writeFile(keyPath, Buffer.from([0x30, 0x82, 0x01, 0x02]));
    await expect(ensureCertificate(dataDir, { cert: certPath, key: keyPath })).rejects.toThrow(`${keyPath} is not a PEM file`);
    await expect(ensureCertificate(dataDir, { cert: keyPath, key: certPath })).rejects.toThrow(`${keyPath} is not a PEM file`);
  });

  it('rejects a key that does not belong to the certificate, and a half configuration', async () => {
    const a = await ensureCertificate(path.join(dataDir, 'a'));
    const b = await ensureCertificate(path.join(dataDir, 'b'));
    await expect(ensureCertificate(dataDir, { cert: a.certPath, key: b.keyPath })).rejects.toThrow(
      `TLS private key ${b.keyPath} does not belong to certificate ${a.certPath}`,
    );
    await expect(ensureCertificate(dataDir, { cert: a.certPath })).rejects.toThrow(/tls\.key is missing/);
  });
});

describe('ensureCertificate (generated, shared by instances on one store)', () => {
  const env = { JITGATE_MASTER_KEY: randomBytes(32).toString('hex') };
  const storeFile = () => path.join(dataDir, 'shared.db');
  /** An instance on its own host: its own data directory, the one store. */
  async function instance(now = new Date()) {
    const dir = await fs.mkdtemp(path.join(dataDir, 'host-'));
    const store = openSqliteStore(storeFile());
    try {
      return { dir, certificate: await ensureCertificate(dir, {}, now, SharedKeys.open(new SecretStore(store, { env }))) };
    } finally {
      void store.close();
    }
  }

  it('gives every instance one pair, writes only the certificate, and renews it once near expiry', async () => {
    const a = await instance();
    const b = await instance();
    expect(a.certificate.generated).toBe(true);
    expect(b.certificate).toMatchObject({ generated: false, cert: a.certificate.cert, key: a.certificate.key });
    expect(await fs.readFile(path.join(b.dir, 'tls', 'gateway.crt'), 'utf8')).toBe(a.certificate.cert);
    await expect(fs.stat(path.join(b.dir, 'tls', 'gateway.key'))).rejects.toThrow(/ENOENT/);
    expect(await handshake(b.certificate, { host: '127.0.0.1' })).toBe('hello over tls');

    // Six days before it expires, the first instance to start renews it; the next takes that renewal.
    const late = new Date(Date.now() + (GENERATED_VALIDITY_DAYS - 6) * 86_400_000);
    const renewed = await instance(late);
    expect(renewed.certificate.generated).toBe(true);
    expect(renewed.certificate.cert).not.toBe(a.certificate.cert);
    const after = await instance(late);
    expect(after.certificate).toMatchObject({ generated: false, cert: renewed.certificate.cert });
  });

  it('moves a single gateway’s generated pair into the store', async () => {
    const alone = await ensureCertificate(dataDir);
    const store = openSqliteStore(storeFile());
    try {
      const moved = await ensureCertificate(dataDir, {}, new Date(), SharedKeys.open(new SecretStore(store, { env })));
      expect(moved).toMatchObject({ generated: false, cert: alone.cert, key: alone.key });
    } finally {
      void store.close();
    }
    expect((await instance()).certificate.cert).toBe(alone.cert);
  });
});
