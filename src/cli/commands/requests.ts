/** `jitgate requests [--state S] [--json]`, `jitgate approve ID [--comment]`, `jitgate deny ID --reason`. */
import { apiClient } from '../api-client.js';
import { table } from '../format.js';
import { CliError, type CliIo } from '../io.js';
import { approvalsOf, describeGrant, dur, short, time, type DecisionJson, type RequestJson } from './access-json.js';

const STATES = ['pending', 'granted', 'denied', 'withdrawn', 'expired'];

export async function requestsCommand(io: CliIo, opts: { state?: string; json?: boolean }): Promise<void> {
  if (opts.state !== undefined && !STATES.includes(opts.state)) throw new CliError(`--state: expected one of ${STATES.join(', ')}`);
  const api = await apiClient(io);
  const { mine, approvable } = await api.get<{ mine: RequestJson[]; approvable: RequestJson[] }>(
    `/api/requests${opts.state ? `?state=${opts.state}` : ''}`,
  );
  if (opts.json) {
    io.out(JSON.stringify({ mine, approvable }, null, 2) + '\n');
    return;
  }
  if (mine.length === 0 && approvable.length === 0) {
    io.err('no requests\n');
    return;
  }
  if (mine.length) {
    io.out('Your requests\n');
    io.out(
      table(
        ['ID', 'CONNECTION', 'STATE', 'FOR', 'APPROVALS', 'CREATED', 'REASON'],
        mine.map((r) => [short(r.id), r.connection, stateOf(r), dur(r.durationMs), approvalsOf(r), time(r.createdAt), r.reason]),
      ),
    );
  }
  if (approvable.length) {
    if (mine.length) io.out('\n');
    io.out('Requests you can approve\n');
    io.out(
      table(
        ['ID', 'USER', 'CONNECTION', 'STATE', 'FOR', 'APPROVALS', 'EXPIRES', 'REASON'],
        approvable.map((r) => [short(r.id), r.user, r.connection, stateOf(r), dur(r.durationMs), approvalsOf(r), time(r.expiresAt), r.reason]),
      ),
    );
  }
}

export async function approveCommand(io: CliIo, id: string, opts: { comment?: string; breakGlass?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const res = await api.post<DecisionJson>(`/api/requests/${encodeURIComponent(id)}/approve`, {
    comment: opts.comment ?? '',
    breakGlass: opts.breakGlass ?? false,
  });
  const r = res.request;
  if (res.grant) io.out(`approved request ${short(r.id)}: ${r.user} has ${describeGrant(res.grant, io.now())}\n`);
  else io.out(`approved request ${short(r.id)} of ${r.user} for ${r.connection} (${approvalsOf(r)} approvals; more needed)\n`);
}

export async function denyCommand(io: CliIo, id: string, opts: { reason: string }): Promise<void> {
  if (!opts.reason.trim()) throw new CliError('--reason: say why (the requester sees it)');
  const api = await apiClient(io);
  const res = await api.post<DecisionJson>(`/api/requests/${encodeURIComponent(id)}/deny`, { reason: opts.reason });
  const r = res.request;
  io.out(r.state === 'withdrawn' ? `withdrew request ${short(r.id)} for ${r.connection}\n` : `denied request ${short(r.id)} of ${r.user} for ${r.connection}\n`);
}

function stateOf(r: RequestJson): string {
  if (r.state === 'granted' && r.breakGlass) return 'granted (break-glass)';
  if (r.state === 'denied' && r.decidedBy) return `denied by ${r.decidedBy}`;
  return r.state;
}
