import { describe, expect, it } from 'vitest';
import { parseIdpMetadata } from './saml-metadata.js';

const CERT = 'MIIBszCCAVmgAwIBAgIUQ0VSVA==';
const idp = (inner: string, entityId = 'https://idp.example.com/saml') => `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${inner}</md:IDPSSODescriptor>
</md:EntityDescriptor>`;
const signing = (use = 'signing') => `<md:KeyDescriptor use="${use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
  ${CERT}
</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
const sso = (binding = 'HTTP-Redirect') =>
  `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:${binding}" Location="https://idp.example.com/sso/${binding}"/>`;

describe('IdP metadata', () => {
  it('reads the entity ID, the HTTP-Redirect sign-on URL and the signing certificates', () => {
    const md = parseIdpMetadata(idp(signing() + signing('encryption') + sso('HTTP-POST') + sso()));
    expect(md.entityId).toBe('https://idp.example.com/saml');
    expect(md.ssoRedirectUrl).toBe('https://idp.example.com/sso/HTTP-Redirect');
    expect(md.signingCerts).toEqual([`-----BEGIN CERTIFICATE-----\n${CERT}\n-----END CERTIFICATE-----\n`]);
  });

  it('says what is missing', () => {
    expect(() => parseIdpMetadata('<nope')).toThrow(/not well-formed XML|no EntityDescriptor/);
    expect(() => parseIdpMetadata(idp(signing() + sso('HTTP-POST')))).toThrow('no SingleSignOnService with the HTTP-Redirect binding');
    expect(() => parseIdpMetadata(idp(signing('encryption') + sso()))).toThrow('no signing certificate');
    expect(() => parseIdpMetadata(idp(signing() + sso(), ''))).toThrow('no entityID');
    const sp =
      '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>';
    expect(() => parseIdpMetadata(sp)).toThrow('no EntityDescriptor with an IDPSSODescriptor');
  });
});
