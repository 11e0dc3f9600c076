/**
 * What `jitgate serve` prints when it starts the embedded default: the psql line to paste first (on a
 * line of its own, nothing else on it), what to try there, where everything runs, and who the demo
 * users are and what each can do. Every claim here is what the embedded configuration
 * (./embedded.ts) makes true; the quick-start test runs it literally.
 */
import { DEMO_CONNECTION, connectHint } from './embedded.js';
import { DEMO_USERS, type DemoUser } from './demo-users.js';

export interface BannerInput {
  http: string;
  postgres?: string;
  /** The quick-start user's token, when one could be minted. */
  token?: string;
  user: string;
  /** The quick-start user's grant: the policy that granted it and when it ends. */
  grant?: { policy: string | null; expiresAt: number };
  dataDirFlag: string;
  /** The certificate the listeners present (self-signed, generated): psql verifies the gateway with it. */
  caFile?: string;
  /** Where the logs go (a file, in a terminal). */
  logFile?: string;
  agent?: { clientId: string; clientSecret: string };
  users?: readonly DemoUser[];
}

export function startupBanner(b: BannerInput): string[] {
  const base = reachable(b.http);
  const users = b.users ?? DEMO_USERS;
  const [psql, tokenNote] = connectHint(
    { http: b.http, ...(b.postgres ? { postgres: b.postgres } : {}) },
    {
      ...(b.token !== undefined ? { token: b.token } : {}),
      user: b.user,
      dataDirFlag: b.dataDirFlag,
      ...(b.caFile ? { caFile: b.caFile } : {}),
    },
  );
  const me = users.find((u) => u.user === b.user);
  const granted = b.grant
    ? `access granted at once by policy ${b.grant.policy ?? '(admin-issued)'}, until ${new Date(b.grant.expiresAt).toISOString().slice(11, 16)} UTC`
    : 'no access grant yet';
  const width = Math.max(...users.map((u) => u.user.length));
  const roleWidth = Math.max(...users.map((u) => u.role.length));
  return [
    `jitgate is running: the embedded default, with a demo database and demo users (no configuration file).`,
    ``,
    `Connect with psql as ${b.user} (${me?.role ?? 'demo user'}, ${granted}):`,
    ``,
    psql ?? '',
    ``,
    `  ${tokenNote ?? ''}`,
    `  Then try:`,
    `    SELECT * FROM customers LIMIT 3;          -- emails, phones, cards, hashes come back masked`,
    `    DROP TABLE orders;                        -- refused by the guardrail no-destructive`,
    `    UPDATE orders SET status = 'paid' WHERE id = 1;   -- held until an approver (bob, dave) approves:`,
    `                                              --   jitgate approve ID, or the console's Reviews page`,
    ``,
    `  Web console  ${base}/   (sign in as a demo user; the password is the user name)`,
    `  CLI          jitgate login --url ${base}   (or --device), then jitgate requests / approve / sessions`,
    ...(b.postgres ? [`  PostgreSQL   ${b.postgres}, connection "${DEMO_CONNECTION}" (a demo database in this process, PGlite)`] : []),
    ...(b.agent
      ? [`  Demo agent   client credentials at ${base}/dev-idp/token, client id ${b.agent.clientId}, secret ${b.agent.clientSecret}`]
      : []),
    ...(b.logFile ? [`  Logs         ${b.logFile}   (warnings and errors also show here)`] : []),
    ``,
    `  Demo users:`,
    ...users.map((u) => `    ${u.user.padEnd(width)}  ${u.role.padEnd(roleWidth)}  ${u.part}`),
    ``,
    `Ctrl-C stops the gateway.`,
  ];
}

function reachable(http: string): string {
  return http.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:').replace(/\/$/, '');
}
