/**
 * Waiting on a condition instead of sleeping: a test that waits for something to happen polls for
 * exactly that, returns as soon as it holds, and when it never does fails within a bounded time
 * with a message naming what it waited for (and what it saw last), not a 60 s test timeout.
 */

export interface WaitOptions {
  /** How long the condition may take (default 10 s). */
  timeoutMs?: number;
  /** How often it is checked (default 10 ms). */
  intervalMs?: number;
}

/**
 * Resolves with the first value of `check` that is neither undefined, null nor false; `what` says
 * what is awaited ("the backend to run pg_sleep"), `seen` what was seen last, for the failure.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions & { seen?: () => unknown } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
      lastError = undefined;
    } catch (err) {
      // A check that throws (a query on a connection not yet up) is tried again until the deadline.
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const seen = options.seen ? `; last seen: ${JSON.stringify(options.seen())}` : '';
      const why = lastError ? `; last error: ${(lastError as Error).message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}${why}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 10));
  }
}

/** Settles with `promise`, or fails after `timeoutMs` naming what did not happen. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
