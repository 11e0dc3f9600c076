/**
 * The shape of `jitgate.yaml`, its validation and the step that turns a validated file into the
 * defaults-applied GatewayConfig (./types.ts). Positions are not known here: every problem carries a
 * path inside the file, and ./load.ts maps paths to FILE:LINE:COL.
 *
 * Rules worth knowing:
 *  - unknown keys are errors everywhere (the `identities` section is defined in ./identities.ts);
 *  - an empty value (`key:` with nothing after it) counts as absent, so the default applies;
 *  - relative paths (dataDir, store.path, tls.cert/key, connections[].tls.ca and `file:` secret
 *    references) are relative to the directory of the config file, and come out absolute;
 *  - passwords must be secret references; a plain password is an error.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { Bad, bool, describeValue, duration, intBetween, isObj, leaf, nameList, text } from './leaf.js';
import type { BackendTlsMode, Protocol } from '../core/types.js';
import { tryParseSecretRef } from '../core/secret-ref.js';
import { buildIdentities, identitiesCrossCheck, identitiesSchema } from './identities.js';
import { auditSchema, buildAudit, buildRecording, recordingCrossCheck, recordingSchema } from './recording.js';
import { buildGuardrail, guardrailSchema } from './guardrails.js';
import { buildMasking, maskingSchema } from './masking.js';
import { buildReview, reviewSchema } from './reviews.js';
import { agentsSchema, buildAgents } from './agents.js';
import type { PolicyRule } from '../policy/access.js';
import type { ConnectionConfig, ConnectionCredentialsConfig, GatewayConfig, WebhookConfig } from './types.js';

/** Role names of ephemeral credentials start with this unless `credentials.rolePrefix` says otherwise. */
export const DEFAULT_ROLE_PREFIX = 'jitgate_';

export type ConfigPath = (string | number)[];

/** A problem found in the file, positioned by path; `related` points at an earlier definition. */
export interface SchemaProblem {
  path: ConfigPath;
  message: string;
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean;
  related?: ConfigPath;
}

export const DEFAULTS = {
  httpListener: { host: '127.0.0.1', port: 8080 },
  postgresListener: { host: '127.0.0.1', port: 5433 },
  mysqlListener: { host: '127.0.0.1', port: 3307 },
  redisListener: { host: '127.0.0.1', port: 6380 },
  dataDir: '.data',
  storeFile: 'jitgate.db',
  authMethods: ['scram-sha-256'] as Array<'scram-sha-256' | 'cleartext'>,
  tokenTtlMs: 15 * 60_000,
  // Tools reconnect with the same password (pools, DBeaver, psql's \c): see README "Token use".
  tokenUse: 'grant' as 'session' | 'grant',
  backendTlsMode: 'prefer' as BackendTlsMode,
  connectTimeoutMs: 5_000,
  drainTimeoutMs: 10_000,
  logLevel: 'info' as const,
  ports: { postgres: 5432, mysql: 3306, redis: 6379 } satisfies Record<Protocol, number>,
};

export const MAX_TOKEN_TTL_MS = 24 * 3_600_000;

// ---------------------------------------------------------------------------------------------
// Value checks with messages in the house style: "expected X, got Y" (shared ones in ./leaf.ts).

/** Listener ports may be 0: the system picks a free one (tests, side-by-side instances). */
const listenPort = () =>
  leaf('an integer between 0 and 65535', (v) => {
    const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
  });

const host = () => leaf('a host name or IP address', (v) => (typeof v === 'string' && /^[^\s/]+$/.test(v) ? v : undefined));

const port = () =>
  leaf('an integer between 1 and 65535', (v) => {
    const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
  });

const path = () => text('a file path');

function oneOf<const T extends string>(values: readonly T[]) {
  const what = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return leaf(what, (v) => (typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : undefined));
}

