/** The part of auth0's samlp (no published types) that the test IdP (./saml-idp-process.ts) uses. */
declare module 'samlp' {
  import type { NextFunction, Request, Response } from 'express';

  interface AuthOptions {
    issuer: string;
    cert: string;
    key: string;
    signResponse?: boolean;
    recipient?: string;
    destination?: string;
    lifetimeInSeconds?: number;
    profileMapper?: (user: { user: string; groups: string[] }) => {
      getClaims(): Record<string, unknown>;
      getNameIdentifier(): { nameIdentifier: string; nameIdentifierFormat?: string };
    };
    getUserFromRequest?: (req: Request) => unknown;
    getPostURL: (audience: string, samlRequestDom: unknown, req: Request, cb: (err: Error | null, url: string) => void) => void;
  }

  const samlp: {
    auth(options: AuthOptions): (req: Request, res: Response, next: NextFunction) => void;
    parseRequest(
      req: Request,
      cb: (err: Error | null, data?: { assertionConsumerServiceURL?: string; id?: string; issuer?: string }) => void,
    ): void;
  };
  export default samlp;
}
