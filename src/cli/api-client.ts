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
  /** GET that answers null for 404 (e.g. "is this id a statement review?"). */
  find<T>(path: string): Promise<T | null>;
  post<T>(path: string, body?: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
}

/** The gateway's URL and the bearer to call it with (refreshed silently when it is about to expire). */
export async function gatewayBearer(io: CliIo): Promise<{ url: string; bearer: string }> {
  const credentials = await loadCliCredentials(io);
  const url = (io.env.JITGATE_URL || credentials?.url || 'http://127.0.0.1:8080').replace(/\/$/, '');
  const bearer = io.env.JITGATE_TOKEN || credentials?.accessToken;
  if (!bearer) {
    const profile = io.env.JITGATE_PROFILE;
    const named = profile && profile !== 'default' ? ` (profile ${profile})` : '';
    throw new CliError(
      `not signed in${named}: run \`jitgate login${named ? ` --profile ${profile}` : ''}\` (or set JITGATE_TOKEN to an API key)`,
    );
  }
  return { url, bearer };
}

export async function apiClient(io: CliIo): Promise<ApiClient> {
  const { url, bearer } = await gatewayBearer(io);
  const call = async <T>(method: string, path: string, body?: unknown, opts: { nullOn404?: boolean } = {}): Promise<T> => {
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
    if (opts.nullOn404 && res.status === 404) return null as T;
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
    find: (path) => call('GET', path, undefined, { nullOn404: true }),
    post: (path, body) => call('POST', path, body ?? {}),
    delete: (path) => call('DELETE', path),
  };
}
