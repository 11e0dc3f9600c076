/** `jitgate sessions [--user U] [--connection C] [--active] [--json] [--limit N]`. */
import type { SessionRow } from '../../store/store.js';
import { adminTarget, withStore } from '../context.js';
import { formatBytes, formatElapsed, formatTime, table } from '../format.js';
import { CliError, type CliIo } from '../io.js';

export interface SessionsOptions {
  user?: string;
  connection?: string;
  active?: boolean;
  json?: boolean;
  limit?: string;
  config?: string;
  dataDir?: string;
}

export async function sessionsCommand(io: CliIo, opts: SessionsOptions): Promise<void> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: expected a positive integer, got ${JSON.stringify(opts.limit)}`);
  const target = await adminTarget(io, opts);
  const rows = await withStore(target.storePath, (store) =>
    store.listSessions({
      ...(opts.user !== undefined ? { user: opts.user } : {}),
      ...(opts.connection !== undefined ? { connection: opts.connection } : {}),
      ...(opts.active ? { active: true } : {}),
      limit,
    }),
  );
  if (opts.json) {
    io.out(JSON.stringify(rows.map(toJson), null, 2) + '\n');
    return;
  }
  if (rows.length === 0) {
    io.err('no sessions\n');
    return;
  }
  const now = io.now();
  io.out(
    table(
      ['ID', 'USER', 'CONNECTION', 'CLIENT', 'STARTED', 'DURATION', 'STATUS', 'STMTS', 'IN', 'OUT'],
      rows.map((r) => [
        r.id,
        r.user,
        r.connection,
        r.clientAddress,
        formatTime(r.startedAt),
        formatElapsed((r.endedAt ?? now) - r.startedAt),
        r.endedAt === null ? 'active' : (r.endReason ?? 'ended'),
        String(r.statements),
        formatBytes(r.bytesFromClient),
        formatBytes(r.bytesToClient),
      ]),
    ),
  );
}

function toJson(r: SessionRow) {
  return {
    ...r,
    startedAt: new Date(r.startedAt).toISOString(),
    endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
  };
}
