/**
 * One SAML 2.0 identity provider as the gateway trusts it (SP-initiated Web Browser SSO): the
 * AuthnRequest it sends (HTTP-Redirect binding), the checks every Response must pass (HTTP-POST
 * binding), and the gateway's own SP metadata. Signature checking is @node-saml/node-saml's; this
 * module configures it strictly and adds what it leaves to the caller.
 *
 * A Response is accepted only when:
 *  - the signature node-saml requires verifies against a certificate in the IdP's metadata
 *    (`requireSigned`: assertion, response or both), exactly one assertion is present and only
 *    what is signed is read (node-saml returns the verified XML, so wrapped copies are ignored);
 *  - its InResponseTo names the AuthnRequest this sign-in sent (the caller claims that request
 *    once, before anything else, see ./saml-logins.ts), and so does the SubjectConfirmationData;
 *  - Issuer = the IdP's entity ID, Audience = the gateway's entity ID, Destination (when present)
 *    and the bearer SubjectConfirmationData's Recipient = this provider's ACS URL;
 *  - NotBefore / NotOnOrAfter of the conditions and the confirmation hold with `clockSkew`;
 *  - the XML contains no comments: they are invisible to the signature (exclusive c14n drops them)
 *    yet split text nodes such as a NameID, the "comment injection" of CVE-2017-11427 and kin. No
 *    IdP needs them, so any is refused.
 * The assertion's ID is then remembered until it expires, so the same assertion cannot be used twice.
 */
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import type { SamlProviderConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { mapGroups } from './claims.js';
import { isReservedForMachines } from './namespace.js';
import { IdpMetadataSource } from './saml-metadata.js';

const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
/** How long after the AuthnRequest its answer is accepted. */
export const SAML_REQUEST_TTL_MS = 10 * 60_000;

/** The Response is not acceptable. `reason` is for the user and the audit log; `detail` only for the log. */
export class SamlRefused extends Error {
  constructor(
    readonly reason: string,
    readonly detail?: string,
  ) {
    super(reason);
    this.name = 'SamlRefused';
  }
}

export interface SamlAssertionIdentity {
  /** The NameID: stable key of the person at this IdP. */
  subject: string;
  user: string;
  groups: string[];
  assertionId: string;
  /** When the assertion stops being valid (its replay record may go then). */
  expiresAt: number;
}

/** The gateway's own addresses for one provider, derived from its public URL. */
export interface SpEndpoints {
  entityId: string;
  acsUrl: string;
}

export class SamlProvider {
  readonly metadata: IdpMetadataSource;

  constructor(
    readonly config: SamlProviderConfig,
    private readonly deps: { clock: Clock; fetch?: typeof fetch },
  ) {
    this.metadata = new IdpMetadataSource(config, deps);
  }

  get name(): string {
    return this.config.name;
  }

  endpoints(publicOrigin: string): SpEndpoints {
    const base = `${publicOrigin}/api/auth/saml/${encodeURIComponent(this.name)}`;
    return { entityId: this.config.entityId ?? `${base}/metadata`, acsUrl: `${base}/acs` };
  }

  /** node-saml for one request or response: its ID generator and request cache are per call. */
  private saml(sp: SpEndpoints, extra: Partial<SamlConfig> & Pick<SamlConfig, 'idpCert'>): SAML {
    return new SAML({
      issuer: sp.entityId,
      audience: sp.entityId,
      callbackUrl: sp.acsUrl,
      wantAssertionsSigned: this.config.requireSigned !== 'response',
      wantAuthnResponseSigned: this.config.requireSigned !== 'assertion',
      acceptedClockSkewMs: this.config.clockSkewMs,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: SAML_REQUEST_TTL_MS,
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      ...extra,
    });
  }

  /** The IdP's sign-in URL carrying a deflated AuthnRequest with ID `requestId` (HTTP-Redirect binding). */
  async authorizeUrl(publicOrigin: string, requestId: string): Promise<string> {
    const md = await this.metadata.get();
    const saml = this.saml(this.endpoints(publicOrigin), {
      idpCert: md.signingCerts,
      entryPoint: md.ssoRedirectUrl,
      generateUniqueId: () => requestId,
      cacheProvider: noCache(),
    });
    return saml.getAuthorizeUrlAsync('', undefined, {});
  }

  /** The gateway's SP metadata for this provider (what the IdP administrator registers). */
  spMetadata(publicOrigin: string): string {
    const sp = this.endpoints(publicOrigin);
    // No IdP certificate is needed to describe the SP; node-saml insists on one being configured.
    return this.saml(sp, { idpCert: 'unused', wantAssertionsSigned: true }).generateServiceProviderMetadata(null, null);
  }

  /**
   * Verifies a base64 SAMLResponse answering AuthnRequest `request` (already claimed by the caller);
   * throws SamlRefused, or IdentityUnavailable when the IdP's metadata cannot be read.
   */
  async verify(
    publicOrigin: string,
    samlResponse: string,
    request: { requestId: string; createdAt: number },
  ): Promise<SamlAssertionIdentity> {
    const md = await this.metadata.get();
    const sp = this.endpoints(publicOrigin);
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    // Comments are refused before anything reads the XML (see the module comment).
    if (xml.includes('<!--'))
      throw new SamlRefused('the response contains XML comments, which no identity provider sends', 'comment in response');
    const saml = this.saml(sp, { idpCert: md.signingCerts, idpIssuer: md.entityId, cacheProvider: oneRequest(request) });
    let profile: Profile | null;
    try {
      ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      throw refusal(err);
    }
    if (!profile) throw new SamlRefused('the identity provider did not sign you in', 'no profile (NoPassive or logout response)');
    checkDestination(xml, sp.acsUrl);
    const assertion = parseAssertion(profile.getAssertionXml?.() ?? '');
    if (assertion.issuer !== md.entityId)
      throw new SamlRefused('the response comes from another identity provider', `issuer ${assertion.issuer}`);
    checkBearerConfirmation(assertion.element, sp.acsUrl, request.requestId);
    const subject = profile.nameID;
    if (typeof subject !== 'string' || subject.trim() === '') throw new SamlRefused('the assertion names no user (NameID)');
    const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
    const user = this.config.userAttribute === undefined ? subject : firstText(attributes[this.config.userAttribute]);
    if (user === undefined || user.trim() === '')
      throw new SamlRefused(`the assertion has no ${this.config.userAttribute} attribute to name the user`);
    if (isReservedForMachines(user))
      throw new SamlRefused(`the user name ${JSON.stringify(user)} starts with a prefix reserved for API keys and service accounts`);
    const groups = mapGroups(texts(attributes[this.config.groupsAttribute]), this.config.groupMap);
    const expiresAt = assertion.notOnOrAfter ?? request.createdAt + SAML_REQUEST_TTL_MS;
    return { subject, user, groups, assertionId: assertion.id, expiresAt: expiresAt + this.config.clockSkewMs };
  }
}

/** node-saml's InResponseTo check against the one request this response may answer. */
function oneRequest(request: { requestId: string; createdAt: number }): CacheProvider {
  let live = true;
  return {
    saveAsync: async () => null,
    getAsync: async (key) => (live && key === request.requestId ? new Date(request.createdAt).toISOString() : null),
    removeAsync: async (key) => {
      if (key === request.requestId) live = false;
      return null;
    },
  };
}

/** Requests are recorded by the caller (./saml-repository.ts), not by node-saml. */
function noCache(): CacheProvider {
  return { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null };
}

/** node-saml's error texts to sentences for the user; the original goes to the log. */
function refusal(err: unknown): SamlRefused {
  const detail = err instanceof Error ? err.message : String(err);
  const rules: Array<[RegExp, string]> = [
    [
      /signature|multiple assertions|Cannot obtain assertion|signed data/i,
      'the response is not signed by the identity provider as required',
    ],
    [/InResponseTo/i, 'the response does not answer the sign-in this browser started'],
    [/expired|too old/i, 'the assertion has expired'],
    [/not yet valid/i, 'the assertion is not valid yet (are the clocks of the gateway and the identity provider apart?)'],
    [/audience|AudienceRestriction/i, 'the assertion is meant for another service provider'],
    [/Unexpected issuer|issuer/i, 'the response comes from another identity provider'],
    // node-saml keeps only confirmations within their NotBefore/NotOnOrAfter: none left means out of time.
    [/No valid subject confirmation/i, 'the assertion has expired or is not valid yet'],
    [/SAML provider returned/i, 'the identity provider did not sign you in'],
  ];
  const hit = rules.find(([re]) => re.test(detail));
  return new SamlRefused(hit ? hit[1] : 'the response is not a valid SAML response', detail);
}

interface ParsedAssertion {
  element: Element;
  id: string;
  issuer: string;
  notOnOrAfter?: number;
}

function parseXml(xml: string): Element {
  const doc = new DOMParser({ errorHandler: () => undefined }).parseFromString(xml, 'text/xml');
  if (!doc.documentElement) throw new SamlRefused('the response is not well-formed XML');
  return doc.documentElement;
}

/** The verified assertion XML node-saml returned (only signed content is read from here on). */
function parseAssertion(xml: string): ParsedAssertion {
  const el = parseXml(xml);
  if (el.namespaceURI !== ASSERTION_NS || el.localName !== 'Assertion') throw new SamlRefused('the signed content is not an assertion');
  const id = el.getAttribute('ID') ?? '';
  if (id === '') throw new SamlRefused('the assertion has no ID');
  const issuer = children(el, ASSERTION_NS, 'Issuer')[0]?.textContent?.trim() ?? '';
  const conditions = children(el, ASSERTION_NS, 'Conditions')[0];
  const notOnOrAfter = time(conditions?.getAttribute('NotOnOrAfter'));
  return { element: el, id, issuer, ...(notOnOrAfter !== undefined ? { notOnOrAfter } : {}) };
}

/** Response@Destination, when the IdP sets it, must be this ACS (SAML Bindings 3.5.5.2). */
function checkDestination(xml: string, acsUrl: string): void {
  const root = parseXml(xml);
  if (root.namespaceURI !== PROTOCOL_NS || root.localName !== 'Response') throw new SamlRefused('not a SAML Response');
  const destination = root.getAttribute('Destination');
  if (destination && destination !== acsUrl)
    throw new SamlRefused('the response is addressed to another service provider', `Destination ${destination}`);
}

/**
 * Web Browser SSO profile 4.1.4.2: a bearer SubjectConfirmation whose data names this ACS as
 * Recipient, this request as InResponseTo, and a NotOnOrAfter (node-saml checked its times).
 */
function checkBearerConfirmation(assertion: Element, acsUrl: string, requestId: string): void {
  const subject = children(assertion, ASSERTION_NS, 'Subject')[0];
  const confirmations = subject
    ? children(subject, ASSERTION_NS, 'SubjectConfirmation').filter((c) => c.getAttribute('Method') === BEARER)
    : [];
  const data = confirmations.flatMap((c) => children(c, ASSERTION_NS, 'SubjectConfirmationData'));
  if (data.length === 0) throw new SamlRefused('the assertion has no bearer subject confirmation');
  const ok = data.some(
    (d) =>
      d.getAttribute('Recipient') === acsUrl &&
      d.getAttribute('InResponseTo') === requestId &&
      time(d.getAttribute('NotOnOrAfter')) !== undefined,
  );
  if (!ok) {
    const recipients = data.map((d) => d.getAttribute('Recipient')).join(', ');
    if (!data.some((d) => d.getAttribute('Recipient') === acsUrl)) {
      throw new SamlRefused('the assertion is addressed to another service provider', `Recipient ${recipients}`);
    }
    throw new SamlRefused(
      'the assertion does not answer the sign-in this browser started',
      'SubjectConfirmationData InResponseTo or NotOnOrAfter',
    );
  }
}

function children(el: Element, ns: string, name: string): Element[] {
  return Array.from(el.childNodes as ArrayLike<Node>).filter(
    (n): n is Element => n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === name,
  );
}

function time(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function texts(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return items.filter((x): x is string => typeof x === 'string' && x.trim() !== '');
}

function firstText(v: unknown): string | undefined {
  return texts(v)[0];
}
