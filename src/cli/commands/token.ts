/**
 * `jitgate token CONNECTION`: a token under the signed-in user's active grant, from the gateway's API.
 *
 * `jitgate token --user U --connection C [--ttl 15m]`: an administrator on the gateway host mints an
 * access token straight into the state store. It still rests on a grant: an admin-issued one
 * (reason "issued by an administrator on the gateway host", issuer recorded) lasting the token's ttl,
 * written to the audit log as `access.grant.created` like any other grant.
 *
 * The grant carries the person's groups, because masking and guardrails are scoped by them: stated
 * with --groups (or --no-groups), else those of the person's last sign-in on record, else (embedded
 * default only) the development identity provider's directory. When none of these knows the groups
 * the token is refused: "no groups" would quietly switch group-scoped rules off.
 *
 * Only the token goes to stdout (so it can be captured with `$(...)`); the expiry and a connect hint
 * go to stderr.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { ADMIN_GRANT_REASON, issueAdminToken, type GroupsSource } from '../../access/grant-tokens.js';
import { AccessRepository } from '../../access/repository.js';
import { AuditLog } from '../../audit/log.js';
import { isGroupName } from '../../config/identities.js';
import { IdentityRepository } from '../../identity/repository.js';
import { DEFAULTS, MAX_TOKEN_TTL_MS } from '../../config/schema.js';
import { formatDuration, tryParseDuration } from '../../core/duration.js';
import type { SqliteStore } from '../../store/sqlite.js';
import { GENERATED_CERT_FILE } from '../../tls/certificate.js';
import { apiClient } from '../api-client.js';
import { adminTarget, withStore, type AdminTarget } from '../context.js';
import { caPath } from '../credentials.js';
import { formatTime } from '../format.js';
import { CliError, type CliIo } from '../io.js';
import { short, time, type TokenJson } from './access-json.js';

export interface TokenOptions {
  /** Absent: the signed-in user's token from the API. */
  user?: string;
  connection?: string;
  ttl?: string;
  /** With --user: comma-separated groups; false: --no-groups (stated: none). */
  groups?: string | false;
  config?: string;
  dataDir?: string;
}

export async function tokenCommand(io: CliIo, opts: TokenOptions): Promise<void> {
  if (opts.connection === undefined) throw new CliError('name the connection: jitgate token CONNECTION');
  if (opts.user === undefined) return userToken(io, opts.connection, opts);
  return adminToken(io, { ...opts, user: opts.user, connection: opts.connection });
}

/** The signed-in user's token, bounded by their grant (the gateway decides the lifetime). */
async function userToken(io: CliIo, connection: string, opts: TokenOptions): Promise<void> {
  if (opts.ttl !== undefined)
    throw new CliError(
      '--ttl is for administrators with --user; your token lives as long as the gateway allows, at most until your grant ends',
    );
  if (opts.groups !== undefined)
    throw new CliError('--groups is for administrators with --user; your grant carries the groups you signed in with');
  const api = await apiClient(io);
  const t = await api.post<TokenJson>('/api/tokens', { connection });
  io.out(`${t.token}\n`);
  io.err(
    `token for ${t.user} on ${connection} expires ${time(t.expiresAt)} (grant ${short(t.grant.id)} ends ${time(t.grant.expiresAt)})\n`,
  );
  if (t.postgres) {
    const host = clientHost(t.postgres.host, api.url);
    const saved = caPath(io.env);
    const ca = existsSync(saved) ? saved : undefined;
    io.err(`use it as the password: ${clientCommand('postgres', host, t.postgres.port, t.user, connection, ca)}\n`);
    if (!ca) io.err(`(to verify the gateway's certificate too: jitgate ca --save, then ask for a token again)\n`);
  }
}

