/**
 * The TLS certificate the gateway presents on its listeners.
 *
 * - Configured: `tls.cert` / `tls.key` name PEM files; they are read and checked (parseable, the key
 *   matches the certificate) with errors that name the offending path.
 * - Not configured: a self-signed certificate (EC P-256, SHA-256, SAN localhost, 127.0.0.1 and ::1,
 *   825 days) is generated on first start into `<dataDir>/tls/gateway.crt` and `gateway.key`
 *   (directory 0700, key 0600) and reused on later starts. A generated pair that is unreadable, does
 *   not match, or expires within a week is regenerated; configured files are never touched. With a
 *   master key the generated pair lives in the state store instead, one for every instance on it.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import type { KeyKeeper } from '../core/types.js';

export interface CertificatePaths {
  cert?: string;
  key?: string;
}

export interface GatewayCertificate {
  /** PEM text of the certificate (chain). */
  cert: string;
  /** PEM text of the private key. Secret: never log it. */
  key: string;
  certPath: string;
  keyPath: string;
  /** true when this call generated a new self-signed pair. */
  generated: boolean;
}

/** A certificate problem at startup, naming the file it concerns. */
export class CertificateError extends Error {
  readonly path: string;
  constructor(filePath: string, message: string) {
    super(message);
    this.name = 'CertificateError';
    this.path = filePath;
  }
}

/** Validity of the generated certificate (the maximum browsers and Apple platforms accept). */
export const GENERATED_VALIDITY_DAYS = 825;
/** A generated certificate closer than this to its expiry is replaced at startup. */
const RENEW_BEFORE_MS = 7 * 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

export const GENERATED_CERT_FILE = 'gateway.crt';
export const GENERATED_KEY_FILE = 'gateway.key';

export async function ensureCertificate(
  dataDir: string,
  configured: CertificatePaths = {},
  now: Date = new Date(),
  keys?: KeyKeeper,
): Promise<GatewayCertificate> {
  if (configured.cert !== undefined || configured.key !== undefined) {
    return loadConfigured(configured);
  }
  return ensureGenerated(dataDir, now, keys);
}

async function loadConfigured(configured: CertificatePaths): Promise<GatewayCertificate> {
  if (configured.cert === undefined || configured.key === undefined) {
    const given = configured.cert !== undefined ? configured.cert : (configured.key as string);
    const missing = configured.cert === undefined ? 'tls.cert' : 'tls.key';
    throw new CertificateError(given, `TLS: ${missing} is missing; tls.cert and tls.key must be configured together (got only ${given})`);
  }
  const certPath = path.resolve(configured.cert);
  const keyPath = path.resolve(configured.key);
  const cert = await readPem(certPath, 'certificate');
  const key = await readPem(keyPath, 'private key');
  const x509 = parseCertificate(certPath, cert);
  const keyObject = parseKey(keyPath, key);
  if (!x509.checkPrivateKey(keyObject)) {
    throw new CertificateError(keyPath, `TLS private key ${keyPath} does not belong to certificate ${certPath}`);
  }
  return { cert, key, certPath, keyPath, generated: false };
}

async function ensureGenerated(dataDir: string, now: Date, keys: KeyKeeper | undefined): Promise<GatewayCertificate> {
  const dir = path.resolve(dataDir, 'tls');
  const certPath = path.join(dir, GENERATED_CERT_FILE);
  const keyPath = path.join(dir, GENERATED_KEY_FILE);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  if (keys?.shared) return ensureShared(keys, certPath, keyPath, now);

  const existing = await reuseGenerated(certPath, keyPath, now);
  if (existing) {
    // Tighten permissions a copy or an older version may have loosened.
    await fs.chmod(keyPath, 0o600);
    return { ...existing, certPath, keyPath, generated: false };
  }
  const pems = await generatePair(now);
  // Key first (0600 from creation), then the certificate; each written to a temp file and renamed
  // so a crash never leaves a half-written file that a later start would have to reason about.
  await writeAtomic(keyPath, pems.key, 0o600);
  await writeAtomic(certPath, pems.cert, 0o644);
  return { ...pems, certPath, keyPath, generated: true };
}

/** The generated certificate's name among the keys instances share. */
export const SHARED_CERTIFICATE_KEY = 'tls-certificate';

