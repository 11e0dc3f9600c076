/**
 * The embedded default: what `jitgate serve` runs when there is no configuration file. It starts the
 * demo database (./demo-db.ts) and returns a development GatewayConfig around it, written as YAML
 * (embeddedConfigYaml); ./banner.ts says how to use it, with the psql line from connectHint.
 *
 * Ports: HTTP 127.0.0.1:8080 and PostgreSQL 127.0.0.1:5433 (5432 is usually taken by a real server on
 * a developer's machine). Override with JITGATE_HTTP_PORT / JITGATE_PG_PORT (0 = any free port), and
 * the demo database's own port with JITGATE_DEMO_DB_PORT (default: any free port).
 */
import path from 'node:path';
import { parseConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../obs/log.js';
import { startDemoDatabase } from './demo-db.js';
import { DEMO_USERS, type DemoRole, type DemoUser } from './demo-users.js';

export { DEMO_USERS, type DemoRole, type DemoUser };

export const EMBEDDED_SOURCE = '<embedded default>';
/** The one connection of the embedded default. */
export const DEMO_CONNECTION = 'demo';
/** Connection names of the embedded default (read by `jitgate token` to check --connection). */
export const EMBEDDED_CONNECTIONS: readonly string[] = [DEMO_CONNECTION];

export const EMBEDDED_HTTP_PORT = 8080;
export const EMBEDDED_PG_PORT = 5433;
const DEFAULT_DATA_DIR = '.data';

/** The user of the psql line printed at startup: the demo policy `demo-oncall` grants her access at once. */
export const QUICKSTART_USER = 'erin';

/**
 * The embedded default, written as a jitgate.yaml would say it and read by the same parser, so the
 * console's configuration page and `jitgate config check` see exactly what a user would have written.
 * Every control is on, over the demo data that was seeded for it:
 *  - policies: admins get access at once, so does the on-call engineer erin (the printed psql line);
 *    engineers and auditors ask and an approver or an admin decides (break-glass allowed);
 *  - masking of the customers' emails, phone numbers, card numbers and password hashes for everyone
 *    but admins;
 *  - a guardrail refusing schema changes, TRUNCATE and UPDATE/DELETE without WHERE;
 *  - a review rule holding everyone's writes but the admins' until an approver (bob, dave) approves;
 *  - auditors (carol) read every session and the audit log.
 */
export function embeddedConfigYaml(o: {
  http: number;
  postgres: number;
  demo: { host: string; port: number; database: string; user: string };
}): string {
  return `# The embedded default (\`jitgate serve\` with no configuration file).
development: true
listeners:
  http: { host: 127.0.0.1, port: ${o.http} }
  postgres: { host: 127.0.0.1, port: ${o.postgres} }
tls: { required: false }
auth:
  postgres: { methods: [scram-sha-256] }
  tokenTtl: 8h
identities:
  dev: true                      # the development identity provider: ${DEMO_USERS.map((u) => u.user).join(', ')} (password = user name)
  admins: { groups: [admins] }
audit:
  auditors: [auditors]
connections:
  - name: ${DEMO_CONNECTION}
    host: ${o.demo.host}
    port: ${o.demo.port}
    database: ${o.demo.database}
    user: ${o.demo.user}         # trust authentication: the demo database has no password to hold
    tls: { mode: disable }
policies:
  - name: demo-admins
    connections: [${DEMO_CONNECTION}]
    groups: [admins]
    access: { approval: auto, maxDuration: 8h, requireReason: false }
  - name: demo-oncall
    connections: [${DEMO_CONNECTION}]
    groups: [oncall]
    access: { approval: auto, maxDuration: 8h, requireReason: false }
  - name: demo-engineers
    connections: [${DEMO_CONNECTION}]
    groups: [engineering, security]
    access: { approval: required, approvers: [approvers, admins], maxDuration: 8h, breakGlass: true, requireReason: true }
masking:
  rules:
    - name: customer-pii
      connections: [${DEMO_CONNECTION}]
      except: [admins]
      columns:
        customers.email: email
        customers.phone: phone
        customers.card_number: redact
        customers.password_hash: hash
guardrails:
  - name: no-destructive
    connections: [${DEMO_CONNECTION}]
    deny: { kinds: [ddl, truncate], unboundedWrites: true }
    reason: the demo data stays as it was seeded
reviews:
  - name: reviewed-writes
    connections: [${DEMO_CONNECTION}]
    except: [admins]
    match: { kinds: [insert, update, delete, merge] }
    approval: { approvers: [approvers, admins], timeout: 10m }
    reason: writes to the demo data are reviewed
`;
}

export interface EmbeddedOptions {
  /** Environment for the port overrides (default process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The demo database's wait limit for a request behind another session's transaction. */
  demoQueueTimeoutMs?: number;
}

export interface EmbeddedDefault {
  config: GatewayConfig;
  /** The configuration as YAML (what the console and `config check` see). */
  yaml: string;
  /** `--data-dir DIR` when the data directory is not the default one (for printed commands). */
  dataDirFlag: string;
  /** Stops the demo database (the gateway itself is closed by its owner first). */
  close(): Promise<void>;
}

export async function startEmbeddedDefault(dataDir: string, options: EmbeddedOptions = {}): Promise<EmbeddedDefault> {
  // Validate the overrides before starting anything.
  const { http, postgres, demo: demoPort } = embeddedPorts(options.env ?? process.env);
  const dir = path.resolve(dataDir);

  const demo = await startDemoDatabase(dir, {
    port: demoPort,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.demoQueueTimeoutMs !== undefined ? { queueTimeoutMs: options.demoQueueTimeoutMs } : {}),
  });
  try {
    const yaml = embeddedConfigYaml({ http, postgres, demo });
    const config = parseConfig(yaml, EMBEDDED_SOURCE, dir, { dataDir: dir });
    const dataDirFlag = dir === path.resolve(DEFAULT_DATA_DIR) ? '' : ` --data-dir ${shellQuote(dir)}`;
    return { config, yaml, dataDirFlag, close: () => demo.close() };
  } catch (err) {
    await demo.close();
    throw err;
  }
}

/** The hint lines (exported for tests and for other front ends, e.g. the web UI). */
export function connectHint(
  addresses: { http: string; postgres?: string },
  opts: { token?: string; user?: string; connection?: string; dataDirFlag?: string; caFile?: string } = {},
): string[] {
  const user = opts.user ?? QUICKSTART_USER;
  const connection = opts.connection ?? DEMO_CONNECTION;
  const mint = `jitgate token --user ${user} --connection ${connection}${opts.dataDirFlag ?? ''}`;
  if (!addresses.postgres) {
    return [`jitgate is serving ${addresses.http} (the PostgreSQL listener is disabled)`, `Mint access tokens with: ${mint}`];
  }
  const { host, port } = splitHostPort(addresses.postgres);
  // With the gateway's certificate at hand, psql checks it is talking to this gateway, not just to TLS.
  const tls = opts.caFile ? `sslmode=verify-full&sslrootcert=${encodeURIComponent(opts.caFile).replace(/%2F/g, '/')}` : 'sslmode=require';
  const url = `postgresql://${encodeURIComponent(user)}@${urlHost(host)}:${port}/${encodeURIComponent(connection)}?${tls}`;
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