const connectionName = () =>
  leaf('a connection name (1-63 letters, digits, _ . or -, starting with a letter or digit)', (v) =>
    typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(v) ? v : undefined,
  );

const secretRef = () =>
  leaf(
    'a secret reference: env:NAME, file:PATH or secret:NAME',
    (v) => {
      if (typeof v !== 'string') return undefined;
      const r = tryParseSecretRef(v);
      if (r.ok) return v;
      if (/^(env|file|secret):/.test(v)) return new Bad(r.problem);
      return new Bad(
        'a plain password is not allowed in the config; use a secret reference instead: env:NAME, file:PATH, ' +
          'or secret:NAME after storing it with `jitgate secrets set NAME`',
      );
    },
    { secret: true },
  );

const authMethods = () =>
  leaf('a non-empty list of "scram-sha-256" and/or "cleartext"', (v) => {
    if (!Array.isArray(v) || v.length === 0) return undefined;
    const out: Array<'scram-sha-256' | 'cleartext'> = [];
    for (const [i, m] of v.entries()) {
      if (m !== 'scram-sha-256' && m !== 'cleartext') {
        return new Bad(`item ${i}: expected "scram-sha-256" or "cleartext", got ${describeValue(m)}`);
      }
      if (out.includes(m)) return new Bad(`"${m}" is listed twice`);
      out.push(m);
    }
    return out;
  });

// ---------------------------------------------------------------------------------------------
// The file's shape. All keys optional here; defaults are applied by buildConfig.

// Per-connection backend credentials (credentials/): `static` uses the stored user for every session;
// `ephemeral` creates a role per session that is a member of `roles` and is dropped when it ends.

/** PostgreSQL keeps 63 bytes of a name and silently truncates the rest: refuse instead of renaming. */
const roleNames = () =>
  leaf('a non-empty list of role names', (v) => {
    if (!Array.isArray(v)) return undefined;
    if (v.length === 0) return new Bad("list at least one role: a session's database user has no privileges but these");
    for (const [i, r] of v.entries()) {
      if (typeof r !== 'string' || r === '' || r.includes('\0') || Buffer.byteLength(r, 'utf8') > 63) {
        return new Bad(`item ${i}: expected a role name of 1 to 63 bytes, got ${describeValue(r)}`);
      }
    }
    return [...new Set(v as string[])];
  });

const rolePrefix = () =>
  leaf('a role name prefix: 1-40 lower-case letters, digits or _, starting with a letter or _', (v) => {
    if (typeof v !== 'string' || !/^[a-z_][a-z0-9_]{0,39}$/.test(v)) return undefined;
    if (v.startsWith('pg_')) return new Bad('role names starting with "pg_" are reserved by PostgreSQL');
    return v;
  });

/**
 * ACL rules for a Redis session's user (`+@read`, `~cache:*`, `&*`, `-flushall`). The gateway sets
 * the user's password and state itself, so rules about those are refused.
 */