/**
 * Every instance on the store presents one generated certificate, kept in the store (the pair as
 * JSON): the first instance stores its files' pair or a new one; one that finds it near expiry
 * replaces it, unless another instance already has. Only the certificate is written here, for the
 * tools on this host that trust it (`jitgate token`); the private key stays in the store.
 */
async function ensureShared(keys: KeyKeeper, certPath: string, keyPath: string, now: Date): Promise<GatewayCertificate> {
  const stored = await keys.find(SHARED_CERTIFICATE_KEY);
  let pair = stored !== undefined ? usablePair(parsePair(stored), now) : undefined;
  let generated = false;
  if (!pair) {
    const local = await reuseGenerated(certPath, keyPath, now);
    const offered = local ?? (await generatePair(now));
    const value = JSON.stringify(offered);
    const kept = await keys.put(SHARED_CERTIFICATE_KEY, value, stored);
    pair = parsePair(kept);
    if (!pair) throw new Error('the generated TLS certificate in the state store cannot be read');
    generated = kept === value && !local;
  }
  if ((await fs.readFile(certPath, 'utf8').catch(() => undefined)) !== pair.cert) await writeAtomic(certPath, pair.cert, 0o644);
  return { ...pair, certPath, keyPath: 'the state store', generated };
}

function parsePair(text: string): { cert: string; key: string } | undefined {
  try {
    const v = JSON.parse(text) as { cert?: unknown; key?: unknown };
    return typeof v.cert === 'string' && typeof v.key === 'string' ? { cert: v.cert, key: v.key } : undefined;
  } catch {
    return undefined;
  }
}

async function generatePair(now: Date): Promise<{ cert: string; key: string }> {
  const notBefore = new Date(now.getTime() - 3600 * 1000); // tolerate small clock skew
  const notAfter = new Date(now.getTime() + GENERATED_VALIDITY_DAYS * DAY_MS);
  const pems = await generate(
    [
      { name: 'commonName', value: 'localhost' },
      { name: 'organizationName', value: 'jitgate development certificate' },
    ],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: notBefore,
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
            { type: 7, ip: '::1' },
          ],
        },
      ],
    },
  );
  return { cert: pems.cert, key: pems.private };
}

async function reuseGenerated(certPath: string, keyPath: string, now: Date): Promise<{ cert: string; key: string } | undefined> {
  let cert: string;
  let key: string;
  try {
    cert = await fs.readFile(certPath, 'utf8');
    key = await fs.readFile(keyPath, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  return usablePair({ cert, key }, now);
}

/** The pair, unless it is unreadable, does not match or expires within a week: then ours to replace. */
function usablePair(pair: { cert: string; key: string } | undefined, now: Date): { cert: string; key: string } | undefined {
  if (!pair) return undefined;
  try {
    const x509 = new X509Certificate(pair.cert);
    if (!x509.checkPrivateKey(createPrivateKey(pair.key))) return undefined;
    if (new Date(x509.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return undefined;
    return pair;
  } catch {
    return undefined;
  }
}

async function readPem(filePath: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CertificateError(filePath, `TLS ${what} ${filePath} cannot be read (${code})`);
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    throw new CertificateError(filePath, `TLS ${what} ${filePath} is not a PEM file (no -----BEGIN ...----- block)`);
  }
  return text;
}

function parseCertificate(filePath: string, pem: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CertificateError(filePath, `TLS certificate ${filePath} holds no PEM CERTIFICATE block`);
  }
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new CertificateError(filePath, `TLS certificate ${filePath} cannot be parsed: ${(err as Error).message}`);
  }
}

function parseKey(filePath: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    // The message of a failed key parse never contains key material.
    const hint = /ENCRYPTED/.test(pem) ? ' (encrypted keys are not supported; decrypt it first)' : '';
    throw new CertificateError(filePath, `TLS private key ${filePath} cannot be parsed${hint}: ${(err as Error).message}`);
  }
}

async function writeAtomic(filePath: string, content: string, mode: number): Promise<void> {
  const tmp = `${filePath}.${process.pid}.${Date.now()}.tmp`;
  try {
    await fs.writeFile(tmp, content, { mode, flag: 'wx' });
    await fs.chmod(tmp, mode); // umask may have narrowed or (on odd systems) not applied the mode
    await fs.rename(tmp, filePath);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
