/**
 * `jitgate mcp`: the gateway's MCP server for local agents over stdio. It is a bridge, not a second
 * implementation: each JSON-RPC message from the agent is posted to the gateway's /mcp endpoint as
 * the signed-in user (or the API key in $JITGATE_TOKEN), and the answer is written back. Tools,
 * policy and recording therefore live in one place, on the gateway.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { gatewayBearer } from '../api-client.js';
import type { CliIo } from '../io.js';

export async function mcpCommand(io: CliIo): Promise<void> {
  // Fail at once, before the agent starts talking, when there is no credential.
  await gatewayBearer(io);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => (transport.onclose = resolve));
  transport.onmessage = (message) => {
    void forward(io, message).then(
      (answers) => Promise.all(answers.map((a) => transport.send(a))),
      (err: Error) => {
        const id = (message as { id?: string | number }).id;
        if (id === undefined) return io.err(`jitgate mcp: ${err.message}\n`);
        return transport.send({ jsonrpc: '2.0', id, error: { code: -32603, message: `jitgate gateway: ${err.message}` } });
      },
    );
  };
  await transport.start();
  await closed;
}

async function forward(io: CliIo, message: JSONRPCMessage): Promise<JSONRPCMessage[]> {
  const { url, bearer } = await gatewayBearer(io);
  const res = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(message),
  });
  if (res.status === 202) return [];
  const text = await res.text();
  if (!res.ok) {
    const detail = (() => {
      try {
        return (
          (JSON.parse(text) as { message?: string; error?: { message?: string } }).message ??
          (JSON.parse(text) as { error?: { message?: string } }).error?.message
        );
      } catch {
        return undefined;
      }
    })();
    throw new Error(detail ?? `${res.status} ${res.statusText}`);
  }
  const body = JSON.parse(text) as JSONRPCMessage | JSONRPCMessage[];
  return Array.isArray(body) ? body : [body];
}
