/**
 * `jitgate credentials rotate CONNECTION` and `jitgate credentials status [--json]`: the gateway's
 * own backend passwords, through the running gateway's API as the signed-in administrator. The
 * CLI never sees a password: the gateway makes, stores and uses it.
 */
import { formatDuration } from '../../core/duration.js';
import { apiClient } from '../api-client.js';
import { formatTime } from '../format.js';
import type { CliIo } from '../io.js';

interface StatusJson {
  connection: string;
  protocol: string;
  backendUser: string;
  mode: string;
  login: string;
  password: { kind: string; name: string } | null;
  rotatable: boolean;
  notRotatableBecause?: string;
  rotateEveryMs: number | null;
  lastRotatedAt: string | null;
  nextRotationAt: string | null;
  lastFailure: { at: string; reason: string } | null;
  privileges: { checked: boolean; warnings: string[]; error?: string };
}

export async function credentialsRotate(io: CliIo, connection: string): Promise<void> {
  const api = await apiClient(io);
  const r = await api.post<{ connection: string; rotatedAt: string; nextRotationAt: string | null }>(
    `/api/admin/credentials/${encodeURIComponent(connection)}/rotate`,
  );
  io.out(
    `rotated the gateway's backend password on ${r.connection} at ${formatTime(Date.parse(r.rotatedAt))}` +
      (r.nextRotationAt ? `; next rotation ${formatTime(Date.parse(r.nextRotationAt))}` : '') +
      '\n',
  );
}

export async function credentialsStatus(io: CliIo, opts: { json?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const { connections } = await api.get<{ connections: StatusJson[] }>('/api/admin/credentials');
  if (opts.json) {
    io.out(JSON.stringify(connections, null, 2) + '\n');
    return;
  }
  const now = io.now();
  const blocks = connections.map((c) => {
    const lines = [`${c.connection} (${c.protocol}, backend user ${c.backendUser})`, `  logs in       ${c.login}`];
    lines.push(`  password      ${passwordInWords(c.password)}`);
    lines.push(`  rotation      ${rotationInWords(c, now)}`);
    if (c.lastFailure) lines.push(`  last failure  ${formatTime(Date.parse(c.lastFailure.at))}: ${c.lastFailure.reason}`);
    if (!c.privileges.checked) lines.push(`  privileges    could not be read: ${c.privileges.error ?? 'unknown error'}`);
    else if (c.privileges.warnings.length === 0) lines.push('  privileges    nothing beyond what its sessions need was found');
    else for (const w of c.privileges.warnings) lines.push(`  warning       ${w}`);
    return lines.join('\n') + '\n';
  });
  io.out(blocks.length ? blocks.join('\n') : 'no connections\n');
}

function passwordInWords(p: StatusJson['password']): string {
  if (!p) return 'none (the backend lets the gateway in without one)';
  if (p.kind === 'secret') return `secret:${p.name}, in the gateway's secret store`;
  if (p.kind === 'env') return `env:${p.name}, an environment variable of the gateway`;
  return `${p.kind}:${p.name}`;
}

function rotationInWords(c: StatusJson, now: number): string {
  if (!c.rotatable) return `not possible: ${c.notRotatableBecause ?? 'unknown reason'}`;
  const last = c.lastRotatedAt
    ? `last rotated ${formatTime(Date.parse(c.lastRotatedAt))}`
    : 'never rotated (a person may know this password)';
  if (c.rotateEveryMs === null) return `${last}; no schedule (jitgate credentials rotate ${c.connection}, or credentials.rotate.every)`;
  const next = c.nextRotationAt ? Date.parse(c.nextRotationAt) : now;
  return `every ${formatDuration(c.rotateEveryMs)}; ${last}; next ${next <= now ? 'now' : formatTime(next)}`;
}
