/**
 * The composition root: builds every part from a validated configuration and wires them together.
 * Nothing else in the gateway constructs services.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { TokenAuthority } from './access/tokens.js';
import { startHttpServer, type HttpServerHandle } from './api/http.js';
import { Router } from './api/router.js';
import type { GatewayConfig } from './config/types.js';
import type { BackendTarget } from './core/types.js';
import { resolveSecretRef } from './credentials/refs.js';
import { SecretStore } from './credentials/secret-store.js';
import { createLogger, type Logger } from './obs/log.js';
import { createMetrics, type Metrics } from './obs/metrics.js';
import { PostgresListener } from './protocols/postgres/listener.js';
import { SessionService } from './session/service.js';
import { openSqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';
import { ensureCertificate } from './tls/certificate.js';

export interface Gateway {
  addresses: { http: string; postgres?: string };
  store: Store;
  metrics: Metrics;
  router: Router;
  postgres?: PostgresListener;
  /** Graceful shutdown: drains sessions (up to the configured timeout), then closes everything. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger({ level: config.log.level });
  const now = options.now ?? Date.now;
  const store = openSqliteStore(config.store.path);
  let postgres: PostgresListener | undefined;
  let http: HttpServerHandle | undefined;
  let draining = false;
  // Listeners drain first, then HTTP stops, then the store they write to closes.
  const shutdown = async () => {
    draining = true;
    await postgres?.close(config.shutdown.drainTimeoutMs);
    await http?.close();
    store.close();
  };
  try {
    const orphans = store.closeOrphanSessions(now(), 'gateway_shutdown');
    if (orphans > 0) log.warn({ sessions: orphans }, 'closed sessions left open by an earlier gateway process');

    const targets = await resolveTargets(config, store, options.env ?? process.env);
    const certificate = await ensureCertificate(config.dataDir, { cert: config.tls.cert, key: config.tls.key });
    if (certificate.generated) log.info({ cert: certificate.certPath }, 'generated a self-signed TLS certificate');
    const secureContext = tls.createSecureContext({ cert: certificate.cert, key: certificate.key });
    const certificateDer = new X509Certificate(certificate.cert).raw;

    const metrics = createMetrics();
    const tokens = new TokenAuthority(store);
    const sessions = new SessionService(store, metrics, log, now);
    let postgresAddress: string | undefined;
    if (config.listeners.postgres) {
      const listenerConfig = config.listeners.postgres;
      postgres = new PostgresListener({
        host: listenerConfig.host,
        port: listenerConfig.port,
        tls: { context: secureContext, certificateDer },
        tlsRequired: config.tls.required,
        authMethods: config.auth.postgres.methods,
        verifier: {
          scramCandidates: (user, connection) => tokens.scramCandidates(user, connection, now()),
          verifyCleartext: (user, connection, token) => tokens.verifyCleartext(user, connection, token, now()),
        },
        resolveTarget: (name) => targets.get(name),
        openSession: (info) => sessions.open({ ...info, protocol: 'postgres' }),
        onAuthFailure: (info) => {
          metrics.authFailuresTotal.inc({ protocol: 'postgres', reason: info.reason });
          log.warn({ ...info }, 'client authentication failed');
          try {
            store.recordAuthFailure({ at: now(), ...info });
          } catch (err) {
            log.error({ err }, 'cannot record failed login');
          }
        },
        onBackendConnect: (connection, seconds) =>
          metrics.backendConnectSeconds.observe({ protocol: 'postgres', connection }, seconds),
        log,
      });
      postgresAddress = await postgres.listen();
      log.info({ address: postgresAddress }, 'postgres listener up');
    }

    // API routes are added by the services that own them (identity, access, ...).
    const router = new Router();

    http = await startHttpServer({
      fallback: (req, res) => router.handle(req, res),
      host: config.listeners.http.host,
      port: config.listeners.http.port,
      metrics,
      logger: log,
      ready: () => {
        const reasons: string[] = [];
        if (draining) reasons.push('draining');
        if (!store.ping()) reasons.push('store_unreachable');
        if (postgres && !postgres.listening) reasons.push('postgres_listener_down');
        return { ok: reasons.length === 0, reasons };
      },
    });

    let closing: Promise<void> | undefined;
    return {
      addresses: { http: http.address, postgres: postgresAddress },
      store,
      metrics,
      router,
      postgres,
      close: () => {
        closing ??= (async () => {
          log.info('gateway shutting down');
          await shutdown();
          log.info('gateway stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await shutdown();
    throw err;
  }
}

async function resolveTargets(config: GatewayConfig, store: Store, env: NodeJS.ProcessEnv): Promise<Map<string, BackendTarget>> {
  const secretStore = new SecretStore(store, { env });
  const targets = new Map<string, BackendTarget>();
  for (const c of config.connections) {
    if (c.type !== 'postgres') continue;
    targets.set(c.name, {
      connection: c.name,
      protocol: c.type,
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password === undefined ? undefined : await resolveSecretRef(c.password, { secretStore, env }),
      tls: { ...c.tls, ca: c.tls.ca === undefined ? undefined : await readCa(c.name, c.tls.ca) },
      connectTimeoutMs: c.connectTimeoutMs,
    });
  }
  return targets;
}

async function readCa(connection: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`connection "${connection}": cannot read tls.ca ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
      cause: err,
    });
  }
}
