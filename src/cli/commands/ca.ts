/**
 * `jitgate ca [--save] [--url URL]`: the certificate the gateway's listeners present, so clients can
 * verify them instead of trusting any certificate (psql `sslmode=require` checks nothing):
 *
 *   jitgate ca > jitgate-ca.pem            then psql "... sslmode=verify-full sslrootcert=jitgate-ca.pem"
 *   jitgate ca --save                      keeps it beside the CLI's sign-in; `jitgate token` uses it
 *
 * The fingerprint goes to stderr, to compare with what the operator sees (`openssl x509 -fingerprint
 * -sha256` on the gateway's certificate): the API is reached over the same network a client uses.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { caPath, readSignIn } from '../credentials.js';
import { normalizeUrl } from '../gateway-http.js';
import { CliError, type CliIo } from '../io.js';

interface CaAnswer {
  certificate: string;
  generated: boolean;
  sha256: string;
}

export async function caCommand(io: CliIo, opts: { save?: boolean; url?: string }): Promise<void> {
  const url = normalizeUrl(opts.url || io.env.JITGATE_URL || (await readSignIn(io))?.url || 'http://127.0.0.1:8080');
  const answer = await fetchCa(url);
  if (!opts.save) {
    io.out(answer.certificate.endsWith('\n') ? answer.certificate : `${answer.certificate}\n`);
    io.err(`SHA-256 fingerprint ${answer.sha256}\n`);
    return;
  }
  const file = caPath(io.env);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // Whole or not at all: a half-written file would make every verifying client fail.
  await writeFile(`${file}.tmp`, answer.certificate, { mode: 0o644 });
  await rename(`${file}.tmp`, file);
  io.out(`${file}\n`);
  io.err(
    `saved the certificate of ${url} (SHA-256 ${answer.sha256})\n` +
      `verify the gateway with: psql "... sslmode=verify-full sslrootcert=${file}"` +
      ` | mysql --ssl-ca=${file} --ssl-verify-server-cert | redis-cli --tls --cacert ${file}\n`,
  );
}

async function fetchCa(url: string): Promise<CaAnswer> {
  let res: Response;
  let body: unknown;
  try {
    res = await fetch(`${url}/api/tls/ca`, { signal: AbortSignal.timeout(30_000) });
    body = await res.json();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new CliError(`cannot reach the gateway at ${url}: ${e.cause?.code ?? e.message}`);
  }
  const answer = body as Partial<CaAnswer>;
  if (!res.ok || typeof answer.certificate !== 'string')
    throw new CliError(`${url}/api/tls/ca answered HTTP ${res.status}: is this a jitgate gateway?`);
  // The fingerprint is computed here, not taken from the answer, so the one printed is the one saved.
  let sha256: string;
  try {
    sha256 = new X509Certificate(answer.certificate).fingerprint256;
  } catch {
    throw new CliError(`${url}/api/tls/ca did not answer a certificate`);
  }
  return { certificate: answer.certificate, generated: answer.generated === true, sha256 };
}
