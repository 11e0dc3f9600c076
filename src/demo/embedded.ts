/**
 * The embedded default: what `jitgate serve` runs when there is no configuration file. It starts the
 * demo database (./demo-db.ts) and returns a development GatewayConfig around it, plus the one-line
 * hint that tells a newcomer how to connect with psql.
 *
 * Ports: HTTP 127.0.0.1:8080 and PostgreSQL 127.0.0.1:5433 (5432 is usually taken by a real server on
 * a developer's machine). Override with JITGATE_HTTP_PORT / JITGATE_PG_PORT (0 = any free port), and
 * the demo database's own port with JITGATE_DEMO_DB_PORT (default: any free port).
 */
import path from 'node:path';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../obs/log.js';
import type { PolicyRule } from '../policy/access.js';
import { startDemoDatabase } from './demo-db.js';
import { demoIdentities, signInHint } from './demo-identities.js';

export const EMBEDDED_SOURCE = '<embedded default>';
/** The one connection of the embedded default. */
export const DEMO_CONNECTION = 'demo';
/** Connection names of the embedded default (read by `jitgate token` to check --connection). */
export const EMBEDDED_CONNECTIONS: readonly string[] = [DEMO_CONNECTION];

export const EMBEDDED_HTTP_PORT = 8080;
export const EMBEDDED_PG_PORT = 5433;
const DEFAULT_DATA_DIR = '.data';

export type DemoRole = 'engineer' | 'approver' | 'auditor' | 'admin';

export interface DemoUser {
  /** Login name (the psql user name). */
  user: string;
  displayName: string;
  email: string;
  role: DemoRole;
  /** Group claims the development identity provider will issue. */
  groups: string[];
}

/** The demo identities; the identity and approval issues give them logins and policies. */
export const DEMO_USERS: readonly DemoUser[] = Object.freeze([
  { user: 'alice', displayName: 'Alice Anders', email: 'alice@example.com', role: 'engineer', groups: ['engineering'] },
  { user: 'bob', displayName: 'Bob Brandt', email: 'bob@example.com', role: 'approver', groups: ['engineering', 'approvers'] },
  { user: 'carol', displayName: 'Carol Chen', email: 'carol@example.com', role: 'auditor', groups: ['security', 'auditors'] },
  { user: 'dave', displayName: 'Dave Dunn', email: 'dave@example.com', role: 'admin', groups: ['platform', 'admins'] },
]);

/**
 * Access policies of the embedded default: admins get access at once; engineers and auditors ask
 * and an approver (or an admin) decides, with break-glass allowed for emergencies.
 */
export const DEMO_POLICIES: PolicyRule[] = [
  {
    name: 'demo-admins',
    connections: [DEMO_CONNECTION],
    groups: ['admins'],
    users: [],
    access: { approval: 'auto', approvers: [], approvals: 1, maxDurationMs: 8 * 3600_000, breakGlass: false, pendingExpiryMs: 3600_000, requireReason: false },
  },
  {
    name: 'demo-engineers',
    connections: [DEMO_CONNECTION],
    groups: ['engineering', 'security'],
    users: [],
    access: {
      approval: 'required',
      approvers: ['approvers', 'admins'],
      approvals: 1,
      maxDurationMs: 8 * 3600_000,
      breakGlass: true,
      pendingExpiryMs: 3600_000,
      requireReason: true,
    },
  },
];

export interface EmbeddedOptions {
  /** Environment for the port overrides (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where printConnectHint writes (default process.stdout). */
  write?: (text: string) => void;
  logger?: Logger;
  /** The demo database's queue timeout (see startDemoDatabase). */
  demoQueueTimeoutMs?: number;
}

export interface EmbeddedDefault {
  config: GatewayConfig;
  /** Stops the demo database (the gateway itself is closed by its owner first). */
  close(): Promise<void>;
  /**
   * Print how to connect: one psql line to paste (with `PGPASSWORD=<token>` in front when a token is
   * given) and one line on minting more tokens.
   */
  printConnectHint(addresses: { http: string; postgres?: string }, token?: string): void;
  /** Print how to sign in through the development identity provider (`jitgate login`). */
  printSignInHint(addresses: { http: string }): void;
}

