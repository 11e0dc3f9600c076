/**
 * `jitgate request CONNECTION [--for 1h] [--reason "..."] [--no-wait] [--break-glass] [--timeout 10m]`:
 * ask for access, then wait for the decision (long-polling the API), printing each approval as it
 * comes. The wait is bounded by the request's own pending expiry and by --timeout; Ctrl-C only stops
 * waiting, the request stays open.
 */
import { formatDuration, tryParseDuration } from '../../core/duration.js';
import { apiClient, type ApiClient } from '../api-client.js';
import { CliError, type CliIo } from '../io.js';
import { describeGrant, dur, short, time, type DecisionJson, type GrantJson, type RequestJson } from './access-json.js';

export interface RequestOptions {
  for?: string;
  reason?: string;
  /** commander's --no-wait sets this false */
  wait?: boolean;
  breakGlass?: boolean;
  timeout?: string;
  json?: boolean;
}

const DEFAULT_FOR_MS = 3_600_000;

/** Each long poll asks the gateway to hold the answer this long at most. */
const POLL_S = 20;

export async function requestCommand(io: CliIo, connection: string, opts: RequestOptions): Promise<void> {
  const asked = opts.for === undefined ? undefined : parseDurationFlag('--for', opts.for);
  const timeoutMs = opts.timeout === undefined ? undefined : parseDurationFlag('--timeout', opts.timeout);
  if (opts.breakGlass && !opts.reason?.trim())
    throw new CliError('--break-glass needs --reason "...": say why, it is sent to the approvers');
  const api = await apiClient(io);
  const durationMs = asked ?? (await defaultDuration(api, connection));
  const created = await api.post<DecisionJson>('/api/requests', {
    connection,
    durationMs,
    reason: opts.reason ?? '',
    breakGlass: opts.breakGlass ?? false,
  });
  let request = created.request;
  if (created.grant) {
    if (created.grant.breakGlass) io.err(`BREAK-GLASS: access granted without approval; the approvers are notified\n`);
    return granted(io, created.grant, opts);
  }
  io.err(`request ${short(request.id)} for ${connection} (${dur(durationMs)}) is pending: ${created.message}\n`);
  if (opts.wait === false) {
    if (opts.json) io.out(JSON.stringify(request, null, 2) + '\n');
    else io.out(`${request.id}\n`);
    io.err(`check with \`jitgate requests\`; withdraw with \`jitgate deny ${short(request.id)} --reason ...\`\n`);
    return;
  }

  // Deadlines in the gateway's terms (its pending expiry) converted to ours, so clock skew between
  // this machine and the gateway cannot stretch the wait.
  const serverLeft = Date.parse(request.expiresAt) - Date.parse(request.createdAt);
  const waitMs = Math.min(serverLeft, timeoutMs ?? Infinity);
  const deadline = io.now() + waitMs;
  io.err(
    `waiting up to ${formatDuration(Math.max(1000, Math.round(waitMs / 1000) * 1000))} for a decision (Ctrl-C stops waiting; the request stays open)\n`,
  );
  let seen = request.approvals.length;
  for (;;) {
    const left = deadline - io.now();
    if (request.state === 'pending' && left <= 0) {
      throw new CliError(
        `no decision on request ${short(request.id)} yet; it stays pending until ${time(request.expiresAt)} (\`jitgate requests\`)`,
      );
    }
    if (request.state === 'pending') {
      request = await api.get<RequestJson>(`/api/requests/${request.id}?wait=${Math.max(1, Math.min(POLL_S, Math.ceil(left / 1000)))}`);
    }
    for (const a of request.approvals.slice(seen)) {
      io.err(
        `approved by ${a.approver}${a.comment ? ` ("${a.comment}")` : ''} (${request.approvals.indexOf(a) + 1} of ${request.approvalsRequired})\n`,
      );
    }
    seen = request.approvals.length;
    switch (request.state) {
      case 'pending':
        continue;
      case 'granted':
        return granted(io, await grantOf(api, request), opts);
      case 'denied':
        throw new CliError(
          `request ${short(request.id)} was denied by ${request.decidedBy ?? 'an approver'}: ${request.decisionReason ?? ''}`,
        );
      case 'withdrawn':
        throw new CliError(`request ${short(request.id)} was withdrawn`);
      case 'expired':
        throw new CliError(`request ${short(request.id)} expired without a decision; ask again`);
    }
  }
}

/** Without --for: an hour, or less where the policy allows less. */
async function defaultDuration(api: ApiClient, connection: string): Promise<number> {
  const { connections } = await api.get<{ connections: Array<{ name: string; policy?: { maxDurationMs: number } }> }>('/api/connections');
  return Math.min(DEFAULT_FOR_MS, connections.find((c) => c.name === connection)?.policy?.maxDurationMs ?? DEFAULT_FOR_MS);
}

async function grantOf(api: ApiClient, request: RequestJson): Promise<GrantJson> {
  const { mine } = await api.get<{ mine: GrantJson[] }>('/api/grants?all=1');
  const grant = mine.find((g) => g.id === request.grantId);
  if (!grant) throw new CliError(`request ${short(request.id)} was granted, but its grant ${request.grantId ?? ''} is not visible`);
  return grant;
}

function granted(io: CliIo, grant: GrantJson, opts: RequestOptions): void {
  if (opts.json) io.out(JSON.stringify(grant, null, 2) + '\n');
  else io.out(`access granted: ${describeGrant(grant, io.now())}\n`);
  io.err(`connect with: jitgate connect ${grant.connection}  (or mint a token: jitgate token ${grant.connection})\n`);
}

export function parseDurationFlag(flag: string, text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined || ms <= 0) throw new CliError(`${flag}: expected a duration such as 30m, 1h or 1h30m, got ${JSON.stringify(text)}`);
  return ms;
}
