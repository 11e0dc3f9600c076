/** Builds the MCP endpoint from the gateway's services (called by the composition root). */
import type { AccessService } from '../access/service.js';
import type { Router } from '../api/router.js';
import { AGENT_DEFAULTS } from '../config/agents.js';
import type { GatewayConfig } from '../config/types.js';
import type { Protocol } from '../core/types.js';
import { packageVersion } from '../core/version.js';
import type { IdentityService } from '../identity/service.js';
import { maskingFor, sourceMask } from '../masking/policy.js';
import type { Logger } from '../obs/log.js';
import type { ReviewService } from '../review/service.js';
import type { Store } from '../store/store.js';
import { DataSessions, type PostgresEndpoint } from './data-sessions.js';
import { MysqlSessions } from './mysql-sessions.js';
import { RedisSessions } from './redis-sessions.js';
import { HeldStatements } from './session-pool.js';
import { mountMcpEndpoint } from './endpoint.js';
import type { AgentQuotas } from './quota.js';

export interface McpModule {
  /** Ends the agents' data sessions (before the listeners drain). */
  close(): Promise<void>;
}

export interface StartMcpOptions {
  config: GatewayConfig;
  /** Shared with the session pipeline, which counts statements; MCP counts the rows it returns. */
  quotas: AgentQuotas;
  router: Router;
  identity: IdentityService;
  access: AccessService;
  store: Store;
  /** Where agents' data sessions reach the gateway's own listener of a protocol, once it is up. */
  endpoint: (protocol: Protocol) => PostgresEndpoint | undefined;
  /** Statement reviews, to name the review a held MySQL statement waits for. */
  reviews: ReviewService;
  log: Logger;
}

const IDLE_MS = 5 * 60_000;

export function startMcp(o: StartMcpOptions): McpModule {
  const agents = o.config.agents ?? AGENT_DEFAULTS;
  const held = new HeldStatements();
  const sessions = new DataSessions({
    endpoint: () => o.endpoint('postgres'),
    mintToken: async (who, connection) => (await o.access.mintToken(who, connection)).token,
    idleMs: IDLE_MS,
    held,
    log: o.log,
  });
  const mysql = new MysqlSessions({
    endpoint: () => o.endpoint('mysql'),
    mintToken: async (who, connection) => (await o.access.mintToken(who, connection)).token,
    pendingReview: (who, connection) => o.reviews.list(who, { state: 'pending', connection, user: who.user })[0]?.id,
    idleMs: IDLE_MS,
    held,
  });
  const redis = new RedisSessions({
    endpoint: () => o.endpoint('redis'),
    mintToken: async (who, connection) => (await o.access.mintToken(who, connection)).token,
    idleMs: IDLE_MS,
    maxItems: agents.maxRows,
    maxValueBytes: 64 * 1024,
  });
  const types = new Map(o.config.connections.map((c) => [c.name, c.type]));
  mountMcpEndpoint(o.router, {
    identity: o.identity,
    log: o.log,
    tools: {
      access: o.access,
      sessions,
      mysql,
      held,
      redis,
      connectionType: (name) => types.get(name),
      quotas: o.quotas,
      store: o.store,
      agents,
      // What describe_connection marks as masked: the same rules the data path applies.
      maskedColumns: (who, connection, columns) => {
        const { rules } = maskingFor(o.config.masking, connection, who.groups);
        const out = new Set<string>();
        for (const c of columns) {
          const name = `${c.schema}.${c.table}.${c.column}`;
          if (sourceMask(rules, name)) out.add(name);
        }
        return out;
      },
      version: packageVersion(),
    },
  });
  return {
    close: async () => {
      held.clear();
      await Promise.all([sessions.close(), mysql.close(), redis.close()]);
    },
  };
}