const redisAclRules = () =>
  leaf('a non-empty list of Redis ACL rules such as "+@read", "~cache:*"', (v) => {
    if (!Array.isArray(v) || v.length === 0) return undefined;
    for (const [i, r] of v.entries()) {
      if (typeof r !== 'string' || !/^\S+$/.test(r))
        return new Bad(`item ${i}: expected one ACL rule without spaces, got ${describeValue(r)}`);
      if (/^[<>#!]/.test(r) || ['on', 'off', 'nopass', 'resetpass', 'reset'].includes(r.toLowerCase())) {
        return new Bad(
          `item ${i}: ${JSON.stringify(r)} is set by the gateway (password and state of the session's user); list permissions only`,
        );
      }
    }
    return [...new Set(v as string[])];
  });

const credentialsSchema = z.strictObject({
  mode: oneOf(['static', 'ephemeral'] as const).optional(),
  roles: roleNames().optional(),
  rolePrefix: rolePrefix().optional(),
  /** Redis: the ACL rules of each session's own ACL user (credentials/ephemeral/redis-acl.ts). */
  acl: redisAclRules().optional(),
  /** The gateway changes its own backend password this often (credentials/rotation/). */
  rotate: z.strictObject({ every: duration(60_000, 366 * 86_400_000) }).optional(),
});

const connectionSchema = z.strictObject({
  name: connectionName(),
  type: oneOf(['postgres', 'mysql', 'redis'] as const).optional(),
  host: host(),
  port: port().optional(),
  database: text('a database name').optional(),
  user: text('a user name').optional(),
  password: secretRef().optional(),
  tls: z
    .strictObject({
      mode: oneOf(['disable', 'prefer', 'require', 'verify-full'] as const).optional(),
      ca: path().optional(),
      servername: host().optional(),
    })
    .optional(),
  connectTimeout: duration(100, 5 * 60_000).optional(),
  credentials: credentialsSchema.optional(),
  /** MySQL: let sessions run LOAD DATA LOCAL INFILE (refused by default). */
  localInfile: bool().optional(),
  /** How many sessions one access token opens here (overrides auth.tokenUse). */
  tokenUse: oneOf(['session', 'grant'] as const).optional(),
});

// Access policies and notifications (the access issue). Shapes are documented in jitgate.example.yaml.

const MAX_GRANT_MS = 30 * 86_400_000;

const accessRulesSchema = z.strictObject({
  approval: oneOf(['auto', 'required'] as const).optional(),
  approvers: nameList('approver group names').optional(),
  approvals: intBetween(1, 10).optional(),
  maxDuration: duration(60_000, MAX_GRANT_MS).optional(),
  breakGlass: bool().optional(),
  pendingExpiry: duration(60_000, MAX_GRANT_MS).optional(),
  requireReason: bool().optional(),
  // A request still waiting after `after` is escalated: webhooks get a reminder, `to` may approve too.
  escalate: z.strictObject({ after: duration(60_000, MAX_GRANT_MS), to: nameList('group names') }).optional(),
});

const policySchema = z.strictObject({
  name: text('a policy name').optional(),
  connections: nameList('connection names or globs (* and ?)'),
  groups: nameList('group names ("*" = everyone signed in)', { allowEmpty: true }).optional(),
  users: nameList('user names', { allowEmpty: true }).optional(),
  access: accessRulesSchema.optional(),
});

export const NOTIFICATION_EVENTS = [
  'request',
  'approval',
  'denial',
  'revocation',
  'break_glass',
  'expiry',
  'review',
  'review_decision',
  'escalation',
] as const;

const webhookSchema = z.strictObject({
  name: text('a webhook name').optional(),
  url: leaf('an http:// or https:// URL', (v) => {
    if (typeof v !== 'string') return undefined;
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:' ? v : undefined;
    } catch {
      return undefined;
    }
  }),
  secret: secretRef().optional(),
  format: oneOf(['json', 'slack'] as const).optional(),
  events: leaf(`a list of ${NOTIFICATION_EVENTS.join(', ')}`, (v) => {
    if (!Array.isArray(v) || v.length === 0) return undefined;
    for (const [i, e] of v.entries()) {
      if (!(NOTIFICATION_EVENTS as readonly unknown[]).includes(e)) {
        return new Bad(`item ${i}: expected one of ${NOTIFICATION_EVENTS.join(', ')}, got ${describeValue(e)}`);
      }
    }
    return [...new Set(v as Array<(typeof NOTIFICATION_EVENTS)[number]>)];
  }).optional(),
  timeout: duration(100, 60_000).optional(),
  maxAttempts: intBetween(1, 20).optional(),
  initialBackoff: duration(10, 10 * 60_000).optional(),
});

