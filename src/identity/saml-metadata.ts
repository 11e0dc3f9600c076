/**
 * A SAML identity provider's metadata (SAML 2.0 Metadata, section 2.4.3): what the gateway needs
 * from it is the IdP's entity ID (the Issuer its responses must name), its HTTP-Redirect
 * SingleSignOnService (where AuthnRequests go) and its signing certificates (what signatures must
 * verify against). Read from a file or a URL on first use, so a gateway starts while its IdP is down
 * (sign-in then fails closed), and re-read hourly so a rotated IdP certificate is picked up.
 */
import { readFile } from 'node:fs/promises';
import { DOMParser } from '@xmldom/xmldom';
import type { SamlProviderConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { causeText, IdentityUnavailable } from './oidc.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
export const HTTP_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const MAX_AGE_MS = 3_600_000;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_BYTES = 1 << 20;

export interface IdpMetadata {
  entityId: string;
  ssoRedirectUrl: string;
  /** PEM certificates the IdP signs with. */
  signingCerts: string[];
}

/** Parses IdP metadata; throws an Error saying what is missing (the text is the operator's, safe to log). */
export function parseIdpMetadata(xml: string): IdpMetadata {
  const errors: string[] = [];
  const doc = new DOMParser({
    errorHandler: (level: string, msg: unknown) => void (level !== 'warning' && errors.push(String(msg))),
  }).parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  if (errors.length > 0 || !root) throw new Error(`not well-formed XML (${errors[0] ?? 'empty'})`);
  // An EntitiesDescriptor may wrap several entities: exactly one may be an IdP.
  const entities = [root, ...Array.from(root.getElementsByTagNameNS(MD, 'EntityDescriptor'))].filter(
    (e) => e.namespaceURI === MD && e.localName === 'EntityDescriptor' && e.getElementsByTagNameNS(MD, 'IDPSSODescriptor').length > 0,
  );
  if (entities.length !== 1)
    throw new Error(
      entities.length === 0 ? 'no EntityDescriptor with an IDPSSODescriptor' : 'more than one identity provider in one metadata document',
    );
  const entity = entities[0]!;
  const entityId = entity.getAttribute('entityID') ?? '';
  if (entityId === '') throw new Error('the EntityDescriptor has no entityID');
  const idp = entity.getElementsByTagNameNS(MD, 'IDPSSODescriptor')[0]!;
  const sso = Array.from(idp.getElementsByTagNameNS(MD, 'SingleSignOnService')).find((s) => s.getAttribute('Binding') === HTTP_REDIRECT);
  const location = sso?.getAttribute('Location') ?? '';
  if (!/^https?:\/\//.test(location)) throw new Error('no SingleSignOnService with the HTTP-Redirect binding');
  const signingCerts = Array.from(idp.getElementsByTagNameNS(MD, 'KeyDescriptor'))
    .filter((k) => (k.getAttribute('use') ?? 'signing') === 'signing')
    .flatMap((k) => Array.from(k.getElementsByTagNameNS(DS, 'X509Certificate')))
    .map((c: Element) => (c.textContent ?? '').replace(/\s+/g, ''))
    .filter((b64) => b64 !== '')
    .map(pem);
  if (signingCerts.length === 0) throw new Error('the IDPSSODescriptor has no signing certificate (KeyDescriptor with an X509Certificate)');
  return { entityId, ssoRedirectUrl: location, signingCerts };
}

function pem(b64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** The metadata of one provider, cached; a failed re-read keeps the last good copy. */
export class IdpMetadataSource {
  private cached?: { md: IdpMetadata; at: number };
  private pending?: Promise<IdpMetadata>;

  constructor(
    private readonly config: SamlProviderConfig,
    private readonly deps: { clock: Clock; fetch?: typeof fetch },
  ) {}

  async get(): Promise<IdpMetadata> {
    const now = this.deps.clock.now();
    if (this.cached && now - this.cached.at < MAX_AGE_MS) return this.cached.md;
    this.pending ??= this.load().finally(() => (this.pending = undefined));
    try {
      const md = await this.pending;
      this.cached = { md, at: now };
      return md;
    } catch (err) {
      if (this.cached) return this.cached.md;
      throw err;
    }
  }

  private async load(): Promise<IdpMetadata> {
    const where = 'url' in this.config.metadata ? this.config.metadata.url : this.config.metadata.file;
    let xml: string;
    try {
      xml =
        'url' in this.config.metadata ? await this.download(this.config.metadata.url) : await readFile(this.config.metadata.file, 'utf8');
    } catch (err) {
      throw new IdentityUnavailable(`SAML provider ${this.config.name}: cannot read its metadata ${where}: ${causeText(err)}`, {
        cause: err,
      });
    }
    try {
      return parseIdpMetadata(xml);
    } catch (err) {
      throw new IdentityUnavailable(`SAML provider ${this.config.name}: metadata ${where}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async download(url: string): Promise<string> {
    const res = await (this.deps.fetch ?? fetch)(url, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_BYTES) throw new Error('larger than 1 MB');
    return text;
  }
}
