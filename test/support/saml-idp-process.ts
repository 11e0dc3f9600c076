/**
 * A real SAML 2.0 identity provider in its own process, for the SAML tests: auth0's samlp (an
 * express middleware that parses AuthnRequests and builds signed Responses with the `saml`
 * package) behind a small sign-in page. Reached only over HTTP, like any IdP:
 *   GET  /metadata   IdP metadata (entity ID, HTTP-Redirect SSO endpoint, signing certificate)
 *   GET  /sso        the HTTP-Redirect binding: a sign-in form carrying SAMLRequest and RelayState
 *   POST /sso        user name + password (= the user name) -> an auto-posting form with the signed
 *                    SAMLResponse for the ACS named in the request (HTTP-POST binding)
 * Users and groups come from $TEST_SAML_IDP_CONFIG; IPC {type:'setGroups', id, user, groups} changes
 * a user's groups (null removes the user) and answers {type:'done', id}. Reports
 * {type:'ready', port, key, cert} so tests can forge responses with the IdP's own key.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import samlp from 'samlp';
import { generate } from 'selfsigned';

interface Config {
  users: Array<{ user: string; groups: string[] }>;
  /** Sign the whole Response too (default: only the assertion). */
  signResponse?: boolean;
}

const config = JSON.parse(process.env.TEST_SAML_IDP_CONFIG ?? '{}') as Config;
const users = new Map(config.users.map((u) => [u.user, u.groups]));
const pems = await generate([{ name: 'commonName', value: 'jitgate test SAML IdP' }], {
  keyType: 'rsa',
  keySize: 2048,
  algorithm: 'sha256',
});

const app = express();
app.use(express.urlencoded({ extended: false }));
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((r) => server.once('listening', () => r()));
const port = (server.address() as AddressInfo).port;
const base = `http://127.0.0.1:${port}`;
const entityId = `${base}/idp`;
const certBody = pems.cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');

app.get('/metadata', (_req, res) => {
  res.type('application/samlmetadata+xml').send(`<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${base}/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`);
});

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

app.get('/sso', (req, res) => {
  const q = req.query as Record<string, string | undefined>;
  res.type('html').send(`<!DOCTYPE html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test SAML IdP</h1>
<form method="post" action="/sso">
  <input type="hidden" name="SAMLRequest" value="${esc(q.SAMLRequest ?? '')}">
  <input type="hidden" name="RelayState" value="${esc(q.RelayState ?? '')}">
  <label>User <input name="username"></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form></body></html>`);
});

/** Claims as SAML attributes: `groups` (multi-valued) and `email`; NameID = the user name. */
class ProfileMapper {
  constructor(private readonly u: { user: string; groups: string[] }) {}
  getClaims() {
    return { groups: this.u.groups, email: `${this.u.user}@example.com` };
  }
  getNameIdentifier() {
    return { nameIdentifier: this.u.user, nameIdentifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified' };
  }
}

app.post('/sso', (req, res, next) => {
  const body = req.body as Record<string, string | undefined>;
  const user = body.username ?? '';
  const groups = users.get(user);
  if (groups === undefined || body.password !== user) {
    res.status(401).type('html').send('<!DOCTYPE html><html><body><h1>Wrong user name or password</h1></body></html>');
    return;
  }
  samlp.parseRequest(req, (err: Error | null, data?: { assertionConsumerServiceURL?: string }) => {
    if (err || !data?.assertionConsumerServiceURL) {
      res.status(400).send('not a valid AuthnRequest');
      return;
    }
    const acs = data.assertionConsumerServiceURL;
    samlp.auth({
      issuer: entityId,
      cert: pems.cert,
      key: pems.private,
      signResponse: config.signResponse ?? false,
      recipient: acs,
      destination: acs,
      lifetimeInSeconds: 300,
      profileMapper: (u: { user: string; groups: string[] }) => new ProfileMapper(u),
      getUserFromRequest: () => ({ user, groups }),
      getPostURL: (_audience: string, _dom: unknown, _req: unknown, cb: (e: Error | null, url: string) => void) => cb(null, acs),
    })(req, res, next);
  });
});

process.on('message', (m: { type: string; id: number; user?: string; groups?: string[] | null }) => {
  if (m.type === 'setGroups' && m.user) {
    if (m.groups === null || m.groups === undefined) users.delete(m.user);
    else users.set(m.user, m.groups);
    process.send?.({ type: 'done', id: m.id });
  }
});

process.send?.({ type: 'ready', port, key: pems.private, cert: pems.cert });
