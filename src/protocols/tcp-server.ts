/**
 * The lifecycle every protocol listener shares: bind and report the address, readiness, the live
 * sessions and handshakes in progress, and the graceful drain at shutdown. A protocol's listener
 * extends it with its handshake (`accept`), how it kills a session and how it ends one at shutdown.
 */
import net from 'node:net';
import type { ProtocolListener } from '../core/protocol-engine.js';
import type { SessionEndReason } from '../core/types.js';

/** A live session as the shared lifecycle sees it: its relay can be asked to finish and stop. */
export interface DrainableSession {
  /** The session pipeline's id (the session's id in the store). */
  pipelineId: string;
  relay: { drain(): void };
}

/** How often the drain looks whether every session has finished. */
const DRAIN_POLL_MS = 25;

export abstract class TcpListener<K, S extends DrainableSession> implements ProtocolListener {
  /** Live sessions, by the key the protocol looks them up with (cancel key, connection id, session id). */
  protected readonly sessions = new Map<K, S>();
  /** Client sockets still authenticating: destroyed at shutdown. */
  protected readonly handshakes = new Set<net.Socket>();
  private readonly server: net.Server;
  private closing = false;

  constructor(
    protocol: string,
    private readonly bind: { host: string; port: number },
    log: { error(obj: object, msg?: string): void },
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => log.error({ err }, `${protocol} listener error`));
  }

  /** A client connected: the protocol's handshake. */
  protected abstract accept(socket: net.Socket): void;

  /** Ends a live session by its pipeline id (admin kill, grant ended); false if not held here. */
  abstract kill(sessionId: string, reason: SessionEndReason, message: string): boolean;

  /** Ends every live session with a reason; returns how many. */
  killAll(reason: SessionEndReason, message: string): number {
    const ids = [...this.sessions.values()].map((s) => s.pipelineId);
    return ids.filter((id) => this.kill(id, reason, message)).length;
  }

  /** Ends a session still live when the drain period is over, in the protocol's own words. */
  protected abstract endOnShutdown(session: S): void;

  /** Binds and resolves to `host:port` (IPv6 hosts in brackets). */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.bind.port, this.bind.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    return `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get listening(): boolean {
    return this.server.listening && !this.closing;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Draining: new clients are refused, sessions finish what is in flight. */
  get shuttingDown(): boolean {
    return this.closing;
  }

  /**
   * Graceful shutdown: stop accepting, drop handshakes, let each session finish its statement in
   * flight (and, where the protocol tells, its open transaction), then after `timeoutMs` end
   * whatever is left.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.handshakes) socket.destroy();
    for (const s of this.sessions.values()) s.relay.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    for (const s of [...this.sessions.values()]) this.endOnShutdown(s);
    await stopped;
  }
}
