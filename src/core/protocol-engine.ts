/**
 * The contract between the gateway and one wire protocol, and the registry the composition root
 * iterates. A protocol is one folder under `protocols/` that exports a `ProtocolEngine`, plus one
 * registration in `main.ts`; nothing else in the gateway names a protocol to start, stop, kill,
 * probe or advertise its listener.
 *
 * What an engine provides:
 * - a listener (accept, authenticate with jitgate tokens, relay through the session pipeline) with
 *   one lifecycle: listen, port, listening, kill, close (drain);
 * - connect instructions for people (the block `POST /api/tokens` answers under the protocol's name);
 * - how agents reach it (the MCP tools connect to the listener as any client does: `agentEndpoint`).
 * Result masking is the protocol's own: its listener opens a session with a masker factory
 * (`SessionInfo.masker`, an adapter in its folder) that the session pipeline builds from the
 * protocol-neutral `MaskingScope`, decides with, and hands back for the relay. Statement analysis,
 * transcript formatting and ephemeral credentials are chosen per `Protocol` by the session pipeline,
 * recording and credentials modules (they may not import a protocol: see README "Boundaries");
 * `ProtocolCapabilities` names where each one lives.
 */
import type tls from 'node:tls';
import type { BackendLease, BackendRequest, BackendTarget, Protocol, SessionEndReason, SessionInfo, SessionPipeline } from './types.js';

/** One running protocol listener, as the composition root drives it. */
export interface ProtocolListener {
  /** Binds; resolves to `host:port` (IPv6 hosts in brackets). */
  listen(): Promise<string>;
  /** The bound port (after listen). */
  readonly port: number;
  /** Bound and not draining: what /readyz reports. */
  readonly listening: boolean;
  /** Ends one live session with a reason (kill, grant ended); false if this listener does not hold it. */
  kill(sessionId: string, reason: SessionEndReason, message: string): boolean;
  /** A cancel passed on by another instance, for a key this listener handed out (protocols with cancel keys). */
  cancelQuery?(pid: number, secret: number): void;
  /** Ends every live session with a reason (this instance was declared lost); returns how many. */
  killAll(reason: SessionEndReason, message: string): number;
  /** Stops accepting, lets sessions finish for up to `drainTimeoutMs`, then ends the rest. */
  close(drainTimeoutMs: number): Promise<void>;
}

/**
 * Checks a jitgate token given as a password. Every protocol uses `verifyCleartext`; those with
 * SCRAM-like exchanges also read the stored verifiers (all of one user's tokens share one salt).
 */
export interface ClientTokenVerifier {
  scramCandidates(
    user: string,
    connection: string,
  ): Promise<{
    salt: Buffer;
    iterations: number;
    candidates: Array<{ salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer; tokenId: string }>;
  }>;
  verifyCleartext(user: string, connection: string, token: string): Promise<string | undefined>;
}

/** A configured connection, as much of it as listeners read. */
export interface EngineConnection {
  name: string;
  type: Protocol;
  /** MySQL: LOAD DATA LOCAL INFILE allowed. */
  localInfile?: boolean;
  credentials?: { mode: 'static' } | { mode: 'ephemeral'; roles: readonly string[] };
}

type ListenerLog = { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };

/** What the composition root gives every protocol's listener. */
export interface ListenerContext {
  /** The protocol's `listeners.<protocol>` setting. */
  host: string;
  port: number;
  /** The gateway's certificate for clients (DER too, for channel binding). */
  tls: { context: tls.SecureContext; certificateDer: Buffer };
  tlsRequired: boolean;
  verifier: ClientTokenVerifier;
  /** Every configured connection (of every protocol: a name of another protocol is refused by name). */
  connections: readonly EngineConnection[];
  /** The backend of a connection of this protocol, or undefined. */
  resolveTarget(connection: string): BackendTarget | undefined;
  /** Creates the session pipeline (grant check, recording); throwing a GatewayError refuses the session. */
  openSession(info: SessionInfo): Promise<SessionPipeline>;
  /** The session's backend credential, released when the session ends. */
  acquireBackend(request: BackendRequest): Promise<BackendLease>;
  /** A failed login; resolves (after any backoff) to a refusal to send instead of the usual one when throttled. */
  onAuthFailure(info: { user: string; connection: string; clientAddress: string; reason: string }): void | Promise<string | undefined>;
  onBackendConnect(connection: string, seconds: number): void;
  /** Cancel keys every gateway instance knows (see SharedCancelKeys). */
  cancelKeys: SharedCancelKeys;
  log: ListenerLog;
}

/**
 * Behind a load balancer a client's cancel (psql's Ctrl-C opens a new connection) may reach
 * another gateway instance than the one running its query. Each instance records the keys it hands
 * out, and passes on a cancel whose key it did not; the instance that did checks the secret, as
 * the server would, and cancels.
 */
export interface SharedCancelKeys {
  /**
   * Records a key handed out for a session; false when another instance holds that pid (pick
   * another). Claiming a pid this instance holds again names its session (MySQL hands out the id in
   * its greeting, before the session exists).
   */
  claim(pid: number, sessionId: string): Promise<boolean>;
  /** The session ended (in the background: nothing waits on it). */
  release(pid: number): void;
  /** A cancel for a key this instance did not hand out: to the instance that did, if any (in the background). */
  passOn(pid: number, secret: number): void;
  /**
   * A MySQL `KILL [QUERY] pid` for an id this instance did not hand out: when `requester` owns the
   * session that holds it on another instance, that instance is asked to stop its query or end it.
   */
  passOnKill(pid: number, requester: string, queryOnly: boolean): Promise<'passed' | 'unknown' | 'not_owner'>;
}

