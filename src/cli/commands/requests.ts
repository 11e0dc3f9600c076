/**
 * `jitgate requests [--state S] [--json]`, `jitgate approve ID [--comment]`, `jitgate deny ID --reason`:
 * access requests, and statements held for approval (./reviews.ts) by the same verbs.
 */
import { apiClient } from '../api-client.js';
import { table } from '../format.js';
import { CliError, type CliIo } from '../io.js';
import { approvalsOf, describeGrant, dur, short, time, type DecisionJson, type RequestJson } from './access-json.js';
import { approveReview, denyReview, findReview, listReviews, printReviews, REVIEW_STATES, type ReviewJson } from './reviews.js';

const STATES = ['pending', 'granted', 'denied', 'withdrawn', 'expired'];

export async function requestsCommand(io: CliIo, opts: { state?: string; json?: boolean }): Promise<void> {
  const known = [...new Set([...STATES, ...REVIEW_STATES])];
  if (opts.state !== undefined && !known.includes(opts.state)) throw new CliError(`--state: expected one of ${known.join(', ')}`);
  const api = await apiClient(io);
  const { mine, approvable } =
    opts.state === undefined || STATES.includes(opts.state)
      ? await api.get<{ mine: RequestJson[]; approvable: RequestJson[] }>(`/api/requests${opts.state ? `?state=${opts.state}` : ''}`)
      : { mine: [], approvable: [] };
  // Statements held in live sessions (pending unless another state is asked for).
  const reviews: ReviewJson[] = opts.state === undefined || REVIEW_STATES.includes(opts.state) ? await listReviews(api, opts.state) : [];
  if (opts.json) {
    io.out(JSON.stringify({ mine, approvable, reviews }, null, 2) + '\n');
    return;
  }
  if (mine.length === 0 && approvable.length === 0 && reviews.length === 0) {
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
        approvable.map((r) => [
          short(r.id),
          r.user,
          r.connection,
          stateOf(r),
          dur(r.durationMs),
          approvalsOf(r),
          time(r.expiresAt),
          r.reason,
        ]),
      ),
    );
  }
  if (reviews.length) {
    if (mine.length || approvable.length) io.out('\n');
    printReviews(
      io,
      reviews,
      opts.state && opts.state !== 'pending' ? `Statement reviews (${opts.state})` : 'Statements held for approval',
    );
  }
}

export async function approveCommand(io: CliIo, id: string, opts: { comment?: string; breakGlass?: boolean }): Promise<void> {
  const api = await apiClient(io);
  const review = await findReview(api, id);
  if (review) return approveReview(io, api, review, opts.comment);
  const res = await api.post<DecisionJson>(`/api/requests/${encodeURIComponent(id)}/approve`, {
    comment: opts.comment ?? '',
    breakGlass: opts.breakGlass ?? false,
  });
  const r = res.request;
  if (res.grant) io.out(`approved request ${short(r.id)}: ${r.user} has ${describeGrant(res.grant, io.now())}\n`);
  else io.out(`approved request ${short(r.id)} of ${r.user} for ${r.connection} (${approvalsOf(r)} approvals; more needed)\n`);
}

export async function denyCommand(io: CliIo, id: string, opts: { reason?: string; comment?: string }): Promise<void> {
  const api = await apiClient(io);
  // A held statement: the comment (optional) is shown to its author in the error.
  const review = await findReview(api, id);
  if (review) return denyReview(io, api, review, opts.comment ?? opts.reason);
  const reason = opts.reason ?? opts.comment ?? '';
  if (!reason.trim()) throw new CliError('--reason: say why (the requester sees it)');
  const res = await api.post<DecisionJson>(`/api/requests/${encodeURIComponent(id)}/deny`, { reason });
  const r = res.request;
  io.out(
    r.state === 'withdrawn'
      ? `withdrew request ${short(r.id)} for ${r.connection}\n`
      : `denied request ${short(r.id)} of ${r.user} for ${r.connection}\n`,
  );
}

function stateOf(r: RequestJson): string {
  if (r.state === 'granted' && r.breakGlass) return 'granted (break-glass)';
  if (r.state === 'denied' && r.decidedBy) return `denied by ${r.decidedBy}`;
  return r.state;
}
