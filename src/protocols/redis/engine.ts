/** Redis as a protocol engine: the listener, and the redis-cli connect block. */
import type { ListenerContext, ProtocolEngine } from '../../core/protocol-engine.js';
import { RedisListener } from './listener.js';

export function redisEngine(): ProtocolEngine {
  return {
    protocol: 'redis',
    createListener: (c: ListenerContext) => {
      const redisConnections = c.connections.filter((x) => x.type === 'redis').map((x) => x.name);
      return new RedisListener({
        host: c.host,
        port: c.port,
        tls: { context: c.tls.context },
        tlsRequired: c.tlsRequired,
        verifier: c.verifier,
        connections: () => redisConnections,
        resolveTarget: c.resolveTarget,
        openSession: c.openSession,
        acquireBackend: c.acquireBackend,
        onAuthFailure: c.onAuthFailure,
        onBackendConnect: c.onBackendConnect,
        log: c.log,
      });
    },
    // The user name chooses the connection: AUTH <user>@<connection> <token>.
    connectInstructions: (at, { connection, user }) => ({ redis: { host: at.host, port: at.port, username: `${user}@${connection}` } }),
  };
}
