/**
 * `jitgate token --user U --connection C [--ttl 15m]`: an administrator on the gateway host mints an
 * access token straight into the state store. Only the token goes to stdout (so it can be captured
 * with `$(...)`); the expiry and a connect hint go to stderr.
 */
import { mintToken } from '../../access/tokens.js';
import { DEFAULTS, MAX_TOKEN_TTL_MS } from '../../config/schema.js';
import { formatDuration, tryParseDuration } from '../../core/duration.js';
import { adminTarget, withStore } from '../context.js';
import { formatTime } from '../format.js';
import { CliError, type CliIo } from '../io.js';

export interface TokenOptions {
  user: string;
  connection: string;
  ttl?: string;
  config?: string;
  dataDir?: string;
}

export async function tokenCommand(io: CliIo, opts: TokenOptions): Promise<void> {
  checkName('--user', opts.user);
  checkName('--connection', opts.connection);
  const target = await adminTarget(io, opts);

  let listener: { host: string; port: number } | undefined;
  let defaultTtl = DEFAULTS.tokenTtlMs;
  if (target.config) {
    const names = target.config.connections.map((c) => c.name);
    if (!names.includes(opts.connection)) {
      throw new CliError(
        `unknown connection ${JSON.stringify(opts.connection)} in ${target.config.source}` +
          (names.length ? ` (configured: ${names.join(', ')})` : ' (it configures no connections)'),
      );
    }
    listener = target.config.listeners.postgres;
    defaultTtl = target.config.auth.tokenTtlMs;
  } else {
    // Loaded lazily: only the embedded default needs it.
    const embedded = await import('../../demo/embedded.js');
    const known = embedded.EMBEDDED_CONNECTIONS;
    if (!known.includes(opts.connection)) {
      throw new CliError(
        `unknown connection ${JSON.stringify(opts.connection)} in the embedded default (it has: ${known.join(', ')})`,
      );
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
  const minted = await withStore(target.storePath, (store) =>
    mintToken(store, { user: opts.user, connection: opts.connection, ttlMs, now }),
  );
  io.out(`${minted.token}\n`);
  io.err(
    `token ${minted.id} for ${opts.user} on ${opts.connection} expires ${formatTime(minted.expiresAt)} ` +
      `(${new Date(minted.expiresAt).toISOString()}, in ${formatDuration(ttlMs)})\n`,
  );
  if (listener && listener.port !== 0) {
    const host = listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host === '::' ? '::1' : listener.host;
    io.err(
      `use it as the password: psql "host=${host} port=${listener.port} user=${opts.user} ` +
        `dbname=${opts.connection} sslmode=require"\n`,
    );
  }
}

function checkName(flag: string, value: string): void {
  // eslint-disable-next-line no-control-regex
  if (value === '' || value.length > 256 || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new CliError(`${flag}: expected a non-empty name without control characters`);
  }
}
