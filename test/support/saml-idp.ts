/**
 * Starts ./saml-idp-process.ts (a real SAML IdP: samlp) as a child process, and offers what the
 * SAML tests need: its metadata URL, a way to sign a user in without a browser (the same two HTTP
 * requests a browser makes), group changes, and re-signing of forged assertions with its own key.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SignedXml } from 'xml-crypto';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface SamlTestIdp {
  base: string;
  metadataUrl: string;
  entityId: string;
  /** The IdP's signing key and certificate (PEM), to forge responses it would have signed. */
  key: string;
  cert: string;
  /** Signs `user` in at the IdP for the AuthnRequest in `authorizationUrl`; the base64 SAMLResponse and where it is posted. */
  signIn(authorizationUrl: string, user: string): Promise<{ samlResponse: string; acs: string }>;
  setGroups(user: string, groups: string[] | null): Promise<void>;
  close(): Promise<void>;
}

export async function startSamlIdp(options: {
  users: Array<{ user: string; groups: string[] }>;
  signResponse?: boolean;
}): Promise<SamlTestIdp> {
  const child: ChildProcess = fork(join(ROOT, 'test/support/saml-idp-process.ts'), [], {
    execArgv: ['--import', TSX],
    env: { ...process.env, TEST_SAML_IDP_CONFIG: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; key: string; cert: string }>((resolveReady, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the test SAML IdP exited early (code ${code})`)));
    child.on('message', (m: { type: string; port: number; key: string; cert: string }) => {
      if (m.type === 'ready') resolveReady(m);
    });
  });
  const base = `http://127.0.0.1:${ready.port}`;
  let next = 0;
  return {
    base,
    metadataUrl: `${base}/metadata`,
    entityId: `${base}/idp`,
    key: ready.key,
    cert: ready.cert,
    async signIn(authorizationUrl, user) {
      const request = new URL(authorizationUrl).searchParams.get('SAMLRequest') ?? '';
      const res = await fetch(`${base}/sso`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ SAMLRequest: request, RelayState: '', username: user, password: user }).toString(),
      });
      const html = await res.text();
      const samlResponse = /name="SAMLResponse"\s+value="([^"]+)"/.exec(html)?.[1];
      const acs = /action="([^"]+)"/.exec(html)?.[1];
      if (!samlResponse || !acs)
        throw new Error(`the IdP did not answer with a SAMLResponse form (HTTP ${res.status}): ${html.slice(0, 200)}`);
      return { samlResponse, acs: acs.replace(/&amp;/g, '&') };
    },
    setGroups: (user, groups) =>
      new Promise<void>((done) => {
        const id = ++next;
        const onMessage = (m: { id?: number }) => {
          if (m.id !== id) return;
          child.off('message', onMessage);
          done();
        };
        child.on('message', onMessage);
        child.send({ type: 'setGroups', id, user, groups });
      }),
    close: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

const SIGNATURE = /<(?:ds:)?Signature[\s>][\s\S]*?<\/(?:ds:)?Signature>/;

/** The assertion's own signature removed (the Response is unsigned too unless the IdP signs it). */
export function stripAssertionSignature(xml: string): string {
  return xml.replace(SIGNATURE, '');
}

/** Signs the (only) Assertion anew with `key`: what an IdP holding that key would have sent. */
export function signAssertion(xml: string, key: string, cert: string): string {
  const sig = new SignedXml({
    privateKey: key,
    publicCert: cert,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: "//*[local-name(.)='Assertion']",
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(stripAssertionSignature(xml), {
    prefix: 'ds',
    location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

export const b64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');
export const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
