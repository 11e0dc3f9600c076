/** PostgreSQL as a protocol engine: the listener, and the psql-style connect block. */
import type { ListenerContext, ProtocolEngine } from '../../core/protocol-engine.js';
import { PostgresListener } from './listener.js';
import type { ClientAuthMethod } from './server-auth.js';

export interface PostgresEngineOptions {
  /** Client authentication methods offered, in preference order (`auth.postgres.methods`). */
  authMethods: ClientAuthMethod[];
}

export function postgresEngine(options: PostgresEngineOptions): ProtocolEngine {
  return {
    protocol: 'postgres',
    createListener: (c: ListenerContext) =>
      new PostgresListener({
        host: c.host,
        port: c.port,
        tls: c.tls,
        tlsRequired: c.tlsRequired,
        authMethods: options.authMethods,
        verifier: c.verifier,
        resolveTarget: c.resolveTarget,
        connectionNames: () => c.connections.map((x) => x.name),
        openSession: c.openSession,
        acquireBackend: c.acquireBackend,
        cancelKeys: c.cancelKeys,
        onAuthFailure: c.onAuthFailure,
        onBackendConnect: c.onBackendConnect,
        log: c.log,
      }),
    // The listener always offers TLS, so the command says sslmode=require whatever tls.required says.
    connectInstructions: (at, { connection }) => ({ postgres: { host: at.host, port: at.port, database: connection, sslmode: 'require' } }),
  };
}