/** A gateway alone: its keys are its own, and a cancel or kill for any other key finds nothing. */
export const OWN_CANCEL_KEYS: SharedCancelKeys = {
  claim: async () => true,
  release: () => undefined,
  passOn: () => undefined,
  passOnKill: async () => 'unknown',
};

/** Where a listener is reached: its configured host and bound port. */
export interface ListenerAddress {
  host: string;
  port: number;
}

/** Where an agent's data session connects: the listener on loopback, verified with the gateway's certificate. */
export interface AgentEndpoint extends ListenerAddress {
  certificate: string;
}

export interface ProtocolEngine {
  readonly protocol: Protocol;
  /** Builds (does not bind) the listener. */
  createListener(context: ListenerContext): ProtocolListener;
  /**
   * What a person needs to connect to `connection` through this listener: answered by
   * `POST /api/tokens` under the protocol's name (e.g. `{ postgres: { host, port, database, sslmode } }`).
   */
  connectInstructions(at: ListenerAddress, session: { connection: string; user: string }): Record<string, unknown>;
}

/**
 * Where each per-protocol capability lives (for whoever adds a protocol): these modules may not
 * import a protocol, so they choose by `Protocol` and the new protocol adds its case there.
 */
export type ProtocolCapabilities = {
  statementAnalysis: 'sql/ (parsers), policy/ (guardrails)';
  resultMasking: 'protocols/<name>/masking.ts (SessionInfo.masker); session/masking-wire.ts for the policy tool';
  transcript: 'recording/transcript.ts';
  ephemeralCredentials: 'credentials/ephemeral/provider.ts';
  agentTools: 'mcp/';
};

/** A listener that is up, with its engine. */
interface Running {
  engine: ProtocolEngine;
  listener: ProtocolListener;
  host: string;
  address: string;
}

/**
 * The registered protocol engines and, once started, their listeners. The composition root
 * iterates this instead of naming each protocol.
 */
export class ProtocolRegistry {
  private readonly engines = new Map<Protocol, ProtocolEngine>();
  private readonly running = new Map<Protocol, Running>();

  constructor(engines: readonly ProtocolEngine[]) {
    for (const e of engines) {
      if (this.engines.has(e.protocol)) throw new Error(`protocol ${e.protocol} is registered twice`);
      this.engines.set(e.protocol, e);
    }
  }

  /**
   * Starts the listener of every protocol that has a `listeners.<protocol>` setting, one after the
   * other (a port conflict names the protocol). `context` gives each its own part of the wiring.
   */
  async start(
    listenersConfig: Partial<Record<Protocol, { host: string; port: number }>>,
    context: (protocol: Protocol, at: { host: string; port: number }) => ListenerContext,
    started: (protocol: Protocol, address: string) => void,
  ): Promise<void> {
    for (const engine of this.engines.values()) {
      const at = listenersConfig[engine.protocol];
      if (!at) continue;
      const listener = engine.createListener(context(engine.protocol, at));
      // Registered before binding, so that a failed bind still closes what was built.
      const entry: Running = { engine, listener, host: at.host, address: '' };
      this.running.set(engine.protocol, entry);
      entry.address = await listener.listen();
      started(engine.protocol, entry.address);
    }
  }

  /** The bound `host:port` of each running listener. */
  addresses(): Partial<Record<Protocol, string>> {
    return Object.fromEntries([...this.running].map(([p, r]) => [p, r.address]));
  }

  /** The running listeners, by protocol. */
  listeners(): ReadonlyMap<Protocol, ProtocolListener> {
    return new Map([...this.running].map(([p, r]) => [p, r.listener]));
  }

  /** Ends a session on whichever listener holds it. */
  kill(sessionId: string, reason: SessionEndReason, message: string): boolean {
    for (const r of this.running.values()) if (r.listener.kill(sessionId, reason, message)) return true;
    return false;
  }

  /** A cancel another instance passed on, to this protocol's listener. */
  cancelQuery(protocol: Protocol, pid: number, secret: number): void {
    this.running.get(protocol)?.listener.cancelQuery?.(pid, secret);
  }

  /** Ends every session of every listener; returns how many. */
  killAll(reason: SessionEndReason, message: string): number {
    let n = 0;
    for (const r of this.running.values()) n += r.listener.killAll(reason, message);
    return n;
  }

  /** Drains every listener at once. */
  async close(drainTimeoutMs: number): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.listener.close(drainTimeoutMs)));
  }

  /** /readyz reasons: `<protocol>_listener_down` for each listener not accepting. */
  notReady(): string[] {
    return [...this.running].filter(([, r]) => !r.listener.listening).map(([p]) => `${p}_listener_down`);
  }

  /** Where a running listener is reached (configured host, bound port), if it runs. */
  address(protocol: Protocol): ListenerAddress | undefined {
    const r = this.running.get(protocol);
    return r && r.address ? { host: r.host, port: r.listener.port } : undefined;
  }

  /** The connect block for a person, under the protocol's name; empty when that listener is off. */
  connectInstructions(protocol: Protocol, session: { connection: string; user: string }): Record<string, unknown> {
    const r = this.running.get(protocol);
    const at = this.address(protocol);
    return r && at ? r.engine.connectInstructions(at, session) : {};
  }
}
