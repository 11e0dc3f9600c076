/**
 * `jitgate apikey create --name N [--groups a,b] [--ttl 90d]`, `apikey list [--json]`,
 * `apikey revoke ID`: API keys for automation, through the gateway's API as the signed-in
 * administrator. `create` prints only the key on stdout (capture it with `$(...)`; it is shown this
 * once), the details on stderr.
 */
import { apiClient } from '../api-client.js';
import { formatTime, table } from '../format.js';
import { CliError, type CliIo } from '../io.js';

interface ApiKeyJson {
  id: string;
  name: string;
  /** Who it acts as (`apikey:<name>`): keys have their own namespace, apart from people. */
  identity: string;
  groups: string[];
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  key?: string;
  alsoRevoked?: string[];
}

export async function apikeyCreate(io: CliIo, opts: { name: string; groups?: string; ttl?: string }): Promise<void> {
  const groups = (opts.groups ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  const api = await apiClient(io);
  const created = await api.post<ApiKeyJson>('/api/apikeys', { name: opts.name, groups, ...(opts.ttl ? { ttl: opts.ttl } : {}) });
  if (!created.key) throw new CliError('the gateway did not return the key');
  io.out(`${created.key}\n`);
  io.err(
    `API key ${created.id} "${created.name}", acting as ${created.identity} (${created.groups.length ? created.groups.join(', ') : 'no groups'}) ` +
      `expires ${formatTime(Date.parse(created.expiresAt))}. It is shown only this once: store it now.\n` +
      `Use it as a bearer token: JITGATE_URL=${api.url} JITGATE_TOKEN=<key> jitgate ...\n`,
  );
}

export async function apikeyList(io: CliIo, opts: { json?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const { keys } = await api.get<{ keys: ApiKeyJson[] }>('/api/apikeys');
  if (opts.json) {
    io.out(JSON.stringify(keys, null, 2) + '\n');
    return;
  }
  if (keys.length === 0) {
    io.err('no API keys\n');
    return;
  }
  const now = io.now();
  const status = (k: ApiKeyJson) => (k.revokedAt ? 'revoked' : Date.parse(k.expiresAt) <= now ? 'expired' : 'active');
  io.out(
    table(
      ['ID', 'IDENTITY', 'GROUPS', 'CREATED BY', 'CREATED', 'EXPIRES', 'STATUS', 'LAST USED'],
      keys.map((k) => [
        k.id,
        k.identity,
        k.groups.join(',') || '-',
        k.createdBy,
        formatTime(Date.parse(k.createdAt)),
        formatTime(Date.parse(k.expiresAt)),
        status(k),
        k.lastUsedAt ? formatTime(Date.parse(k.lastUsedAt)) : '-',
      ]),
    ),
  );
}

export async function apikeyRevoke(io: CliIo, id: string): Promise<void> {
  const api = await apiClient(io);
  const row = await api.delete<ApiKeyJson>(`/api/apikeys/${encodeURIComponent(id)}`);
  const also = row.alsoRevoked ?? [];
  io.out(
    `API key ${row.id} "${row.name}" revoked${also.length ? `, with the ${also.length} key(s) it created: ${also.join(', ')}` : ''}\n`,
  );
}
