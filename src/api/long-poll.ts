/**
 * Long polling for `GET ...?wait=S` routes: the request waits until something happens to the
 * thing it reads, the wait runs out, the caller hangs up, or the gateway stops. The route then
 * re-reads and answers.
 */
import type { RouteContext } from './router.js';

/** The longest wait a caller may ask for, in seconds (below common proxy idle timeouts). */
export const MAX_WAIT_S = 25;

export class LongPolls {
  private readonly waiters = new Set<() => void>();

  /** The wait the request asks for (`wait` query parameter), capped. */
  waitOf(ctx: RouteContext): number {
    return Math.min(MAX_WAIT_S, Math.max(0, Number(ctx.query.get('wait') ?? 0) || 0));
  }

  /** Resolves after `seconds`, or earlier when `subscribe`'s callback fires or the caller leaves. */
  wait(ctx: RouteContext, seconds: number, subscribe: (changed: () => void) => () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        this.waiters.delete(done);
        ctx.res.off('close', done);
        resolve();
      };
      const off = subscribe(done);
      const timer = setTimeout(done, seconds * 1000);
      this.waiters.add(done);
      // The caller hung up: stop waiting for it.
      ctx.res.on('close', done);
    });
  }

  /** Ends every wait (gateway shutdown). */
  stop(): void {
    for (const w of [...this.waiters]) w();
  }
}
