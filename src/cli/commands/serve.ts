/**
 * `jitgate serve [--config FILE] [--data-dir DIR]`: run the gateway until SIGINT/SIGTERM, then drain.
 * The config is found as for the admin commands (--config, JITGATE_CONFIG, ./jitgate.yaml); with none,
 * the embedded default starts (demo database, state under --data-dir, default `.data`).
 */
import { issueAdminToken } from '../../access/grant-tokens.js';
import { AccessRepository } from '../../access/repository.js';
import type { SqliteStore } from '../../store/sqlite.js';
import { findConfig, loadConfigFrom } from '../context.js';
import { CliError, type CliIo } from '../io.js';

export interface ServeOptions {
  config?: string;
  dataDir?: string;
}

export async function serveCommand(io: CliIo, opts: ServeOptions): Promise<void> {
  const source = findConfig(io, opts.config, opts.dataDir);
  // Loaded lazily: the admin commands should not pay for the whole gateway.
  const { startGateway } = await import('../../main.js');
  if (source.kind === 'file') {
    const config = await loadConfigFrom(io, source.path, opts.dataDir);
    if (source.from !== 'flag') {
      io.err(`using ${source.path} (${source.from === 'env' ? 'from JITGATE_CONFIG' : 'found in the current directory'})\n`);
    }
    const gateway = await explainStartFailure(() => startGateway(config, { env: io.env }));
    const { http, postgres } = gateway.addresses;
    io.err(`jitgate is serving: http ${http}${postgres ? `, postgres ${postgres}` : ''} (Ctrl-C to stop)\n`);
    await untilSignal(io);
    await gateway.close();
    return;
  }
  const { DEMO_CONNECTION, DEMO_USERS, startEmbeddedDefault } = await import('../../demo/embedded.js');
  const demo = await startEmbeddedDefault(source.dataDir, { env: io.env, write: (t) => io.out(t) });
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await explainStartFailure(() => startGateway(demo.config, { env: io.env }));
  } catch (err) {
    await demo.close();
    throw err;
  }
  // A newcomer gets one line to paste: mint a token for the first demo user on the demo connection,
  // under an admin-issued grant (the person starting the gateway is its administrator).
  const first = DEMO_USERS[0];
  const token =
    first === undefined
      ? undefined
      : issueAdminToken(gateway.store, new AccessRepository((gateway.store as SqliteStore).database), {
          user: first.user,
          connection: DEMO_CONNECTION,
          ttlMs: demo.config.auth.tokenTtlMs,
          now: io.now(),
          issuedBy: 'local-admin:jitgate serve',
          groups: first.groups,
          groupsFrom: { kind: 'directory', issuer: 'development identity provider' },
          audit: gateway.audit,
        }).token;
  demo.printConnectHint(gateway.addresses, token);
  demo.printSignInHint(gateway.addresses);
  await untilSignal(io);
  await gateway.close();
  await demo.close();
}

/** Resolve on the first SIGINT/SIGTERM (graceful drain); a second one exits at once. */
function untilSignal(io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      io.err(`${signal}: draining sessions (send it again to stop at once)\n`);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Turn the usual operating-system refusals into one-line messages. */
async function explainStartFailure<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = e.address !== undefined ? ` ${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : '';
    switch (e.code) {
      case 'EADDRINUSE':
        throw new CliError(`cannot listen on${where}: the address is already in use`);
      case 'EADDRNOTAVAIL':
        throw new CliError(`cannot listen on${where}: no such local address`);
      case 'EACCES':
        throw new CliError(`cannot listen on${where}: permission denied`);
      default:
        throw err;
    }
  }
}
