/** `jitgate kill SESSION --reason R`: ends a live session through the running gateway's API. */
import { apiClient } from '../api-client.js';
import { CliError, type CliIo } from '../io.js';

export async function killCommand(io: CliIo, id: string, opts: { reason?: string }): Promise<void> {
  if (!opts.reason?.trim()) throw new CliError('--reason: say why (the user sees it, and it is recorded and audited)');
  const api = await apiClient(io);
  const r = await api.post<{ killed: boolean; session: string }>(`/api/sessions/${encodeURIComponent(id)}/kill`, { reason: opts.reason });
  io.out(`ended session ${r.session}\n`);
}
