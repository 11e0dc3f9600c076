/**
 * Server-sent events from the gateway's API as the signed-in user (same URL and bearer as
 * ./api-client.ts): yields each event's parsed `data` until the stream's `end` event.
 */
import { gatewayBearer } from './api-client.js';
import { CliError, type CliIo } from './io.js';

export async function* streamEvents(io: CliIo, path: string): AsyncGenerator<unknown> {
  const { url, bearer } = await gatewayBearer(io);
  let res: Response;
  try {
    res = await fetch(url + path, { headers: { authorization: `Bearer ${bearer}`, accept: 'text/event-stream' } });
  } catch (err) {
    throw new CliError(`cannot reach the gateway at ${url}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let message = `${res.status} ${res.statusText}`;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new CliError(message);
  }
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'end') return;
      if (data.length) yield JSON.parse(data.join('\n'));
    }
  }
}
