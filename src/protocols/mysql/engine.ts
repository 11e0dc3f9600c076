/** MySQL/MariaDB as a protocol engine: the listener, and the mysql-client connect block. */
import type { ListenerContext, ProtocolEngine } from '../../core/protocol-engine.js';
import { MysqlListener } from './listener.js';

export function mysqlEngine(): ProtocolEngine {
  return {
    protocol: 'mysql',
    createListener: (c: ListenerContext) => {
      const named = (name: string) => c.connections.find((x) => x.name === name);
      return new MysqlListener({
        host: c.host,
        port: c.port,
        tls: { context: c.tls.context },
        tlsRequired: c.tlsRequired,
        verifier: c.verifier,
        resolveTarget: c.resolveTarget,
        isConnection: (name) => named(name) !== undefined,
        // KILL QUERY runs with the connection's stored credential.
        killTarget: c.resolveTarget,
        localFilesAllowed: (name) => named(name)?.localInfile === true,
        mysqlConnections: c.connections.filter((x) => x.type === 'mysql').map((x) => x.name),
        sessionRoles: (name) => {
          const creds = named(name)?.credentials;
          return creds?.mode === 'ephemeral' ? [...creds.roles] : [];
        },
        openSession: c.openSession,
        acquireBackend: c.acquireBackend,
        onAuthFailure: c.onAuthFailure,
        onBackendConnect: c.onBackendConnect,
        cancelKeys: c.cancelKeys,
        log: c.log,
      });
    },
    // The database names the connection; the user is the person's own name.
    connectInstructions: (at, { connection, user }) => ({ mysql: { host: at.host, port: at.port, user, database: connection } }),
  };
}
