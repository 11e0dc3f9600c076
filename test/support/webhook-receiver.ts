/**
 * A local HTTP endpoint standing in for a webhook consumer (SIEM, Slack): records every delivery and
 * answers from a script of statuses, so tests can make the first attempts fail.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

export interface WebhookReceiver {
  url: string;
  deliveries: Delivery[];
  /** The status to answer a delivery with (default 200), e.g. to fail the first attempts of one event. */
  respond: (d: Delivery) => number;
  close(): Promise<void>;
}

/** `port`: listen on that port (e.g. to bring a receiver back where a gateway expects it); default any. */
export async function startWebhookReceiver(options: { port?: number } = {}): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as is
      }
      const delivery = { headers: req.headers, body, json };
      deliveries.push(delivery);
      res.writeHead(receiver.respond(delivery)).end();
    });
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', () => r()));
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jitgate`,
    deliveries,
    respond: () => 200,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  return receiver;
}
