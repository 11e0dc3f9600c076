/**
 * The certificate the gateway's listeners present, for clients that verify it (psql
 * `sslmode=verify-full sslrootcert=FILE`, mysql `--ssl-ca`, redis-cli `--cacert`):
 *
 *   GET /api/tls/ca      {certificate, generated, sha256}: the PEM and its SHA-256 fingerprint
 *   GET /api/tls/ca.pem  the PEM itself, as a file to save (the console links to it)
 *
 * Public on purpose: a certificate is not a secret, and a client needs it before it can sign in.
 * For the self-signed certificate the gateway generates, the certificate is its own trust anchor;
 * for a configured one, the file holds what the operator configured (leaf and chain).
 */
import { X509Certificate } from 'node:crypto';
import type { Router } from './router.js';

export interface TlsRoutesOptions {
  /** PEM text, as presented by the listeners. */
  certificate: string;
  /** True when the gateway generated it (self-signed) rather than loading a configured one. */
  generated: boolean;
}

export function registerTlsRoutes(router: Router, o: TlsRoutesOptions): void {
  const sha256 = new X509Certificate(o.certificate).fingerprint256;
  router.add('GET', '/api/tls/ca', () => ({ certificate: o.certificate, generated: o.generated, sha256 }), {
    auth: 'none',
    doc: { summary: "The gateway's TLS certificate (PEM) and its SHA-256 fingerprint, to verify the listeners with", roles: ['anyone'] },
  });
  router.add(
    'GET',
    '/api/tls/ca.pem',
    (ctx) => {
      ctx.res.writeHead(200, {
        'content-type': 'application/x-pem-file',
        'content-disposition': 'attachment; filename="jitgate-ca.pem"',
        'content-length': Buffer.byteLength(o.certificate),
        'x-content-type-options': 'nosniff',
      });
      ctx.res.end(ctx.req.method === 'HEAD' ? undefined : o.certificate);
      return undefined;
    },
    {
      auth: 'none',
      doc: {
        summary: "The gateway's TLS certificate as a PEM file (jitgate-ca.pem)",
        roles: ['anyone'],
        produces: 'application/x-pem-file',
      },
    },
  );
}
