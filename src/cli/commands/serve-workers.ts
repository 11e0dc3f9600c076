/**
 * `jitgate serve --workers N`: N gateway processes on one host, so the gateway uses every core.
 * Node's cluster module shares each listening socket among the workers (the primary accepts and
 * hands connections out in turn); each worker is a gateway instance of its own on the one data
 * directory and state store (README "Running several gateways").
 *
 * The primary runs no gateway. It starts the workers one at a time, each once the one before is
 * listening (the first creates the store, its migrations and the generated keys; the others find
 * them), replaces a worker that dies (the sessions it served are closed by the next instance to look),
 * and on SIGINT/SIGTERM asks every worker to drain and waits for them. A second signal stops at once.
 */
import cluster, { type Worker } from 'node:cluster';
import { CliError, type CliIo } from '../io.js';

/** Messages between the primary and a worker. */
export type WorkerMessage = { type: 'ready'; addresses: Record<string, string | undefined> } | { type: 'drain' };

/** Replacements of dead workers allowed per minute before the primary gives up (a crash loop). */
const MAX_RESTARTS_PER_MINUTE = 5;

export function parseWorkers(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new CliError(`--workers: expected a number from 1 to 64, got ${JSON.stringify(text)}`);
  return n;
}

/** The primary: starts `count` workers and supervises them until a signal; resolves when all have exited. */
export async function superviseWorkers(io: CliIo, count: number): Promise<void> {
  const workers = new Set<Worker>();
  const restarts: number[] = [];
  let draining = false;
  let failed: Error | undefined;
  /** Ends supervision: a signal, or a crash loop (`failed`). */
  let stop: () => void = () => undefined;
  /** Resolves once the last worker has exited. */
  let lastExited: () => void = () => undefined;

  /** Forks one worker and resolves with its addresses once it listens; rejects if it exits first. */
  const start = () =>
    new Promise<Record<string, string | undefined>>((resolve, reject) => {
      const worker = cluster.fork();
      workers.add(worker);
      let ready = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready' && !ready) {
          ready = true;
          resolve(m.addresses);
        }
      });
      worker.on('exit', (code: number | null, signal: string | null) => {
        workers.delete(worker);
        if (workers.size === 0) lastExited();
        if (ready) return replace(worker, code, signal);
        reject(new CliError(`a gateway worker could not start (exit ${code ?? signal}); see its message above`));
      });
    });

  const fail = (err: Error) => {
    failed ??= err;
    stop();
  };

  const replace = (worker: Worker, code: number | null, signal: string | null) => {
    if (draining) return;
    const now = Date.now();
    while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length >= MAX_RESTARTS_PER_MINUTE)
      return fail(new CliError(`gateway workers keep dying (${restarts.length + 1} in a minute); stopping`));
    restarts.push(now);
    io.err(`a gateway worker (pid ${worker.process.pid}) ended (${signal ?? `exit ${code}`}); starting another\n`);
    start().catch(fail);
  };

  /** Asks every worker to drain and resolves once all have exited. */
  const drainAll = () => {
    draining = true;
    const exited = new Promise<void>((resolve) => (workers.size === 0 ? resolve() : (lastExited = resolve)));
    for (const w of workers) if (w.isConnected()) w.send({ type: 'drain' } satisfies WorkerMessage);
    return exited;
  };

  try {
    let addresses: Record<string, string | undefined> = {};
    for (let i = 0; i < count; i++) addresses = await start();
    const listed = Object.entries(addresses)
      .filter(([, at]) => at !== undefined)
      .map(([name, at]) => `${name} ${at}`);
    io.err(`jitgate is serving with ${count} workers: ${listed.join(', ')} (Ctrl-C to stop)\n`);
  } catch (err) {
    await drainAll();
    throw err;
  }
  await new Promise<void>((resolve) => {
    stop = resolve;
    const onSignal = (signal: NodeJS.Signals) => {
      io.err(`${signal}: draining every worker's sessions (send it again to stop at once)\n`);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const now = () => {
        for (const w of workers) w.process.kill('SIGKILL');
        process.exit(signal === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', now);
      process.once('SIGTERM', now);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await drainAll();
  if (failed) throw failed;
}

/** In a worker: tells the primary where it listens. */
export function reportReady(addresses: Record<string, string | undefined>): void {
  process.send?.({ type: 'ready', addresses } satisfies WorkerMessage);
}

/** In a worker: resolves when the primary asks it to drain, or is gone (no gateway is left without its supervisor). */
export function untilDrainAsked(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('message', onMessage);
      process.off('disconnect', done);
      resolve();
    };
    const onMessage = (m: WorkerMessage) => {
      if (m.type === 'drain') done();
    };
    process.on('message', onMessage);
    process.on('disconnect', done);
  });
}