/** An http(s) origin (a trailing `/` is fine; no path, query or credentials), kept as its origin. */
const publicUrl = () =>
  leaf('an http:// or https:// URL with no path, e.g. https://jitgate.example.com', (v) => {
    if (typeof v !== 'string') return undefined;
    try {
      const u = new URL(v);
      const bare = u.pathname === '/' && u.search === '' && u.hash === '' && u.username === '' && u.password === '';
      return (u.protocol === 'http:' || u.protocol === 'https:') && bare ? u.origin : undefined;
    } catch {
      return undefined;
    }
  });

export const configSchema = z.strictObject({
  development: bool().optional(),
  dataDir: path().optional(),
  listeners: z
    .strictObject({
      http: z
        .strictObject({
          host: host().optional(),
          port: listenPort().optional(),
          // The gateway as browsers and IdPs reach it: redirect URIs and links are built from it.
          publicUrl: publicUrl().optional(),
        })
        .optional(),
      postgres: z.strictObject({ enabled: bool().optional(), host: host().optional(), port: listenPort().optional() }).optional(),
      mysql: z.strictObject({ enabled: bool().optional(), host: host().optional(), port: listenPort().optional() }).optional(),
      redis: z.strictObject({ enabled: bool().optional(), host: host().optional(), port: listenPort().optional() }).optional(),
    })
    .optional(),
  tls: z.strictObject({ cert: path().optional(), key: path().optional(), required: bool().optional() }).optional(),
  auth: z
    .strictObject({
      postgres: z.strictObject({ methods: authMethods().optional() }).optional(),
      tokenTtl: duration(1_000, MAX_TOKEN_TTL_MS).optional(),
      // session: a token opens one data session and dies with it; grant: new logins until its TTL.
      tokenUse: oneOf(['session', 'grant'] as const).optional(),
    })
    .optional(),
  store: z.strictObject({ type: oneOf(['sqlite'] as const).optional(), path: path().optional() }).optional(),
  connections: z.array(connectionSchema).optional(),
  identities: identitiesSchema.optional(),
  recording: recordingSchema.optional(),
  audit: auditSchema.optional(),
  policies: z.array(policySchema).optional(),
  guardrails: z.array(guardrailSchema).optional(),
  masking: maskingSchema.optional(),
  reviews: z.array(reviewSchema).optional(),
  agents: agentsSchema.optional(),
  notifications: z.strictObject({ webhooks: z.array(webhookSchema).optional() }).optional(),
  // /metrics: open (auth: none) or behind a bearer token; default: none in development, token otherwise.
  metrics: z.strictObject({ auth: oneOf(['none', 'token'] as const).optional(), token: secretRef().optional() }).optional(),
  log: z.strictObject({ level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const).optional() }).optional(),
  shutdown: z.strictObject({ drainTimeout: duration(0, 3_600_000).optional() }).optional(),
});

export type ConfigFile = z.output<typeof configSchema>;

/** The keys an object in the schema accepts at `path` (for "did you mean" hints), if it is an object. */
export function allowedKeysAt(path: ConfigPath): string[] | undefined {
  let s: z.ZodType = configSchema;
  for (const seg of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject && typeof seg === 'string') {
      const next = (s.shape as Record<string, z.ZodType>)[seg];
      if (!next) return undefined;
      s = next;
    } else if (s instanceof z.ZodArray && typeof seg === 'number') {
      s = s.element as z.ZodType;
    } else {
      return undefined;
    }
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : undefined;
}

