/**
 * Each backend connection's health as the gateway sees it from its logins: when a session last
 * reached it, when one last failed and why, and how many failed in a row. Shown in /readyz details
 * and as metrics (`jitgate_backend_up{connection}`, `jitgate_backend_connect_failures_total`); a
 * backend that is down does not make the gateway unready (the other connections still serve).
 *
 * What a failed login says is only "the backend refused or was unreachable" (the listener ends the
 * session as `backend_refused`); the reason is found by a TCP connect to the backend's address,
 * at most once per `probeEveryMs` per connection: the network error (refused, timed out,
 * unresolvable) or, when the port answers, that the login or session setup failed.
 */
import net from 'node:net';
import type { SessionPipeline } from '../core/types.js';
import type { Metrics } from './metrics.js';

export interface BackendAddress {
  connection: string;
  protocol: string;
  host: string;
  port: number;
}

export interface BackendHealthState {
  protocol: string;
  /** null until a session has tried it. */
  up: boolean | null;
  lastConnectAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
  /** Failed logins since the last one that reached the backend. */
  failingLogins: number;
  failuresTotal: number;
}

/** Why a TCP connect to the backend fails, or null when it is accepted. */
export type BackendProbe = (address: BackendAddress) => Promise<string | null>;

export interface BackendHealthOptions {
  backends: readonly BackendAddress[];
  metrics: Pick<Metrics, 'backendUp' | 'backendConnectFailuresTotal'>;
  now: () => number;
  probe?: BackendProbe;
  probeEveryMs?: number;
}

export class BackendHealth {
  private readonly states = new Map<string, BackendHealthState>();
  private readonly addresses = new Map<string, BackendAddress>();
  private readonly probedAt = new Map<string, number>();

  constructor(private readonly o: BackendHealthOptions) {
    for (const b of o.backends) {
      this.addresses.set(b.connection, b);
      this.states.set(b.connection, {
        protocol: b.protocol,
        up: null,
        lastConnectAt: null,
        lastFailureAt: null,
        lastError: null,
        failingLogins: 0,
        failuresTotal: 0,
      });
      // Present from the start, so a dashboard sees 0 rather than no series.
      o.metrics.backendConnectFailuresTotal.inc({ connection: b.connection }, 0);
    }
  }

  /** A session reached the backend. */
  connected(connection: string): void {
    const s = this.states.get(connection);
    if (!s) return;
    s.up = true;
    s.lastConnectAt = this.o.now();
    s.failingLogins = 0;
    this.o.metrics.backendUp.set({ connection }, 1);
  }

  /** A session could not reach the backend (or its login or setup there failed). */
  failed(connection: string): void {
    const s = this.states.get(connection);
    if (!s) return;
    const at = this.o.now();
    s.up = false;
    s.lastFailureAt = at;
    s.failingLogins++;
    s.failuresTotal++;
    s.lastError ??= 'the backend refused the login or could not be reached';
    this.o.metrics.backendUp.set({ connection }, 0);
    this.o.metrics.backendConnectFailuresTotal.inc({ connection });
    this.diagnose(connection, at);
  }

  /** A session pipeline whose `backend_refused` end counts as a failed login on `connection`. */
  observe(pipeline: SessionPipeline, connection: string): SessionPipeline {
    return {
      ...pipeline,
      end: (reason, counters) => {
        if (reason === 'backend_refused') this.failed(connection);
        pipeline.end(reason, counters);
      },
    };
  }

  /** Every connection's state (for /readyz details). */
  snapshot(): Record<string, BackendHealthState> {
    return Object.fromEntries([...this.states].map(([name, s]) => [name, { ...s }]));
  }

  /** Connections whose last login failed. */
  down(): string[] {
    return [...this.states].filter(([, s]) => s.up === false).map(([name]) => name);
  }

  private diagnose(connection: string, at: number): void {
    const address = this.addresses.get(connection);
    const probe = this.o.probe ?? tcpProbe;
    if (!address) return;
    const last = this.probedAt.get(connection);
    if (last !== undefined && at - last < (this.o.probeEveryMs ?? 5_000)) return;
    this.probedAt.set(connection, at);
    void probe(address).then(
      (why) => {
        const s = this.states.get(connection);
        if (!s || s.up !== false) return;
        s.lastError = why ?? `${address.host}:${address.port} accepts connections, but the login or session setup failed`;
      },
      () => undefined,
    );
  }
}

/** A TCP connect to the backend, closed at once; the error's code and address, or null. */
export function tcpProbe(address: BackendAddress, timeoutMs = 3_000): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(timeoutMs, () => done(`connect to ${address.host}:${address.port} timed out after ${timeoutMs} ms`));
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(`connect to ${address.host}:${address.port} failed: ${err.code ?? err.message}`),
    );
  });
}
