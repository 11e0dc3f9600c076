/**
 * The MCP tools an agent sees. Each call acts as the authenticated agent through the same services
 * people use: access requests go through access policy, SQL goes through the gateway's own listener
 * (data-sessions.ts). Descriptions are written for a model: what the tool does, what comes back,
 * and what to do next when something is refused or held.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { AccessService } from '../access/service.js';
import type { AgentsConfig } from '../config/agents.js';
import { formatDuration, tryParseDuration } from '../core/duration.js';
import type { Identity } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { DataSessions, QueryOutcome } from './data-sessions.js';
import type { MysqlSessions } from './mysql-sessions.js';
import type { RedisOutcome, RedisSessions } from './redis-sessions.js';
import type { HeldStatements } from './session-pool.js';
import { AgentQuotas, QuotaExceeded } from './quota.js';

export interface ToolServices {
  access: AccessService;
  sessions: DataSessions;
  mysql: MysqlSessions;
  /** Statements held for review, until their agent collects the outcome. */
  held: HeldStatements;
  redis: RedisSessions;
  /** The protocol of a configured connection ('postgres', 'mysql', 'redis'). */
  connectionType: (name: string) => string | undefined;
  quotas: AgentQuotas;
  store: Store;
  agents: AgentsConfig;
  /** Columns masked for this caller on a connection, as `schema.table.column`. */
  maskedColumns: (who: Identity, connection: string, columns: ColumnRef[]) => Set<string>;
  version: string;
}

export interface ColumnRef {
  schema: string;
  table: string;
  column: string;
}

type ToolResult = { content: Array<{ type: 'text'; text: string }>; structuredContent?: Record<string, unknown>; isError?: boolean };

/** Tables and columns the caller can see, as (schema, table, type, column, data type, nullable). */
const SCHEMA_SQL: Record<string, string> = {
  postgres: `SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable
  FROM information_schema.columns c
  JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
 WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND c.table_schema NOT LIKE 'pg_toast%'
 ORDER BY c.table_schema, c.table_name, c.ordinal_position`,
  mysql: `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.IS_NULLABLE
  FROM information_schema.COLUMNS c
  JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
 WHERE c.TABLE_SCHEMA = DATABASE()
 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`,
};

