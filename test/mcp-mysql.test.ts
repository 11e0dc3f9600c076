/**
 * The MCP SQL tools on a MySQL connection, against a real MariaDB, through the gateway's own MySQL
 * listener: the agent's grant, masking by source column, guardrails, a held write that a person
 * approves while the agent polls, and the recording under the agent's name.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';

let my: MariadbServer;
let gw: MysqlTestGateway;
let agent: Client;

beforeAll(async () => {
  my = await startMariadb();
  gw = await startMysqlTestGateway(my, {
    extraYaml: `
policies:
  - name: agents-app
    connections: [app]
    groups: [agents]
    access: { approval: auto, maxDuration: 1h, requireReason: false }
guardrails:
  - name: agents-no-ddl
    groups: [agents]
    deny: { kinds: [ddl] }
reviews:
  - name: agent-writes
    groups: [agents]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
masking:
  rules:
    - name: agent-pii
      groups: [agents]
      columns:
        customers.email: email
agents:
  holdWait: 300ms
`,
  });
  const { key } = await gw.gateway.identity.apiKeys.create({ name: 'sql-bot', groups: ['agents'], ttlMs: 3_600_000, createdBy: 'test' });
  agent = new Client({ name: 'test-agent', version: '1.0.0' });
  await agent.connect(
    new StreamableHTTPClientTransport(new URL(`${gw.gateway.addresses.http}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
}, 60_000);

afterAll(async () => {
  await agent?.close().catch(() => undefined);
  await gw?.close();
  await my?.cleanup();
});

async function call(
  name: string,
  args: Record<string, unknown>,
): Promise<{ isError: boolean; text: string; data: Record<string, unknown> }> {
  const r = (await agent.callTool({ name, arguments: args })) as {
    isError?: boolean;
    content: Array<{ text: string }>;
    structuredContent?: Record<string, unknown>;
  };
  return { isError: r.isError === true, text: r.content.map((c) => c.text).join('\n'), data: r.structuredContent ?? {} };
}

describe('MCP on a MySQL connection', () => {
  it('describes and queries as the agent, masked; refuses DDL; holds a write until a person approves it', async () => {
    expect((await call('request_access', { connection: 'app', duration: '30m', reason: 'orders report' })).data.state).toBe('granted');

    const described = await call('describe_connection', { connection: 'app' });
    expect(described.isError, described.text).toBe(false);
    const customers = (described.data.tables as Array<{ name: string; columns: Array<{ name: string; masked?: boolean }> }>).find(
      (t) => t.name === 'customers',
    )!;
    expect(customers.columns.filter((c) => c.masked).map((c) => c.name)).toEqual(['email']);

    const rows = await call('query', { connection: 'app', sql: 'SELECT id, name, email FROM customers ORDER BY id', max_rows: 1 });
    expect(rows.data).toMatchObject({ status: 'ok', truncated: true });
    expect(rows.data.rows).toEqual([[1, 'Jane Doe', 'j*******@example.com']]);

    const ddl = await call('query', { connection: 'app', sql: 'DROP TABLE customers' });
    expect(ddl.isError).toBe(true);
    expect(ddl.data.status).toBe('refused');
    expect(ddl.text).toContain('agents-no-ddl');

    const held = await call('query', { connection: 'app', sql: "UPDATE customers SET name = 'Jane Q. Doe' WHERE id = 1" });
    expect(held.data.status, held.text).toBe('waiting_for_approval');
    const reviewId = String(held.data.reviewId);
    expect(my.root('SELECT name FROM app.customers WHERE id = 1').trim()).toBe('Jane Doe');

    const bob = gw.gateway.identity.sessions.issue({ issuer: 'test', subject: 'bob', user: 'bob', groups: ['approvers'] }).accessToken;
    const approved = await fetch(`${gw.gateway.addresses.http}/api/reviews/${reviewId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approved.status).toBe(200);
    const result = await call('query_result', { review_id: reviewId, wait_seconds: 10 });
    expect(result.data).toMatchObject({ status: 'ok', rowCount: 1 });
    expect(my.root('SELECT name FROM app.customers WHERE id = 1').trim()).toBe('Jane Q. Doe');

    const sessions = await gw.gateway.store.listSessions({ user: 'apikey:sql-bot' });
    expect(sessions[0]).toMatchObject({ connection: 'app', protocol: 'mysql' });
  });
});
