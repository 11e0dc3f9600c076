/**
 * One JSON request to the gateway's API without a signed-in user (sign-in, refresh, sign-out).
 * Signed-in commands use ./api-client.ts, which builds on the saved credentials.
 */
import { CliError } from './io.js';

export interface GatewayAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The usual spelling of a gateway URL: no trailing slash. */
export function normalizeUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

/** POST JSON; resolves with any HTTP answer, throws CliError only when the gateway cannot be reached. */
export async function postJson(url: string, path: string, body: unknown, bearer?: string): Promise<GatewayAnswer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(normalizeUrl(url) + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    throw new CliError(`cannot reach the gateway at ${normalizeUrl(url)}: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
  }
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    throw new CliError(`${normalizeUrl(url)}${path} answered HTTP ${res.status} without JSON: is this a jitgate gateway?`);
  }
  return { status: res.status, body: (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown> };
}

/** The `message` of an error answer, or a generic line. */
export function errorMessage(answer: GatewayAnswer): string {
  const m = answer.body.message;
  return typeof m === 'string' ? m : `HTTP ${answer.status}`;
}