function unwrap(s: z.ZodType): z.ZodType {
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Checks that span fields. They run on the raw parsed YAML, whether or not the field checks passed,
// so one run reports every problem.

export function crossCheck(raw: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  if (!isObj(raw)) return problems;

  const connections = Array.isArray(raw.connections) ? raw.connections : [];
  const seen = new Map<string, number>();
  connections.forEach((c, i) => {
    if (!isObj(c) || typeof c.name !== 'string') return;
    const first = seen.get(c.name);
    if (first === undefined) seen.set(c.name, i);
    else {
      problems.push({
        path: ['connections', i, 'name'],
        message: `duplicate connection name ${JSON.stringify(c.name)}`,
        related: ['connections', first, 'name'],
      });
    }
  });

  connections.forEach((c, i) => {
    if (!isObj(c)) return;
    const type = c.type ?? 'postgres';
    if (type !== 'postgres' && type !== 'mysql') return;
    for (const [key, what] of [
      ['database', 'the database to open on the backend'],
      ['user', 'the backend user the gateway logs in as'],
    ] as const) {
      if (c[key] === undefined || c[key] === null) {
        problems.push({ path: ['connections', i, key], message: `required for a ${type} connection: ${what}` });
      }
    }
  });

  const development = raw.development === true;
  if (isObj(raw.identities) && raw.identities.dev === true && !development) {
    problems.push({
      path: ['identities', 'dev'],
      message:
        'the development identity provider (demo users whose password is their name) runs only in development mode: set development: true, or remove this line',
    });
  }
  const tls = isObj(raw.tls) ? raw.tls : {};
  if (tls.required === false && !development) {
    problems.push({
      path: ['tls', 'required'],
      message: 'TLS can be optional only in development mode: remove this line, or set development: true',
    });
  }
  const tlsRequired = typeof tls.required === 'boolean' ? tls.required : !development;
  if (typeof tls.cert === 'string' && tls.key === undefined) {
    problems.push({ path: ['tls', 'cert'], message: 'tls.key is needed as well (or remove both to use a generated certificate)' });
  }
  if (typeof tls.key === 'string' && tls.cert === undefined) {
    problems.push({ path: ['tls', 'key'], message: 'tls.cert is needed as well (or remove both to use a generated certificate)' });
  }

  const auth = isObj(raw.auth) ? raw.auth : {};
  const pgAuth = isObj(auth.postgres) ? auth.postgres : {};
  if (Array.isArray(pgAuth.methods) && !tlsRequired) {
    const i = pgAuth.methods.indexOf('cleartext');
    if (i >= 0) {
      problems.push({
        path: ['auth', 'postgres', 'methods', i],
        message:
          'cleartext authentication sends the token as is and needs TLS on every connection: set tls.required: true, ' +
          'or remove cleartext',
      });
    }
  }
  problems.push(...crossCheckCredentials(connections));
  problems.push(...crossCheckAccess(raw, connections));
  problems.push(...identitiesCrossCheck(raw.identities));
  const listeners = isObj(raw.listeners) ? raw.listeners : {};
  const http = isObj(listeners.http) ? listeners.http : {};
  if (
    isObj(raw.identities) &&
    Array.isArray(raw.identities.saml) &&
    raw.identities.saml.length > 0 &&
    raw.development !== true &&
    http.publicUrl === undefined
  ) {
    // The SP entity ID and ACS URL the IdP knows the gateway by derive from it; never from a request's Host.
    problems.push({ path: ['identities', 'saml'], message: "SAML sign-in needs the gateway's public URL: set listeners.http.publicUrl" });
  }
  problems.push(
    ...recordingCrossCheck(raw.recording, new Set(connections.flatMap((c) => (isObj(c) && typeof c.name === 'string' ? [c.name] : [])))),
  );
  return problems;
}

/** Policies: say whom they apply to, name real connections, and have approvers when approval is required. */
function crossCheckAccess(raw: Record<string, unknown>, connections: unknown[]): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const names = new Set(connections.flatMap((c) => (isObj(c) && typeof c.name === 'string' ? [c.name] : [])));
  const policies = Array.isArray(raw.policies) ? raw.policies : [];
  const seen = new Map<string, number>();
  policies.forEach((p, i) => {
    if (!isObj(p)) return;
    if (typeof p.name === 'string') {
      const first = seen.get(p.name);
      if (first === undefined) seen.set(p.name, i);
      else
        problems.push({
          path: ['policies', i, 'name'],
          message: `duplicate policy name ${JSON.stringify(p.name)}`,
          related: ['policies', first, 'name'],
        });
    }
    const listed = (v: unknown) => (Array.isArray(v) ? v.length > 0 : typeof v === 'string');
    if (!listed(p.groups) && !listed(p.users)) {
      problems.push({
        path: ['policies', i],
        message: 'say whom the policy applies to: `groups` (or "*" for everyone signed in) and/or `users`',
      });
    }
    const patterns = Array.isArray(p.connections) ? p.connections : typeof p.connections === 'string' ? [p.connections] : [];
    patterns.forEach((c, j) => {
      if (typeof c === 'string' && !c.includes('*') && !c.includes('?') && !names.has(c)) {
        problems.push({
          path: ['policies', i, 'connections', ...(Array.isArray(p.connections) ? [j] : [])],
          message: `no connection named ${JSON.stringify(c)}` + (names.size ? ` (configured: ${[...names].join(', ')})` : ''),
        });
      }
    });
    const access = isObj(p.access) ? p.access : undefined;
    if (access && (access.approval ?? 'required') === 'required' && !listed(access.approvers)) {
      problems.push({ path: ['policies', i, 'access'], message: 'approval: required needs `approvers` (one or more group names)' });
    }
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Defaults.

export interface BuildContext {
  source: string;
  /** Directory that relative paths in the file are relative to (the config file's directory). */
  baseDir: string;
  /** Replaces `dataDir` from the file (already absolute or relative to the process's directory). */
  dataDir?: string;
}

export function buildConfig(file: ConfigFile, ctx: BuildContext): GatewayConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.baseDir, p));
  const development = file.development ?? false;
  const dataDir = ctx.dataDir !== undefined ? resolve(ctx.dataDir) : abs(file.dataDir ?? DEFAULTS.dataDir);
  const pg = file.listeners?.postgres;
  const my = file.listeners?.mysql;
  // The MySQL listener is on when configured, or when a MySQL connection exists (unless disabled).
  const mysqlOn = my?.enabled ?? (my !== undefined || (file.connections ?? []).some((c) => c.type === 'mysql'));
  const rd = file.listeners?.redis;
  // Likewise the Redis listener (RESP2/3, TLS on the same port).
  const redisOn = rd?.enabled ?? (rd !== undefined || (file.connections ?? []).some((c) => c.type === 'redis'));
  const http = file.listeners?.http;
  return {
    source: ctx.source,
    development,
    dataDir,
    listeners: {
      http: {
        host: http?.host ?? DEFAULTS.httpListener.host,
        port: http?.port ?? DEFAULTS.httpListener.port,
        ...(http?.publicUrl !== undefined ? { publicUrl: http.publicUrl } : {}),
      },
      ...(pg?.enabled === false
        ? {}
        : { postgres: { host: pg?.host ?? DEFAULTS.postgresListener.host, port: pg?.port ?? DEFAULTS.postgresListener.port } }),
      ...(mysqlOn ? { mysql: { host: my?.host ?? DEFAULTS.mysqlListener.host, port: my?.port ?? DEFAULTS.mysqlListener.port } } : {}),
      ...(redisOn ? { redis: { host: rd?.host ?? DEFAULTS.redisListener.host, port: rd?.port ?? DEFAULTS.redisListener.port } } : {}),
    },
    metrics: {
      auth: file.metrics?.auth ?? (development ? 'none' : 'token'),
      ...(file.metrics?.token !== undefined ? { token: absoluteFileRef(file.metrics.token, abs) } : {}),
    },
    tls: {
      ...(file.tls?.cert !== undefined ? { cert: abs(file.tls.cert) } : {}),
      ...(file.tls?.key !== undefined ? { key: abs(file.tls.key) } : {}),
      required: file.tls?.required ?? !development,
    },
    auth: {
      postgres: { methods: file.auth?.postgres?.methods ?? [...DEFAULTS.authMethods] },
      tokenTtlMs: file.auth?.tokenTtl ?? DEFAULTS.tokenTtlMs,
      tokenUse: file.auth?.tokenUse ?? DEFAULTS.tokenUse,
    },
    store: { type: 'sqlite', path: file.store?.path !== undefined ? abs(file.store.path) : join(dataDir, DEFAULTS.storeFile) },
    connections: (file.connections ?? []).map((c): ConnectionConfig => {
      const type = c.type ?? 'postgres';
      return {
        name: c.name,
        type,
        host: c.host,
        port: c.port ?? DEFAULTS.ports[type],
        // crossCheck makes database and user required except for redis.
        database: c.database ?? '0',
        user: c.user ?? 'default',
        ...(c.password !== undefined ? { password: absoluteFileRef(c.password, abs) } : {}),
        tls: {
          mode: c.tls?.mode ?? DEFAULTS.backendTlsMode,
          ...(c.tls?.ca !== undefined ? { ca: abs(c.tls.ca) } : {}),
          ...(c.tls?.servername !== undefined ? { servername: c.tls.servername } : {}),
        },
        connectTimeoutMs: c.connectTimeout ?? DEFAULTS.connectTimeoutMs,
        ...(c.credentials ? { credentials: buildCredentials(c.credentials) } : {}),
        ...(c.credentials?.rotate ? { rotation: { everyMs: c.credentials.rotate.every } } : {}),
        ...(c.localInfile !== undefined ? { localInfile: c.localInfile } : {}),
        ...(c.tokenUse !== undefined ? { tokenUse: c.tokenUse } : {}),
      };
    }),
    identities: buildIdentities(file.identities, ctx.baseDir),
    recording: buildRecording(file.recording, dataDir, ctx.baseDir),
    audit: buildAudit(file.audit, dataDir, ctx.baseDir),
    policies: (file.policies ?? []).map(buildPolicy),
    guardrails: (file.guardrails ?? []).map(buildGuardrail),
    ...(file.masking ? { masking: buildMasking(file.masking) } : {}),
    reviews: (file.reviews ?? []).map(buildReview),
    agents: buildAgents(file.agents),
    notifications: { webhooks: (file.notifications?.webhooks ?? []).map((w, i) => buildWebhook(w, i, abs)) },
    log: { level: file.log?.level ?? DEFAULTS.logLevel },
    shutdown: { drainTimeoutMs: file.shutdown?.drainTimeout ?? DEFAULTS.drainTimeoutMs },
  };
}