/** An MCP server with the gateway's tools, acting as `who` (one per request: the transport is stateless). */
export function buildMcpServer(who: Identity, s: ToolServices): McpServer {
  const server = new McpServer(
    { name: 'jitgate', version: s.version },
    {
      instructions:
        'jitgate is the only way to reach these databases. You act with your own identity: request access before you query, ' +
        'expect results to be masked and capped, and when a statement is held for approval, tell the user and poll query_result; ' +
        'a human decides, you cannot approve anything.',
    },
  );

  server.registerTool(
    'list_connections',
    {
      title: 'List connections',
      description:
        'Lists the database connections you can reach through jitgate, with your access state for each: "none" (request access first), ' +
        '"pending" (waiting for an approver) or "granted" (until the time given).',
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const connections = (await s.access.connectionsFor(who)).map((c) => ({
        name: c.name,
        type: s.connectionType(c.name),
        access: c.access.state,
        ...(c.access.state === 'granted' ? { grantedUntil: iso(c.access.until) } : {}),
        ...(c.access.state === 'pending' ? { requestId: c.access.requestId } : {}),
        ...(c.policy ? { approval: c.policy.approval, maxDuration: formatDuration(c.policy.maxDurationMs) } : {}),
      }));
      return ok(connections.length ? `${connections.length} connection(s)` : 'no connections are available to you', { connections });
    },
  );

  server.registerTool(
    'describe_connection',
    {
      title: 'Describe a connection',
      description:
        'Lists the tables and views of a connection with their columns and types, and which columns are masked for you ' +
        '(their values come back redacted). Needs granted access to the connection.',
      inputSchema: { connection: z.string().describe('connection name from list_connections') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ connection }) => {
      const wrong = notSql(s, connection);
      if (wrong) return wrong;
      const outcome = await runAsAgent(
        who,
        s,
        connection,
        SCHEMA_SQL[s.connectionType(connection) ?? 'postgres'] ?? SCHEMA_SQL.postgres!,
        10_000,
      );
      if (outcome.status !== 'ok') return outcomeResult(outcome);
      const refs = outcome.rows.map((r) => ({ schema: String(r[0]), table: String(r[1]), column: String(r[3]) }));
      const masked = s.maskedColumns(who, connection, refs);
      const tables = new Map<string, { schema: string; name: string; kind: string; columns: Array<Record<string, unknown>> }>();
      for (const r of outcome.rows) {
        const [schema, table, type, column, dataType, nullable] = r.map(String) as [string, string, string, string, string, string];
        const key = `${schema}.${table}`;
        let t = tables.get(key);
        if (!t) tables.set(key, (t = { schema, name: table, kind: type === 'VIEW' ? 'view' : 'table', columns: [] }));
        t.columns.push({
          name: column,
          type: dataType,
          nullable: nullable === 'YES',
          ...(masked.has(`${key}.${column}`) ? { masked: true } : {}),
        });
      }
      const list = [...tables.values()];
      return ok(`${list.length} table(s) and view(s) on ${connection}`, { connection, tables: list });
    },
  );

  server.registerTool(
    'query',
    {
      title: 'Run SQL',
      description:
        "Runs one SQL statement on a connection as you, through jitgate's guardrails, reviews, masking and recording. " +
        'Returns columns and rows (masked where policy says so, capped at a row limit: "truncated" tells you there were more; ' +
        'add LIMIT or filters instead of paging through everything). A refused statement comes back with status "refused" and the rule\'s reason. ' +
        'A statement that needs a human\'s approval comes back with status "waiting_for_approval" and a review id: tell the user, then call query_result with that id.',
      inputSchema: {
        connection: z.string().describe('connection name from list_connections'),
        sql: z.string().min(1).max(100_000).describe('one SQL statement'),
        max_rows: z.number().int().min(1).max(100_000).optional().describe('return at most this many rows (capped by your limit)'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
    async ({ connection, sql, max_rows }) => {
      const wrong = notSql(s, connection);
      if (wrong) return wrong;
      const cap = Math.min(max_rows ?? Infinity, rowCap(who, s));
      return outcomeResult(await runAsAgent(who, s, connection, sql, cap));
    },
  );

  server.registerTool(
    'redis_command',
    {
      title: 'Run a Redis command',
      description:
        "Runs one Redis command on a Redis connection as you, through jitgate's guardrails, masking and recording, e.g. " +
        '["GET", "user:42"] or ["HGETALL", "session:abc"]. Values come back masked where policy says so; long values and ' +
        'long lists are cut ("truncated"). Refused commands come back with status "refused" and the rule. Use SCAN with MATCH and COUNT rather than KEYS.',
      inputSchema: {
        connection: z.string().describe('a Redis connection name from list_connections'),
        command: z.array(z.string()).min(1).max(1000).describe('the command and its arguments, one string each'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
    async ({ connection, command }) => {
      if (s.connectionType(connection) !== 'redis')
        return failed(`"${connection}" is not a Redis connection; use query for SQL`, 'wrong_protocol');
      return redisResult(await s.redis.command(who, connection, command));
    },
  );

  server.registerTool(
    'query_result',
    {
      title: 'Result of a held statement',
      description:
        'Checks a statement that was held for approval (by review id from query). Waits up to wait_seconds for the decision, ' +
        'then returns the result once approved, "refused" with the approver\'s reason when denied or timed out, or "waiting_for_approval" again.',
      inputSchema: {
        review_id: z.string().min(6).describe('the review id query returned'),
        wait_seconds: z.number().int().min(0).max(60).optional().describe('how long to wait for a decision (default 10)'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ review_id, wait_seconds }) => {
      const outcome = await s.held.result(who, review_id, (wait_seconds ?? 10) * 1000);
      if (!outcome)
        return failed(
          `no held statement ${review_id} of yours is waiting on this gateway (it may have been withdrawn when its session ended)`,
          'unknown_review',
        );
      if (outcome.status === 'ok') s.quotas.countRows(who, outcome.rows.length);
      return outcomeResult(outcome);
    },
  );

  server.registerTool(
    'request_access',
    {
      title: 'Request access',
      description:
        'Asks for just-in-time access to a connection for a duration (e.g. "30m", "2h") with a reason people can judge. ' +
        'Policy either grants it at once or waits for human approvers; check with access_request_status or list_connections.',
      inputSchema: {
        connection: z.string().describe('connection name'),
        duration: z.string().describe('how long, e.g. "30m" or "2h"'),
        reason: z.string().min(3).max(2000).describe('why you need it (shown to approvers)'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
    async ({ connection, duration, reason }) => {
      const ms = tryParseDuration(duration);
      if (ms === undefined)
        return failed(`duration: expected a duration such as "30m" or "2h", got ${JSON.stringify(duration)}`, 'invalid_duration');
      try {
        const outcome = await s.access.requestAccess(who, { connection, durationMs: ms, reason });
        return ok(outcome.message, {
          requestId: outcome.request.id,
          state: outcome.request.state,
          reasons: outcome.reasons,
          ...(outcome.grant ? { grantedUntil: iso(outcome.grant.expiresAt) } : {}),
        });
      } catch (err) {
        return failed((err as Error).message, 'request_refused', (err as { reasons?: string[] }).reasons);
      }
    },
  );

  server.registerTool(
    'access_request_status',
    {
      title: 'Access request status',
      description: 'Shows the state of one of your access requests: pending, granted, denied, withdrawn or expired, with who decided.',
      inputSchema: { request_id: z.string().min(6).describe('the request id from request_access') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ request_id }) => {
      try {
        const r = await s.access.getRequest(who, request_id);
        return ok(`request ${r.id}: ${r.state}`, {
          requestId: r.id,
          connection: r.connection,
          state: r.state,
          approvals: r.approvals.map((a) => a.approver),
          decidedBy: r.decidedBy,
          decisionReason: r.decisionReason,
        });
      } catch (err) {
        return failed((err as Error).message, 'unknown_request');
      }
    },
  );

  server.registerTool(
    'list_sessions',
    {
      title: 'Your recent sessions',
      description: 'Lists your recent data sessions through jitgate (each recorded and replayable by auditors), newest first.',
      inputSchema: { limit: z.number().int().min(1).max(100).optional() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ limit }) => {
      const sessions = (await s.store.listSessions({ user: who.user, limit: limit ?? 20 })).map((x) => ({
        id: x.id,
        connection: x.connection,
        protocol: x.protocol,
        startedAt: iso(x.startedAt),
        endedAt: x.endedAt === null ? null : iso(x.endedAt),
        endReason: x.endReason,
        statements: x.statements,
      }));
      return ok(`${sessions.length} session(s)`, { sessions });
    },
  );

  return server;
}

/** SQL tools run on PostgreSQL and MySQL connections; Redis ones get a clear answer instead of a failed login. */
function notSql(s: ToolServices, connection: string): ToolResult | undefined {
  const type = s.connectionType(connection);
  if (type === 'redis') return failed(`"${connection}" is a Redis connection; use redis_command`, 'wrong_protocol');
  return undefined;
}

function redisResult(o: RedisOutcome): ToolResult {
  if (o.status === 'ok') return ok(o.truncated ? 'reply (truncated at the size limit)' : 'reply', { ...o });
  return { content: [{ type: 'text', text: `${o.status}: ${o.message}` }], structuredContent: { ...o }, isError: true };
}

async function runAsAgent(who: Identity, s: ToolServices, connection: string, sql: string, cap: number): Promise<QueryOutcome> {
  try {
    s.quotas.admitRows(who);
  } catch (err) {
    if (err instanceof QuotaExceeded) {
      return { status: 'refused', code: err.reason, message: `jitgate: ${err.message}; retry in ${Math.ceil(err.retryAfterMs / 1000)} s` };
    }
    throw err;
  }
  const left = s.quotas.rowsLeft(who);
  const limits = { maxRows: Math.max(1, Math.min(cap, left)), holdWaitMs: s.agents.holdWaitMs };
  const sessions = s.connectionType(connection) === 'mysql' ? s.mysql : s.sessions;
  const outcome = await sessions.query(who, connection, sql, limits);
  if (outcome.status === 'ok') s.quotas.countRows(who, outcome.rows.length);
  return outcome;
}

function rowCap(who: Identity, s: ToolServices): number {
  return s.quotas.limitFor(who)?.maxRows ?? s.agents.maxRows;
}

function outcomeResult(o: QueryOutcome): ToolResult {
  switch (o.status) {
    case 'ok': {
      const summary = o.truncated
        ? `${o.rows.length} row(s) shown; there are more (truncated at the row limit): narrow the query or add LIMIT`
        : `${o.command || 'OK'}: ${o.rowCount ?? o.rows.length} row(s)`;
      return ok(summary, { ...o });
    }
    case 'waiting_for_approval':
      return ok(
        `held for approval: review ${o.reviewId}. A human must approve it; call query_result with review_id "${o.reviewId}" to get the result.`,
        { ...o },
      );
    default:
      return {
        content: [{ type: 'text', text: `${o.status}: ${o.message}${o.detail ? ` (${o.detail})` : ''}` }],
        structuredContent: { ...o },
        isError: true,
      };
  }
}

function ok(summary: string, data: Record<string, unknown>): ToolResult {
  return { content: [{ type: 'text', text: `${summary}\n${JSON.stringify(data)}` }], structuredContent: data };
}

function failed(message: string, code: string, reasons?: string[]): ToolResult {
  return {
    content: [{ type: 'text', text: message }],
    structuredContent: { status: 'error', code, message, ...(reasons ? { reasons } : {}) },
    isError: true,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
