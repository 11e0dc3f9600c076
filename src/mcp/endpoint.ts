/**
 * The MCP endpoint on the gateway's HTTP port: `/mcp` speaks the streamable HTTP transport of the
 * Model Context Protocol, statelessly (each POST carries its own bearer credential and gets its own
 * server instance), so nothing about an agent lives in the transport. An unauthenticated call is
 * answered 401 with `WWW-Authenticate` pointing at the OAuth protected-resource metadata (RFC 9728),
 * which names the identity providers an MCP client can get a token from.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Router } from '../api/router.js';
import { sendJson } from '../api/http.js';
import type { IdentityService } from '../identity/service.js';
import { bearerOf } from '../identity/service.js';
import type { Logger } from '../obs/log.js';
import { buildMcpServer, type ToolServices } from './tools.js';

export const MCP_PATH = '/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface McpEndpointOptions {
  identity: IdentityService;
  tools: ToolServices;
  log: Logger;
}

export function mountMcpEndpoint(router: Router, o: McpEndpointOptions): void {
  const metadata = (req: IncomingMessage, res: ServerResponse) => {
    const base = baseUrl(req);
    sendJson(res, 200, {
      resource: `${base}${MCP_PATH}`,
      authorization_servers: o.identity.issuerUrls,
      bearer_methods_supported: ['header'],
      resource_name: 'jitgate',
      resource_documentation: `${base}/api/openapi.json`,
    });
  };
  router.mount(`${METADATA_PATH}${MCP_PATH}`, metadata);
  router.mount(METADATA_PATH, metadata);

  router.mount(MCP_PATH, async (req, res) => {
    const bearer = bearerOf(req);
    const auth = bearer === undefined ? undefined : await o.identity.authenticateDetailed(bearer).catch(() => undefined);
    if (!auth?.ok) {
      res.setHeader(
        'WWW-Authenticate',
        `Bearer resource_metadata="${baseUrl(req)}${METADATA_PATH}${MCP_PATH}"${bearer === undefined ? '' : ', error="invalid_token"'}`,
      );
      sendJson(res, 401, {
        error: 'unauthorized',
        message:
          bearer === undefined
            ? 'an access token is required (Authorization: Bearer ...)'
            : `the credential was refused: ${auth ? auth.reason : 'identity provider unavailable'}`,
      });
      return;
    }
    const who = auth.identity;
    const server = buildMcpServer(who, o.tools);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch (err) {
      o.log.error({ err, user: who.user }, 'MCP request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'the MCP request failed' });
    }
  });
}

function baseUrl(req: IncomingMessage): string {
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  return `${tls ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
}