/** Ephemeral credentials: PostgreSQL only (for now), with roles to grant; the other keys need that mode. */
function crossCheckCredentials(connections: unknown[]): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  connections.forEach((c, i) => {
    if (!isObj(c) || !isObj(c.credentials)) return;
    const at = ['connections', i, 'credentials'];
    const creds = c.credentials;
    if (isObj(creds.rotate) && !(typeof c.password === 'string' && c.password.startsWith('secret:'))) {
      // env: and file: are written by someone else; the gateway can keep only a secret it holds itself.
      problems.push({
        path: [...at, 'rotate'],
        message:
          'rotation needs `password: secret:NAME`: the gateway can store a new password only in its own secret store, not in an environment variable or a file',
        atKey: true,
      });
    }
    if (creds.mode === 'ephemeral' && c.type === 'redis') {
      // Redis: an ACL user per session, with the listed rules as its only permissions.
      if (creds.acl === undefined || creds.acl === null) {
        problems.push({
          path: at,
          message:
            'mode: ephemeral on a redis connection needs `acl`: the ACL rules of each session\'s own user (e.g. ["+@read", "~cache:*"])',
        });
      }
      if (creds.roles !== undefined && creds.roles !== null)
        problems.push({ path: [...at, 'roles'], message: 'redis connections use `acl`, not roles', atKey: true });
    } else if (creds.mode === 'ephemeral') {
      if (creds.acl !== undefined && creds.acl !== null)
        problems.push({ path: [...at, 'acl'], message: 'only used on redis connections', atKey: true });
      if ((c.type ?? 'postgres') !== 'postgres' && c.type !== 'mysql') {
        problems.push({ path: [...at, 'mode'], message: 'ephemeral credentials are available for postgres and mysql connections only' });
      }
      if (creds.roles === undefined || creds.roles === null) {
        problems.push({
          path: at,
          message: "mode: ephemeral needs `roles`: the roles each session's database user is made a member of (its only privileges)",
        });
      }
    } else {
      for (const key of ['roles', 'rolePrefix', 'acl'] as const) {
        if (creds[key] !== undefined && creds[key] !== null) {
          problems.push({ path: [...at, key], message: 'only used with mode: ephemeral', atKey: true });
        }
      }
    }
  });
  return problems;
}

