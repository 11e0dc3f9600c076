/**
 * Identities of the embedded default: the development identity provider (mounted at /dev-idp on the
 * gateway's HTTP port) with the demo users, each signing in with their user name as password, a demo
 * agent for client credentials, and the `admins` group as administrators.
 */
import { randomBytes } from 'node:crypto';
import { defaultIdentities } from '../config/identities.js';
import type { IdentitiesConfig } from '../config/types.js';

export const DEMO_AGENT = { clientId: 'demo-agent', name: 'demo-agent', groups: ['agents'] };
/** Where the gateway mounts the development IdP (identity/wire.ts DEV_IDP_PATH; not imported, to keep this module light). */
const DEV_IDP_PATH = '/dev-idp';

export function demoIdentities(users: ReadonlyArray<{ user: string; displayName: string; email: string; groups: string[] }>): IdentitiesConfig {
  return {
    ...defaultIdentities(),
    admins: { groups: ['admins'] },
    devIdp: {
      users: users.map((u) => ({ user: u.user, password: u.user, displayName: u.displayName, email: u.email, groups: [...u.groups] })),
      // A new secret on every start: the dev IdP forgets everything on restart anyway.
      agent: { ...DEMO_AGENT, clientSecret: randomBytes(24).toString('base64url') },
    },
  };
}

/** Lines for the serve output: how to sign in, and the demo agent's client credentials. */
export function signInHint(httpAddress: string, identities: IdentitiesConfig, users: ReadonlyArray<{ user: string; role: string }>): string[] {
  const dev = identities.devIdp;
  if (!dev) return [];
  const base = httpAddress.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
  const who = users.map((u) => `${u.user} (${u.role})`).join(', ');
  return [
    `Sign in: jitgate login --url ${base}   (or --device). Demo users: ${who}; the password is the user name.`,
    `Demo agent: client credentials at ${base}${DEV_IDP_PATH}/token with client id ${dev.agent.clientId}, secret ${dev.agent.clientSecret}`,
    `Web console: ${base}/   (sign in as a demo user: request access as alice, approve as bob, audit as carol)`,
  ];
}
