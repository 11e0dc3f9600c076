/** `jitgate whoami`, `jitgate connections`, `jitgate grants`, `jitgate revoke GRANT [--reason]`. */
import { formatDuration } from '../../core/duration.js';
import { apiClient } from '../api-client.js';
import { table } from '../format.js';
import type { CliIo } from '../io.js';
import { describeGrant, short, until, type GrantJson } from './access-json.js';

interface WhoamiJson {
  user: string;
  groups: string[];
  kind: string;
  via: string;
  admin: boolean;
  grants: GrantJson[];
}

interface ConnectionJson {
  name: string;
  type: string;
  access:
    { state: 'granted'; grantId: string; until: string } | { state: 'pending'; requestId: string; expiresAt: string } | { state: 'none' };
  policy?: {
    name: string;
    approval: 'auto' | 'required';
    approvers: string[];
    approvals: number;
    maxDurationMs: number;
    breakGlass: boolean;
  };
}

export async function whoamiCommand(io: CliIo, opts: { json?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const me = await api.get<WhoamiJson>('/api/whoami');
  if (opts.json) {
    io.out(JSON.stringify(me, null, 2) + '\n');
    return;
  }
  const now = io.now();
  io.out(`${me.user} (${me.kind}, signed in via ${me.via}) at ${api.url}\n`);
  io.out(`groups: ${me.groups.length ? me.groups.join(', ') : '(none)'}\n`);
  if (me.admin) io.out('administrator: yes\n');
  if (me.grants.length === 0) io.out('grants: none active (ask with `jitgate request CONNECTION`)\n');
  else for (const g of me.grants) io.out(`${describeGrant(g, now)}\n`);
}

export async function connectionsCommand(io: CliIo, opts: { json?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const { connections } = await api.get<{ connections: ConnectionJson[] }>('/api/connections');
  if (opts.json) {
    io.out(JSON.stringify(connections, null, 2) + '\n');
    return;
  }
  if (connections.length === 0) {
    io.err('no connections you can request access to\n');
    return;
  }
  const now = io.now();
  io.out(
    table(
      ['NAME', 'TYPE', 'ACCESS', 'HOW TO GET IT'],
      connections.map((c) => [
        c.name,
        c.type,
        c.access.state === 'granted'
          ? `granted until ${until(c.access.until, now)}`
          : c.access.state === 'pending'
            ? `pending (request ${short(c.access.requestId)})`
            : 'none',
        !c.policy
          ? 'no policy for you'
          : c.policy.approval === 'auto'
            ? `granted at once, up to ${formatDuration(c.policy.maxDurationMs)}`
            : `${c.policy.approvals} approval${c.policy.approvals === 1 ? '' : 's'} from ${c.policy.approvers.join(' or ')}, up to ${formatDuration(c.policy.maxDurationMs)}` +
              (c.policy.breakGlass ? ', break-glass allowed' : ''),
      ]),
    ),
  );
}

export async function grantsCommand(io: CliIo, opts: { all?: boolean; json?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const { mine, others } = await api.get<{ mine: GrantJson[]; others: GrantJson[] }>(`/api/grants${opts.all ? '?all=1' : ''}`);
  if (opts.json) {
    io.out(JSON.stringify({ mine, others }, null, 2) + '\n');
    return;
  }
  const rows = [...mine, ...others];
  if (rows.length === 0) {
    io.err(opts.all ? 'no grants\n' : 'no active grants\n');
    return;
  }
  const now = io.now();
  io.out(
    table(
      ['ID', 'USER', 'CONNECTION', 'UNTIL', 'STATE', 'BY', 'REASON'],
      rows.map((g) => [
        short(g.id),
        g.user,
        g.connection,
        until(g.expiresAt, now),
        g.revokedAt
          ? `revoked by ${g.revokedBy ?? '?'}`
          : Date.parse(g.expiresAt) <= now
            ? 'expired'
            : g.breakGlass
              ? 'active (break-glass)'
              : 'active',
        g.approvedBy.length ? g.approvedBy.join(',') : (g.issuedBy ?? `policy ${g.policy ?? '?'}`),
        g.reason,
      ]),
    ),
  );
}

export async function revokeCommand(io: CliIo, id: string, opts: { reason?: string }): Promise<void> {
  const api = await apiClient(io);
  const g = await api.post<GrantJson>(`/api/grants/${encodeURIComponent(id)}/revoke`, opts.reason ? { reason: opts.reason } : {});
  io.out(`revoked grant ${short(g.id)} of ${g.user} on ${g.connection}; its live sessions are ended\n`);
}
