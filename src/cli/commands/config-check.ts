/** `jitgate config check [--config FILE]`: validate a config file; `ok` plus a summary, or every problem. */
import type { GatewayConfig } from '../../config/types.js';
import { formatDuration } from '../../core/duration.js';
import { findConfig, loadConfigFrom } from '../context.js';
import { CliError, type CliIo } from '../io.js';

export async function configCheck(io: CliIo, opts: { config?: string }): Promise<void> {
  const source = findConfig(io, opts.config);
  if (source.kind === 'embedded') {
    throw new CliError(
      'no config file to check: pass --config FILE or set JITGATE_CONFIG (without one, jitgate serve runs the embedded default)',
    );
  }
  const config = await loadConfigFrom(io, source.path);
  io.out(`ok: ${summarize(config)}\n`);
}

export function summarize(c: GatewayConfig): string {
  const names = c.connections.map((x) => x.name);
  const parts = [
    c.source,
    `${names.length} connection${names.length === 1 ? '' : 's'}${names.length ? ` (${names.join(', ')})` : ''}`,
    c.listeners.postgres ? `postgres on ${c.listeners.postgres.host}:${c.listeners.postgres.port}` : 'postgres listener off',
    `http on ${c.listeners.http.host}:${c.listeners.http.port}`,
    c.tls.required ? 'TLS required' : 'TLS optional',
    `auth ${c.auth.postgres.methods.join('+')}`,
    `tokens ${formatDuration(c.auth.tokenTtlMs)}`,
    `store ${c.store.path}`,
  ];
  if (c.development) parts.splice(1, 0, 'development mode');
  return parts.join(', ');
}