export async function startEmbeddedDefault(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedDefault> {
  // Validate the overrides before starting anything.
  const { http: httpPort, postgres: pgPort, demo: demoPort } = embeddedPorts(options.env ?? process.env);
  const dir = path.resolve(dataDir);

  const demo = await startDemoDatabase(dir, {
    port: demoPort,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.demoQueueTimeoutMs !== undefined ? { queueTimeoutMs: options.demoQueueTimeoutMs } : {}),
  });

  const config: GatewayConfig = {
    source: EMBEDDED_SOURCE,
    development: true,
    dataDir: dir,
    listeners: {
      http: { host: '127.0.0.1', port: httpPort },
      postgres: { host: '127.0.0.1', port: pgPort },
    },
    tls: { required: false },
    metrics: { auth: 'none' },
    auth: {
      postgres: { methods: ['scram-sha-256'] },
      tokenTtlMs: 8 * 3600_000,
    },
    store: { type: 'sqlite', path: path.join(dir, 'jitgate.db') },
    connections: [
      {
        name: DEMO_CONNECTION,
        type: 'postgres',
        host: demo.host,
        port: demo.port,
        database: demo.database,
        user: demo.user,
        // Trust authentication: the demo database has no password to hold.
        tls: { mode: 'disable' },
        // Longer than the demo database's queue timeout, so a waiting client sees its clear 53300 error.
        connectTimeoutMs: 15_000,
      },
    ],
    identities: demoIdentities(DEMO_USERS),
    policies: DEMO_POLICIES,
    notifications: { webhooks: [] },
    log: { level: 'info' },
    shutdown: { drainTimeoutMs: 10_000 },
  };

  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const dataDirFlag = dir === path.resolve(DEFAULT_DATA_DIR) ? '' : ` --data-dir ${shellQuote(dir)}`;
  return {
    config,
    close: () => demo.close(),
    printConnectHint: (addresses, token) => write(connectHint(addresses, { token, dataDirFlag }).join('\n') + '\n'),
    printSignInHint: (addresses) => write(signInHint(addresses.http, config.identities, DEMO_USERS).map((l) => l + '\n').join('')),
  };
}

/** The hint lines (exported for tests and for other front ends, e.g. the web UI). */
export function connectHint(
  addresses: { http: string; postgres?: string },
  opts: { token?: string; user?: string; connection?: string; dataDirFlag?: string } = {},
): string[] {
  const user = opts.user ?? DEMO_USERS[0]?.user ?? 'alice';
  const connection = opts.connection ?? DEMO_CONNECTION;
  const mint = `jitgate token --user ${user} --connection ${connection}${opts.dataDirFlag ?? ''}`;
  if (!addresses.postgres) {
    return [`jitgate is serving ${addresses.http} (the PostgreSQL listener is disabled)`, `Mint access tokens with: ${mint}`];
  }
  const { host, port } = splitHostPort(addresses.postgres);
  const url = `postgresql://${encodeURIComponent(user)}@${urlHost(host)}:${port}/${encodeURIComponent(connection)}?sslmode=require`;
  const psql = `psql "${url}"`;
  // The first line is the bare command, so a triple-click copies exactly what the shell needs.
  if (opts.token !== undefined) {
    return [`PGPASSWORD=${shellQuote(opts.token)} ${psql}`, `(the password is a jitgate access token; mint more with: ${mint})`];
  }
  return [psql, `(the password is a jitgate access token; mint one with: ${mint})`];
}

/** The embedded default's ports after the environment overrides; throws on a malformed value. */
export function embeddedPorts(env: NodeJS.ProcessEnv): { http: number; postgres: number; demo: number } {
  return {
    http: portFromEnv(env, 'JITGATE_HTTP_PORT', EMBEDDED_HTTP_PORT),
    postgres: portFromEnv(env, 'JITGATE_PG_PORT', EMBEDDED_PG_PORT),
    demo: portFromEnv(env, 'JITGATE_DEMO_DB_PORT', 0),
  };
}

function portFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`${name} must be a port number from 0 to 65535 (got ${JSON.stringify(raw)})`);
  }
  return n;
}

/** Accepts `host:port`, `[v6]:port` or a URL (`postgresql://host:port`). */
function splitHostPort(address: string): { host: string; port: string } {
  let a = address.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '');
  a = a.replace(/^[^@]*@/, '');
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(a);
  if (v6) return { host: v6[1] as string, port: v6[2] as string };
  const i = a.lastIndexOf(':');
  if (i === -1) return { host: a, port: '5432' };
  return { host: a.slice(0, i), port: a.slice(i + 1) };
}

/** A wildcard listen address is reached through loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '::0') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
