/**
 * The demo people of the development identity provider, and what each is for in the demo story.
 * Pure data (no imports beyond types), so the configuration can switch the development identity
 * provider on (`identities: { dev: true }`) without loading the demo database.
 */
import { randomBytes } from 'node:crypto';
import type { DevIdpConfig } from '../config/types.js';

export type DemoRole = 'engineer' | 'on-call engineer' | 'approver' | 'auditor' | 'admin';

export interface DemoUser {
  /** Login name (the psql user name); the development identity provider's password too. */
  user: string;
  displayName: string;
  email: string;
  role: DemoRole;
  /** Group claims the development identity provider issues. */
  groups: string[];
  /** What this person can do in the embedded default, in a few words (the startup banner). */
  part: string;
}

/**
 * alice asks for access and bob approves; erin's policy grants at once, so the psql line printed at
 * startup is hers; carol audits; dave administers and sees clear values.
 */
export const DEMO_USERS: readonly DemoUser[] = Object.freeze([
  {
    user: 'alice',
    displayName: 'Alice Anders',
    email: 'alice@example.com',
    role: 'engineer',
    groups: ['engineering'],
    part: 'requests access (console or `jitgate request demo`); an approver decides',
  },
  {
    user: 'bob',
    displayName: 'Bob Brandt',
    email: 'bob@example.com',
    role: 'approver',
    groups: ['engineering', 'approvers'],
    part: 'approves access requests and held writes (`jitgate approve ID`)',
  },
  {
    user: 'carol',
    displayName: 'Carol Chen',
    email: 'carol@example.com',
    role: 'auditor',
    groups: ['security', 'auditors'],
    part: 'reads every session, its replay and the audit log',
  },
  {
    user: 'dave',
    displayName: 'Dave Dunn',
    email: 'dave@example.com',
    role: 'admin',
    groups: ['platform', 'admins'],
    part: 'administers; access at once, sees clear values, writes without review',
  },
  {
    user: 'erin',
    displayName: 'Erin Ekberg',
    email: 'erin@example.com',
    role: 'on-call engineer',
    groups: ['engineering', 'oncall'],
    part: 'access at once by policy: the psql line above is hers',
  },
]);

export const DEMO_AGENT = { clientId: 'demo-agent', name: 'demo-agent', groups: ['agents'] };

/** The development identity provider's users (password = user name) and the demo agent. */
export function devIdpConfig(users: readonly DemoUser[] = DEMO_USERS): DevIdpConfig {
  return {
    users: users.map((u) => ({ user: u.user, password: u.user, displayName: u.displayName, email: u.email, groups: [...u.groups] })),
    // A new secret on every start: the development identity provider forgets everything on restart anyway.
    agent: { ...DEMO_AGENT, clientSecret: randomBytes(24).toString('base64url') },
  };
}
