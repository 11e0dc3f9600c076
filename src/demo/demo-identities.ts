/**
 * Identities of the embedded default (and of `identities: { dev: true }`): the development identity
 * provider (mounted at /dev-idp on the gateway's HTTP port) with the demo users, each signing in with
 * their user name as password, and a demo agent for client credentials.
 */
import { defaultIdentities } from '../config/identities.js';
import type { IdentitiesConfig } from '../config/types.js';
import { DEMO_AGENT, devIdpConfig, type DemoUser } from './demo-users.js';

export { DEMO_AGENT };

/** Where the gateway mounts the development IdP (api/identity-wire.ts DEV_IDP_PATH; not imported, to keep this module light). */
const DEV_IDP_PATH = '/dev-idp';

/** The demo identities with `admins` as administrators (tests that build a config in code use this). */
export function demoIdentities(users?: readonly DemoUser[]): IdentitiesConfig {
  return { ...defaultIdentities(), admins: { groups: ['admins'] }, devIdp: devIdpConfig(users) };
}

/** Lines for the serve output: how to sign in, and the demo agent's client credentials. */
export function signInHint(
  httpAddress: string,
  identities: IdentitiesConfig,
  users: ReadonlyArray<{ user: string; role: string }>,
): string[] {
  const dev = identities.devIdp;
  if (!dev) return [];
  const base = httpAddress.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
  const who = users.map((u) => `${u.user} (${u.role})`).join(', ');
  return [
    `Sign in: jitgate login --url ${base}   (or --device). Demo users: ${who}; the password is the user name.`,
    `Demo agent: client credentials at ${base}${DEV_IDP_PATH}/token with client id ${dev.agent.clientId}, secret ${dev.agent.clientSecret}`,
  ];
}
