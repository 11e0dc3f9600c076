/**
 * AI agents through the MCP endpoint, driven by the MCP SDK's own client against a real PostgreSQL:
 * the agent authenticates with an API key (a service identity), gets access just in time, and its SQL
 * goes through the gateway's own listener, so guardrails, reviews, masking, quotas and recording
 * apply exactly as for psql. A human approves what is held; the agent can approve nothing.
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';
import { ManualClock } from '../src/core/clock.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');

let server: PgServer;
let gw: TestGateway;
const clock = new ManualClock(Date.now());
const clients: Client[] = [];

beforeAll(async () => {
  server = await startPostgres();
  await server.query(`
    create table customers (id int primary key, name text, email text, card text);
    insert into customers select g, 'customer ' || g, 'person' || g || '@example.com', '4111111111111111' from generate_series(1, 250) g;
    grant all on customers to public;`);
  gw = await startTestGateway(server, {
    clock,
    extraYaml: `
policies:
  - name: agents-read
    connections: [app]
    groups: [agents, limited]
    access: { approval: auto, maxDuration: 1h, requireReason: true }
guardrails:
  - name: agents-no-ddl
    groups: [agents, limited]
    deny: { kinds: [ddl, truncate] }
reviews:
  - name: agent-writes
    groups: [agents]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
masking:
  rules:
    - name: agent-pii
      groups: [agents, limited]
      columns:
        customers.email: email
        customers.card: { strategy: partial, keep: 4 }
audit:
  auditors: [auditors]
agents:
  maxRows: 100
  holdWait: 200ms
  limits:
    - groups: [limited]
      statementsPerMinute: 3
      maxRows: 10
`,
  });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await gw?.close();
  await server?.cleanup();
});

async function apiKey(name: string, groups: string[]): Promise<{ key: string; id: string }> {
  const created = await gw.gateway.identity.apiKeys.create({ name, groups, ttlMs: 3_600_000, createdBy: 'test' });
  return { key: created.key, id: created.row.id };
}

async function agent(key: string): Promise<Client> {
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.httpUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

interface CallOutcome {
  isError: boolean;
  text: string;
  data: Record<string, unknown>;
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallOutcome> {
  const r = (await client.callTool({ name, arguments: args })) as {
    isError?: boolean;
    content: Array<{ text: string }>;
    structuredContent?: Record<string, unknown>;
  };
  return { isError: r.isError === true, text: r.content.map((c) => c.text).join('\n'), data: r.structuredContent ?? {} };
}

function humanToken(user: string, groups: string[]): string {
  return gw.gateway.identity.sessions.issue({ issuer: 'test', subject: user, user, groups }).accessToken;
}

async function cli(args: string[], bearer: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: process.stdin,
    env: { JITGATE_URL: gw.httpUrl, JITGATE_TOKEN: bearer, HOME: '/nonexistent' },
    cwd: process.cwd(),
    now: () => clock.now(),
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('the MCP endpoint', () => {
  it('answers 401 with the protected-resource metadata that names the identity provider', async () => {
    const res = await fetch(`${gw.httpUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain(`resource_metadata="${gw.httpUrl}/.well-known/oauth-protected-resource/mcp"`);
    const meta = (await (await fetch(`${gw.httpUrl}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(meta.resource).toBe(`${gw.httpUrl}/mcp`);
    expect(Array.isArray(meta.authorization_servers)).toBe(true);

    const bad = await fetch(`${gw.httpUrl}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer jgk_not-a-key', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('lists tools with schemas, gets access just in time, describes the schema with masked columns, and queries masked and capped', async () => {
    const { key } = await apiKey('report-bot', ['agents']);
    const c = await agent(key);
    const tools = (await c.listTools()).tools;
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        'access_request_status',
        'describe_connection',
        'list_connections',
        'list_sessions',
        'query',
        'query_result',
        'redis_command',
        'request_access',
      ].sort(),
    );
    const query = tools.find((t) => t.name === 'query')!;
    expect(query.inputSchema.required).toEqual(expect.arrayContaining(['connection', 'sql']));
    expect(query.description).toContain('waiting_for_approval');

    let conns = await call(c, 'list_connections');
    expect(conns.data.connections).toEqual([expect.objectContaining({ name: 'app', access: 'none', approval: 'auto' })]);

    const noGrant = await call(c, 'query', { connection: 'app', sql: 'select 1' });
    expect(noGrant.isError).toBe(true);
    expect(noGrant.text).toContain('no active access grant');

    const req = await call(c, 'request_access', { connection: 'app', duration: '30m', reason: 'weekly customer report' });
    expect(req.isError).toBe(false);
    expect(req.data.state).toBe('granted');
    const status = await call(c, 'access_request_status', { request_id: req.data.requestId });
    expect(status.data.state).toBe('granted');
    conns = await call(c, 'list_connections');
    expect(conns.data.connections).toEqual([expect.objectContaining({ name: 'app', access: 'granted' })]);

    const described = await call(c, 'describe_connection', { connection: 'app' });
    const customers = (described.data.tables as Array<{ name: string; columns: Array<{ name: string; masked?: boolean }> }>).find(
      (t) => t.name === 'customers',
    )!;
    expect(
      customers.columns
        .filter((col) => col.masked)
        .map((col) => col.name)
        .sort(),
    ).toEqual(['card', 'email']);
    expect(customers.columns.find((col) => col.name === 'name')!.masked).toBeUndefined();

    const rows = await call(c, 'query', { connection: 'app', sql: 'select id, name, email, card from customers order by id' });
    expect(rows.isError).toBe(false);
    expect(rows.data.truncated).toBe(true);
    const data = rows.data.rows as unknown[][];
    expect(data).toHaveLength(100);
    expect(data[0]![1]).toBe('customer 1');
    // Format-preserving: the domain stays, the person does not.
    expect(JSON.stringify(data)).not.toMatch(/person\d+@/);
    expect(String(data[0]![2])).toMatch(/^p\*+@example\.com$/);
    expect(JSON.stringify(data)).not.toContain('4111111111111111');
    expect(String(data[0]![3])).toMatch(/1111$/);
    expect(rows.text).toContain('truncated');

    const few = await call(c, 'query', { connection: 'app', sql: 'select count(*) from customers' });
    expect(few.data).toMatchObject({ status: 'ok', truncated: false, rows: [['250']] });
  });

  it('refuses what guardrails deny, with the rule and reason', async () => {
    const { key } = await apiKey('ddl-bot', ['agents']);
    const c = await agent(key);
    await call(c, 'request_access', { connection: 'app', duration: '30m', reason: 'schema checks' });
    const r = await call(c, 'query', { connection: 'app', sql: 'drop table customers' });
    expect(r.isError).toBe(true);
    expect(r.data).toMatchObject({ status: 'refused', code: '42501' });
    expect(r.text).toContain('agents-no-ddl');
    expect((await server.query('select count(*)::int n from customers')).rows[0]!.n).toBe(250);
  });

  it('holds a write for a human: the agent polls, a person approves with the CLI, the agent gets the result; the agent cannot approve', async () => {
    const { key } = await apiKey('fix-bot', ['agents', 'approvers']);
    const c = await agent(key);
    await call(c, 'request_access', { connection: 'app', duration: '30m', reason: 'fix a typo' });
    const held = await call(c, 'query', { connection: 'app', sql: "update customers set name = 'Customer One' where id = 1" });
    expect(held.isError).toBe(false);
    expect(held.data.status).toBe('waiting_for_approval');
    const reviewId = String(held.data.reviewId);
    expect(held.text).toContain('query_result');

    // Still waiting: nothing has run.
    const waiting = await call(c, 'query_result', { review_id: reviewId, wait_seconds: 0 });
    expect(waiting.data.status).toBe('waiting_for_approval');
    expect((await server.query('select name from customers where id = 1')).rows[0]!.name).toBe('customer 1');

    // An agent is never an approver, even in an approver group.
    const self = await fetch(`${gw.httpUrl}/api/reviews/${reviewId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(self.status).toBe(403);

    const approved = await cli(['approve', reviewId, '--comment', 'ok'], humanToken('bob', ['approvers']));
    expect(approved.code, approved.err).toBe(0);
    const result = await call(c, 'query_result', { review_id: reviewId, wait_seconds: 10 });
    expect(result.data).toMatchObject({ status: 'ok', command: 'UPDATE', rowCount: 1 });
    expect((await server.query('select name from customers where id = 1')).rows[0]!.name).toBe('Customer One');
  });

  it("enforces the agent's quotas with a clear error: statements per minute (over MCP and over psql alike) and its row cap", async () => {
    const { key } = await apiKey('busy-bot', ['limited']);
    const c = await agent(key);
    await call(c, 'request_access', { connection: 'app', duration: '30m', reason: 'polling' });
    const first = await call(c, 'query', { connection: 'app', sql: 'select id from customers order by id' });
    expect(first.data).toMatchObject({ status: 'ok', truncated: true });
    expect(first.data.rows as unknown[]).toHaveLength(10);
    await call(c, 'query', { connection: 'app', sql: 'select 1' });
    await call(c, 'query', { connection: 'app', sql: 'select 2' });
    const over = await call(c, 'query', { connection: 'app', sql: 'select 3' });
    expect(over.isError).toBe(true);
    expect(over.data).toMatchObject({ status: 'refused', code: '42501', reasons: ['statement_rate'] });
    expect(over.text).toContain('3 statements per minute');

    // The same agent with a token under its grant, straight from psql: the same budget, the same refusal.
    const { token } = await gw.gateway.access.mintToken(
      { user: 'apikey:busy-bot', groups: ['limited'], kind: 'service', via: 'apikey' },
      'app',
    );
    const native = await psql(gw.dsn({ user: 'apikey:busy-bot' }), token, ['-At', '-c', 'select 42']);
    expect(native.stdout).not.toContain('42');
    expect(native.stderr).toContain('rate limit reached: 3 statements per minute');

    clock.advance(61_000);
    expect((await call(c, 'query', { connection: 'app', sql: 'select 4' })).data.status).toBe('ok');
    const later = await psql(gw.dsn({ user: 'apikey:busy-bot' }), token, ['-At', '-c', 'select 42']);
    expect(later.stdout).toBe('42\n');
  });

  it('stops at an expired grant and a revoked API key', async () => {
    const { key, id } = await apiKey('short-bot', ['agents']);
    const c = await agent(key);
    await call(c, 'request_access', { connection: 'app', duration: '10m', reason: 'quick look' });
    expect((await call(c, 'query', { connection: 'app', sql: 'select 1' })).data.status).toBe('ok');
    clock.advance(11 * 60_000);
    const expired = await call(c, 'query', { connection: 'app', sql: 'select 1' });
    expect(expired.isError).toBe(true);
    expect(expired.text).toMatch(/grant|access/);

    await gw.gateway.identity.apiKeys.revoke(id, 'test');
    await expect(c.listTools()).rejects.toThrow(/401|unauthori/i);
  });

  it("records every agent session under the agent's identity, replayable like any other", async () => {
    const { key } = await apiKey('audit-bot', ['agents']);
    const c = await agent(key);
    await call(c, 'request_access', { connection: 'app', duration: '30m', reason: 'audit trail check' });
    await call(c, 'query', { connection: 'app', sql: 'select email from customers where id = 2' });
    const listed = await call(c, 'list_sessions', {});
    const sessions = listed.data.sessions as Array<{ id: string; connection: string; statements: number }>;
    expect(sessions[0]).toMatchObject({ connection: 'app' });
    const row = (await gw.gateway.store.listSessions({ user: 'apikey:audit-bot' }))[0]!;
    expect(row.applicationName).toBe('jitgate-mcp');
    const auditor = humanToken('dave', ['auditors']);
    const res = await fetch(`${gw.httpUrl}/api/sessions/${row.id}/events`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(res.status).toBe(200);
    const recorded = await res.text();
    expect(recorded).toContain('select email from customers where id = 2');
    // The recording holds what the agent was sent: masked.
    expect(recorded).toMatch(/p\*+@example\.com/);
    expect(recorded).not.toContain('person2@example.com');
  });

  it('serves the same tools over stdio with `jitgate mcp`, authenticated by an API key', async () => {
    const { key } = await apiKey('local-bot', ['agents']);
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', TSX, MAIN, 'mcp'],
      env: { PATH: process.env.PATH ?? '', JITGATE_URL: gw.httpUrl, JITGATE_TOKEN: key, HOME: '/nonexistent' },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'stdio-agent', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('query');
    const r = (await client.callTool({ name: 'list_connections', arguments: {} })) as { structuredContent?: { connections?: unknown[] } };
    expect(r.structuredContent?.connections).toEqual([expect.objectContaining({ name: 'app', access: 'none' })]);
  });
});