function buildCredentials(c: NonNullable<ConfigFile['connections']>[number]['credentials'] & object): ConnectionCredentialsConfig {
  if (c.mode !== 'ephemeral') return { mode: 'static' };
  return { mode: 'ephemeral', roles: c.roles ?? [], rolePrefix: c.rolePrefix ?? DEFAULT_ROLE_PREFIX, ...(c.acl ? { acl: c.acl } : {}) };
}

function absoluteFileRef(ref: string, abs: (p: string) => string): string {
  return ref.startsWith('file:') ? `file:${abs(ref.slice('file:'.length))}` : ref;
}

export const ACCESS_DEFAULTS = {
  approval: 'required' as const,
  approvals: 1,
  maxDurationMs: 3_600_000,
  pendingExpiryMs: 3_600_000,
  breakGlass: false,
  requireReason: true,
};

export const WEBHOOK_DEFAULTS = { timeoutMs: 5_000, maxAttempts: 6, initialBackoffMs: 1_000 };

function buildPolicy(p: NonNullable<ConfigFile['policies']>[number], i: number): PolicyRule {
  const a = p.access;
  return {
    name: p.name ?? `policy-${i + 1}`,
    connections: p.connections,
    groups: p.groups ?? [],
    users: p.users ?? [],
    ...(a
      ? {
          access: {
            approval: a.approval ?? ACCESS_DEFAULTS.approval,
            approvers: a.approvers ?? [],
            approvals: a.approvals ?? ACCESS_DEFAULTS.approvals,
            maxDurationMs: a.maxDuration ?? ACCESS_DEFAULTS.maxDurationMs,
            breakGlass: a.breakGlass ?? ACCESS_DEFAULTS.breakGlass,
            pendingExpiryMs: a.pendingExpiry ?? ACCESS_DEFAULTS.pendingExpiryMs,
            ...(a.escalate ? { escalate: { afterMs: a.escalate.after, to: a.escalate.to } } : {}),
            requireReason: a.requireReason ?? ACCESS_DEFAULTS.requireReason,
          },
        }
      : {}),
  };
}

function buildWebhook(
  w: NonNullable<NonNullable<ConfigFile['notifications']>['webhooks']>[number],
  i: number,
  abs: (p: string) => string,
): WebhookConfig {
  return {
    name: w.name ?? `webhook-${i + 1}`,
    url: w.url,
    ...(w.secret !== undefined ? { secret: absoluteFileRef(w.secret, abs) } : {}),
    format: w.format ?? 'json',
    events: w.events ?? [...NOTIFICATION_EVENTS],
    timeoutMs: w.timeout ?? WEBHOOK_DEFAULTS.timeoutMs,
    maxAttempts: w.maxAttempts ?? WEBHOOK_DEFAULTS.maxAttempts,
    initialBackoffMs: w.initialBackoff ?? WEBHOOK_DEFAULTS.initialBackoffMs,
  };
}
