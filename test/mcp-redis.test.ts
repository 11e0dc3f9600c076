/**
 * The MCP `redis_command` tool against a real Redis, through the gateway's own Redis listener: the
 * agent's grant, guardrails, masking of values by key and hash field, and the recording apply as for
 * redis-cli.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

let redis: RedisServer;
let gw: RedisTestGateway;
let agent: Client;
let key: string;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRedisGateway(redis, {
    extraYaml: `
policies:
  - name: agents-cache
    connections: [cache]
    groups: [agents]
    access: { approval: auto, maxDuration: 1h, requireReason: false }
guardrails:
  - name: agents-no-flush
    groups: [agents]
    deny: { commands: [flushall, flushdb, keys] }
masking:
  rules:
    - name: agent-pii
      groups: [agents]
      keys:
        "user:*:email": email
      fields:
        ssn: { strategy: partial, keep: 4 }
`,
  });
  const admin = await redisCli(['SET', 'user:1:email', 'jane.doe@example.com']);
  expect(admin).toBe('OK');
  await redisCli(['HSET', 'user:1', 'name', 'Jane', 'ssn', '123-45-6789']);
  await redisCli(['RPUSH', 'queue', ...Array.from({ length: 150 }, (_, i) => `job${i}`)]);
  key = (await gw.gateway.identity.apiKeys.create({ name: 'cache-bot', groups: ['agents'], ttlMs: 3_600_000, createdBy: 'test' })).key;
  agent = new Client({ name: 'test-agent', version: '1.0.0' });
  const httpUrl = `http://${gw.gateway.addresses.http.replace(/^https?:\/\//, '')}`;
  await agent.connect(
    new StreamableHTTPClientTransport(new URL(`${httpUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }),
  );
});

afterAll(async () => {
  await agent?.close().catch(() => undefined);
  await gw?.close();
  await redis?.stop();
});

/** A command straight to the private Redis as its default user (setup and checks only). */
async function redisCli(args: string[]): Promise<unknown> {
  const direct = new Redis({
    host: redis.host,
    port: redis.port,
    username: redis.users.default.user,
    password: redis.users.default.password,
    maxRetriesPerRequest: 0,
  });
  try {
    return await direct.call(args[0]!, ...args.slice(1));
  } finally {
    direct.disconnect();
  }
}

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

describe('redis_command over MCP', () => {
  it('runs commands as the agent with masking by key and field, caps long replies, and refuses what guardrails deny', async () => {
    const conns = await call('list_connections', {});
    expect(conns.data.connections).toEqual([expect.objectContaining({ name: 'cache', type: 'redis', access: 'none' })]);
    expect((await call('request_access', { connection: 'cache', duration: '30m', reason: 'cache inspection' })).data.state).toBe('granted');

    const email = await call('redis_command', { connection: 'cache', command: ['GET', 'user:1:email'] });
    expect(email.isError).toBe(false);
    expect(email.data.reply).toMatch(/^j\*+@example\.com$/);

    const hash = await call('redis_command', { connection: 'cache', command: ['HGETALL', 'user:1'] });
    const reply = hash.data.reply as unknown[] | Record<string, unknown>;
    const flat = JSON.stringify(reply);
    expect(flat).toContain('Jane');
    expect(flat).not.toContain('123-45-6789');
    expect(flat).toContain('6789');

    const list = await call('redis_command', { connection: 'cache', command: ['LRANGE', 'queue', '0', '-1'] });
    expect(list.data.truncated).toBe(true);
    expect((list.data.reply as unknown[]).length).toBeLessThan(150);

    const flush = await call('redis_command', { connection: 'cache', command: ['FLUSHALL'] });
    expect(flush.isError).toBe(true);
    expect(flush.data).toMatchObject({ status: 'refused', code: 'NOPERM' });
    expect(flush.text).toContain('agents-no-flush');
    expect(await redisCli(['EXISTS', 'user:1'])).toBe(1);

    // The gateway's backend credential never reaches an agent.
    const config = await call('redis_command', { connection: 'cache', command: ['CONFIG', 'GET', '*pass*'] });
    expect(config.isError).toBe(false);
    expect(JSON.stringify(config.data.reply)).toContain('(hidden by jitgate)');
    expect(JSON.stringify(config.data.reply)).not.toContain(
      String(await redisCli(['CONFIG', 'GET', 'requirepass']).then((r) => (r as string[])[1])),
    );
    const acl = await call('redis_command', { connection: 'cache', command: ['ACL', 'GETUSER', 'gateway'] });
    expect(acl.isError).toBe(true);
    expect(acl.data).toMatchObject({ status: 'refused', code: 'NOPERM' });

    const sql = await call('query', { connection: 'cache', sql: 'select 1' });
    expect(sql.isError).toBe(true);
    expect(sql.text).toContain('redis_command');
  });

  it("records the agent's Redis session under its name", async () => {
    const sessions = await gw.gateway.store.listSessions({ user: 'apikey:cache-bot' });
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions[0]).toMatchObject({ connection: 'cache', protocol: 'redis' });
  });
});
