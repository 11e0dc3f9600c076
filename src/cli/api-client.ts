/**
 * How CLI commands reach the gateway's HTTP API as the signed-in user. The gateway URL and bearer
 * come from $JITGATE_URL / $JITGATE_TOKEN (automation: an API key or session token) or from the
 * credentials `jitgate login` saved (./credentials.ts, which also refreshes them silently).
 */
import { loadCliCredentials } from './credentials.js';
import { CliError, type CliIo } from './io.js';

export interface ApiClient {
  readonly url: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
}

export async function apiClient(io: CliIo): Promise<ApiClient> {
  const credentials = await loadCliCredentials(io);
  const url = (io.env.JITGATE_URL || credentials?.url || 'http://127.0.0.1:8080').replace(/\/$/, '');
  const bearer = io.env.JITGATE_TOKEN || credentials?.accessToken;
  if (!bearer) throw new CliError('not signed in: run `jitgate login` (or set JITGATE_TOKEN to an API key)');
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${bearer}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CliError(`cannot reach the gateway at ${url}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    const data = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const message = (data as { message?: string } | undefined)?.message ?? `${res.status} ${res.statusText}`;
      throw new CliError(message);
    }
    return data as T;
  };
  return {
    url,
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body ?? {}),
    delete: (path) => call('DELETE', path),
  };
}
