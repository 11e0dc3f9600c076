/**
 * `jitgate serve [--config FILE] [--data-dir DIR] [--workers N]`: run the gateway until SIGINT/SIGTERM,
 * then drain; with --workers, N gateway processes share the listeners (./serve-workers.ts).
 * The config is found as for the admin commands (--config, JITGATE_CONFIG, ./jitgate.yaml); with none,
 * the embedded default starts (demo database, state under --data-dir, default `.data`).
 */
import cluster from 'node:cluster';
import path from 'node:path';
import { findConfig, loadConfigFrom } from '../context.js';
import { CliError, type CliIo } from '../io.js';
import { parseWorkers, reportReady, superviseWorkers, untilDrainAsked } from './serve-workers.js';

export interface ServeOptions {
  config?: string;
  dataDir?: string;
  /** Gateway processes to run (--workers); default 1. */
  workers?: string;
}

export async function serveCommand(io: CliIo, opts: ServeOptions): Promise<void> {
  const workers = parseWorkers(opts.workers);
  const source = findConfig(io, opts.config, opts.dataDir);
  // Loaded lazily: the admin commands should not pay for the whole gateway.
  const { startGateway } = await import('../../main.js');
  if (source.kind === 'file') {
    const config = await loadConfigFrom(io, source.path, opts.dataDir);
    if (source.from !== 'flag' && !cluster.isWorker) {
      io.err(`using ${source.path} (${source.from === 'env' ? 'from JITGATE_CONFIG' : 'found in the current directory'})\n`);
    }
    // The primary of --workers runs no gateway of its own (the configuration is checked above, once).
    if (workers > 1 && cluster.isPrimary) return superviseWorkers(io, workers);
    const gateway = await explainStartFailure(() => startGateway(config, { env: io.env }));
    if (cluster.isWorker) {
      reportReady(gateway.addresses);
      await Promise.race([untilSignal(io), untilDrainAsked()]);
      await gateway.close();
      // The channel to the primary would keep this process alive.
      process.disconnect?.();
      return;
    }
    const { http, postgres } = gateway.addresses;
    io.err(`jitgate is serving: http ${http}${postgres ? `, postgres ${postgres}` : ''} (Ctrl-C to stop)\n`);
    if (config.identities.devIdp) {
      // identities.dev (development mode only): say how to sign in as the demo users.
      const { signInHint } = await import('../../demo/demo-identities.js');
      const { DEMO_USERS } = await import('../../demo/demo-users.js');
      io.err(
        signInHint(http, config.identities, DEMO_USERS)
          .map((l) => `${l}\n`)
          .join(''),
      );
    }
    await untilSignal(io);
    await gateway.close();
    return;
  }
  if (workers > 1) throw new CliError('--workers needs a configuration file; the embedded default runs as one process');
  const { startEmbeddedDefault } = await import('../../demo/embedded.js');
  const { embeddedLogs } = await import('../../demo/startup-logs.js');
  // In a terminal the banner below is what people read: logs go to a file (warnings also to stderr).
  const logs = embeddedLogs({
    dataDir: path.resolve(source.dataDir),
    level: 'info',
    terminal: process.stdout.isTTY === true,
    stderr: (t) => io.err(t),
  });
  const demo = await startEmbeddedDefault(source.dataDir, { env: io.env, logger: logs.logger });
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await explainStartFailure(() => startGateway(demo.config, { env: io.env, logger: logs.logger }));
  } catch (err) {
    await demo.close();
    await logs.close();
    throw err;
  }
  const { QUICKSTART_USER, DEMO_CONNECTION, DEMO_USERS } = await import('../../demo/embedded.js');
  const { startupBanner } = await import('../../demo/banner.js');
  const { GENERATED_CERT_FILE } = await import('../../tls/certificate.js');
  const quick = await quickStartAccess(
    gateway.access,
    QUICKSTART_USER,
    DEMO_USERS.find((u) => u.user === QUICKSTART_USER)?.groups ?? [],
    DEMO_CONNECTION,
    io.now(),
  );
  const agent = demo.config.identities.devIdp?.agent;
  const banner = startupBanner({
    http: gateway.addresses.http,
    ...(gateway.addresses.postgres ? { postgres: gateway.addresses.postgres } : {}),
    user: QUICKSTART_USER,
    ...(quick ? { token: quick.token, grant: { policy: quick.grant.policy, expiresAt: quick.grant.expiresAt } } : {}),
    dataDirFlag: demo.dataDirFlag,
    caFile: path.join(path.resolve(demo.config.dataDir), 'tls', GENERATED_CERT_FILE),
    ...(logs.file ? { logFile: logs.file } : {}),
    ...(agent ? { agent } : {}),
  });
  io.out(banner.join('\n') + '\n');
  await untilSignal(io);
  await gateway.close();
  await demo.close();
  await logs.close();
}

/**
 * The quick-start user's access for the printed psql line: her policy grants it at once, so this is
 * an ordinary request, decided and recorded like any other (reused while it has over an hour left).
 */
async function quickStartAccess(
  access: Awaited<ReturnType<typeof import('../../main.js').startGateway>>['access'],
  user: string,
  groups: string[],
  connection: string,
  now: number,
): Promise<{ token: string; grant: { policy: string | null; expiresAt: number } } | undefined> {
  const who = { user, groups: [...groups], kind: 'human' as const, via: 'local-admin' };
  try {
    const current = await access.activeGrant(user, connection);
    if (!current || current.expiresAt - now < 3_600_000) {
      await access.requestAccess(who, {
        connection,
        durationMs: 8 * 3_600_000,
        reason: 'quick start: the psql line printed by jitgate serve',
      });
    }
    const minted = await access.mintToken(who, connection);
    return { token: minted.token, grant: minted.grant };
  } catch {
    // No policy grants it at once (the configuration changed): the banner prints the line without a token.
    return undefined;
  }
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
