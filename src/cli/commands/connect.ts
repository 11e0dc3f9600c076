/**
 * `jitgate connect CONNECTION [-- PSQL ARGS...]`: mint a fresh token under the signed-in user's grant
 * and launch psql with it in PGPASSWORD (the environment, never the command line, where `ps` and
 * shell history would show it), pointed at the gateway's PostgreSQL listener.
 *
 * `jitgate connect CONNECTION --tunnel [--port N]`: a local PostgreSQL endpoint on 127.0.0.1 for GUI
 * tools (see protocols/postgres/tunnel.ts); each new connection logs in with a token minted as needed.
 */
import { spawn } from 'node:child_process';
import { CommanderError } from 'commander';
import { LocalTunnel } from '../../protocols/postgres/tunnel.js';
import { apiClient, type ApiClient } from '../api-client.js';
import { CliError, type CliIo } from '../io.js';
import { short, time, type TokenJson } from './access-json.js';
import { clientHost } from './token.js';

export interface ConnectOptions {
  tunnel?: boolean;
  /** Local port of the tunnel. */
  port?: string;
  /** Override where the gateway's PostgreSQL listener is reached. */
  host?: string;
  pgPort?: string;
}

/** Mint a new token when the cached one has less than this left. */
const REFRESH_BEFORE_MS = 60_000;

export async function connectCommand(io: CliIo, connection: string, psqlArgs: string[], opts: ConnectOptions): Promise<void> {
  if (!opts.tunnel && opts.port !== undefined)
    throw new CliError('--port is the local port of --tunnel; use --pg-port for the gateway listener');
  if (opts.tunnel && psqlArgs.length) throw new CliError('psql arguments make no sense with --tunnel');
  const localPort = opts.port === undefined ? 0 : parsePort('--port', opts.port);
  const pgPort = opts.pgPort === undefined ? undefined : parsePort('--pg-port', opts.pgPort);
  const api = await apiClient(io);
  const first = await mint(api, connection);
  const endpoint = endpointOf(first, api.url, { host: opts.host, port: pgPort });
  if (opts.tunnel) return runTunnel(io, api, connection, first, endpoint, localPort);

  const dsn = [
    ['host', endpoint.host],
    ['port', String(endpoint.port)],
    ['user', first.user],
    ['dbname', connection],
    ['sslmode', endpoint.sslmode],
  ]
    .map(([k, v]) => `${k}=${conninfoValue(v!)}`)
    .join(' ');
  io.err(
    `connecting to ${connection} as ${first.user} (token valid until ${time(first.expiresAt)}, grant ${short(first.grant.id)} until ${time(first.grant.expiresAt)})\n`,
  );
  // psql needs the token, not the CLI's own API credential.
  const { JITGATE_TOKEN: _apiCredential, ...childEnv } = io.env;
  const code = await runPsql(io.env.JITGATE_PSQL || 'psql', [dsn, ...psqlArgs], { ...childEnv, PGPASSWORD: first.token });
  // psql's own exit status becomes ours (CommanderError carries it through runCli without a message).
  if (code !== 0) throw new CommanderError(code, 'jitgate.psql', '');
}

async function mint(api: ApiClient, connection: string): Promise<TokenJson> {
  const t = await api.post<TokenJson>('/api/tokens', { connection });
  if (!t.postgres) throw new CliError('the gateway has no PostgreSQL listener');
  return t;
}

interface Endpoint {
  host: string;
  port: number;
  sslmode: string;
}

function endpointOf(t: TokenJson, apiUrl: string, override: { host?: string; port?: number }): Endpoint {
  const pg = t.postgres!;
  return { host: override.host ?? clientHost(pg.host, apiUrl), port: override.port ?? pg.port, sslmode: pg.sslmode };
}

function runPsql(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'inherit', env });
    // Ctrl-C belongs to psql (it cancels the running query); jitgate waits for psql to exit.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    const done = () => process.off('SIGINT', ignore);
    child.on('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(
        err.code === 'ENOENT'
          ? new CliError(`cannot run ${command}: not found (install the PostgreSQL client, set JITGATE_PSQL, or use --tunnel)`)
          : new CliError(`cannot run ${command}: ${err.message}`),
      );
    });
    child.on('exit', (code, signal) => {
      done();
      resolve(code ?? (signal ? 128 + signalNumber(signal) : 1));
    });
  });
}

async function runTunnel(
  io: CliIo,
  api: ApiClient,
  connection: string,
  first: TokenJson,
  endpoint: Endpoint,
  localPort: number,
): Promise<void> {
  let cached = { token: first, staleAt: io.now() + first.ttlMs - REFRESH_BEFORE_MS };
  const tunnel = new LocalTunnel({
    port: localPort,
    gateway: {
      host: endpoint.host,
      port: endpoint.port,
      tls: endpoint.sslmode === 'require' ? 'require' : endpoint.sslmode === 'disable' ? 'disable' : 'prefer',
    },
    user: first.user,
    connection,
    token: async (fresh) => {
      if (fresh || io.now() >= cached.staleAt) {
        const t = await mint(api, connection);
        cached = { token: t, staleAt: io.now() + t.ttlMs - REFRESH_BEFORE_MS };
        io.err(`minted a new token (valid until ${time(t.expiresAt)})\n`);
      }
      return cached.token.token;
    },
    report: (line) => io.err(`${line}\n`),
  });
  let address: { host: string; port: number };
  try {
    address = await tunnel.listen();
  } catch (err) {
    throw new CliError(`cannot listen on 127.0.0.1:${localPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  io.out(`tunnel to ${connection} listening on ${address.host}:${address.port}\n`);
  io.err(
    `point your tool at host=${address.host} port=${address.port} dbname=${connection} (any user, no password, SSL off); ` +
      `grant ${short(first.grant.id)} lasts until ${time(first.grant.expiresAt)}. Other users of this machine can reach ` +
      'the port too. Ctrl-C stops the tunnel.\n',
  );
  await untilSignal();
  io.err('stopping the tunnel\n');
  await tunnel.close();
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function parsePort(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535)
    throw new CliError(`${flag}: expected a port number from 0 to 65535, got ${JSON.stringify(text)}`);
  return n;
}

/** libpq conninfo quoting: values with spaces, quotes or backslashes go in single quotes, escaped. */
function conninfoValue(v: string): string {
  return /^[^\s'\\]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}