async function adminToken(io: CliIo, opts: TokenOptions & { user: string; connection: string }): Promise<void> {
  checkName('--user', opts.user);
  checkName('--connection', opts.connection);
  const target = await adminTarget(io, opts);

  const stated = statedGroups(opts.groups);
  let listener: { host: string; port: number } | undefined;
  let protocol: 'postgres' | 'mysql' | 'redis' = 'postgres';
  let defaultTtl = DEFAULTS.tokenTtlMs;
  // Sessions the token may open: as the gateway's config says (a token the tunnel would mint alike).
  let tokenUse = DEFAULTS.tokenUse;
  /** The embedded default's development identity provider knows its users' groups. */
  let directory: ReadonlyMap<string, readonly string[]> | undefined;
  if (target.config) {
    const names = target.config.connections.map((c) => c.name);
    if (!names.includes(opts.connection)) {
      throw new CliError(
        `unknown connection ${JSON.stringify(opts.connection)} in ${target.config.source}` +
          (names.length ? ` (configured: ${names.join(', ')})` : ' (it configures no connections)'),
      );
    }
    protocol = target.config.connections.find((c) => c.name === opts.connection)?.type ?? 'postgres';
    // The hint names the listener of the connection's own protocol, as configured.
    listener = target.config.listeners[protocol];
    defaultTtl = target.config.auth.tokenTtlMs;
    tokenUse = target.config.connections.find((c) => c.name === opts.connection)?.tokenUse ?? target.config.auth.tokenUse;
  } else {
    // Loaded lazily: only the embedded default needs it.
    const embedded = await import('../../demo/embedded.js');
    const known = embedded.EMBEDDED_CONNECTIONS;
    directory = new Map(embedded.DEMO_USERS.map((u) => [u.user, u.groups]));
    if (!known.includes(opts.connection)) {
      throw new CliError(`unknown connection ${JSON.stringify(opts.connection)} in the embedded default (it has: ${known.join(', ')})`);
    }
    try {
      listener = { host: '127.0.0.1', port: embedded.embeddedPorts(io.env).postgres };
    } catch {
      // A malformed port override only spoils the hint, not the token.
      listener = undefined;
    }
  }

  let ttlMs = defaultTtl;
  if (opts.ttl !== undefined) {
    const parsed = tryParseDuration(opts.ttl);
    if (parsed === undefined) throw new CliError(`--ttl: expected a duration such as 30s, 15m or 1h, got ${JSON.stringify(opts.ttl)}`);
    if (parsed < 1000) throw new CliError('--ttl: must be at least 1s');
    if (parsed > MAX_TOKEN_TTL_MS) throw new CliError(`--ttl: must be at most ${formatDuration(MAX_TOKEN_TTL_MS)}`);
    ttlMs = parsed;
  }

  const now = io.now();
  const { minted, groups, groupsFrom } = await withStore(target.storePath, async (store) => {
    const sqlite = store as SqliteStore;
    const db = sqlite.database;
    const { groups, groupsFrom } = stated ?? knownGroups(new IdentityRepository(db), directory, opts.user);
    const minted = await issueAdminToken(store, await AccessRepository.open(sqlite.sql), {
      user: opts.user,
      connection: opts.connection,
      ttlMs,
      now,
      issuedBy: `local-admin:${osUser()}`,
      groups,
      groupsFrom,
      audit: await AuditLog.open(sqlite.sql, io.now),
      tokenUse,
    });
    return { minted, groups, groupsFrom };
  });
  io.out(`${minted.token}\n`);
  io.err(
    `token ${minted.id} for ${opts.user} on ${opts.connection} expires ${formatTime(minted.expiresAt)} ` +
      `(${new Date(minted.expiresAt).toISOString()}, in ${formatDuration(ttlMs)})\n`,
  );
  io.err(`under admin-issued grant ${minted.grantId} (recorded: "${ADMIN_GRANT_REASON}")\n`);
  io.err(`groups: ${groups.length ? groups.join(',') : '(none)'} (${describeSource(groupsFrom)})\n`);
  if (listener && listener.port !== 0) {
    const host = listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host === '::' ? '::1' : listener.host;
    io.err(
      `use it as the password: ${clientCommand(protocol, host, listener.port, opts.user, opts.connection, generatedCertificate(target))}\n`,
    );
  }
}

/**
 * Where to reach the gateway's PostgreSQL listener from here: a specific address as configured; a
 * wildcard or loopback one by the name the API was reached by (the same machine, seen from here).
 */
export function clientHost(listenHost: string, apiUrl: string): string {
  const wildcardOrLoopback = ['0.0.0.0', '::', '', 'localhost', '::1'].includes(listenHost) || listenHost.startsWith('127.');
  return wildcardOrLoopback ? new URL(apiUrl).hostname.replace(/^\[|\]$/g, '') : listenHost;
}

/** --groups a,b / --no-groups: what the admin states (undefined: nothing stated). */
function statedGroups(flag: string | false | undefined): { groups: string[]; groupsFrom: GroupsSource } | undefined {
  if (flag === undefined) return undefined;
  if (flag === false) return { groups: [], groupsFrom: { kind: 'stated' } };
  const groups = flag
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  if (groups.length === 0) throw new CliError('--groups: name at least one group (or state --no-groups for a person in no group)');
  const bad = groups.find((g) => !isGroupName(g));
  if (bad !== undefined) throw new CliError(`--groups: ${JSON.stringify(bad)} is not a group name`);
  return { groups, groupsFrom: { kind: 'stated' } };
}

/** The groups the gateway knows for `user`: their last sign-in, else the embedded directory; else refuse. */
function knownGroups(
  identities: IdentityRepository,
  directory: ReadonlyMap<string, readonly string[]> | undefined,
  user: string,
): { groups: string[]; groupsFrom: GroupsSource } {
  const last = identities.lastFamilyOf(user);
  if (last) return { groups: last.groups, groupsFrom: { kind: 'sign-in', at: last.refreshedAt, issuer: last.issuer } };
  const listed = directory?.get(user);
  if (listed) return { groups: [...listed], groupsFrom: { kind: 'directory', issuer: 'development identity provider' } };
  throw new CliError(
    `the gateway has no sign-in on record for ${JSON.stringify(user)}, so their groups (which scope masking and guardrails) are unknown: ` +
      `state them with --groups GROUP[,GROUP...] (or --no-groups), or have them sign in once with \`jitgate login\``,
  );
}

function describeSource(from: GroupsSource): string {
  if (from.kind === 'stated') return 'stated on the command line, recorded in the audit log';
  if (from.kind === 'directory') return `from the ${from.issuer}'s users`;
  return `from their sign-in at ${formatTime(from.at)} via ${from.issuer}`;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function checkName(flag: string, value: string): void {
  // eslint-disable-next-line no-control-regex
  if (value === '' || value.length > 256 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new CliError(`${flag}: expected a non-empty name without control characters`);
  }
}

/**
 * How to connect with the token as the password, with the protocol's own client: verifying the
 * gateway's certificate against `ca` when we have it, else only requiring TLS.
 */
function clientCommand(
  protocol: 'postgres' | 'mysql' | 'redis',
  host: string,
  port: number,
  user: string,
  connection: string,
  ca?: string,
): string {
  if (protocol === 'mysql')
    return `mysql -h ${host} -P ${port} -u ${user} -p ${ca ? `--ssl-ca=${shellQuote(ca)} --ssl-verify-server-cert` : '--ssl'} ${connection}`;
  if (protocol === 'redis')
    return `redis-cli --tls ${ca ? `--cacert ${shellQuote(ca)} ` : ''}-h ${host} -p ${port} --user ${user}@${connection} --askpass`;
  const tls = ca ? `sslmode=verify-full sslrootcert=${libpqQuote(ca)}` : 'sslmode=require';
  return `psql "host=${host} port=${port} user=${user} dbname=${connection} ${tls}"`;
}

/**
 * On the gateway host: the self-signed certificate the gateway generated in its data directory (a
 * configured one is left to the operator's own trust store, since its file may hold no root).
 */
function generatedCertificate(target: AdminTarget): string | undefined {
  if (target.config?.tls.cert !== undefined) return undefined;
  const file = join(
    target.config?.dataDir ?? (target.source.kind === 'embedded' ? target.source.dataDir : '.'),
    'tls',
    GENERATED_CERT_FILE,
  );
  return existsSync(file) ? file : undefined;
}

/** A libpq keyword value: quoted when it holds a space or a quote. */
function libpqQuote(value: string): string {
  return /[\s'\\]/.test(value) ? `'${value.replace(/['\\]/g, (c) => `\\${c}`)}'` : value;
}

function shellQuote(value: string): string {
  return /^[\w./:@%+=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
