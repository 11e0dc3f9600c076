/**
 * The PostgreSQL listener: accepts clients, negotiates TLS and the protocol version, authenticates
 * the jitgate token, connects the backend with the gateway-held credential, and hands both sockets
 * to a PostgresRelay. Every refusal is a FATAL ErrorResponse with a real SQLSTATE, sent to that
 * client only.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import { echo } from '../../core/printable.js';
import { OWN_CANCEL_KEYS, type SharedCancelKeys } from '../../core/protocol-engine.js';
import type { BackendLease, BackendRequest, BackendTarget, SessionEndReason, SessionInfo, SessionPipeline } from '../../core/types.js';
import { connectBackend, sendCancel, type BackendSession } from './backend.js';
import { build, EncryptionAnswer, MessageType, parseStartupPacket, ProtocolError, UnansweredProtocolError } from './codec.js';
import { SQLSTATE } from './errors.js';
import { MessageStream } from './message-stream.js';
import { PostgresCatalogs, type PostgresMasking } from './masking.js';
import { literalsReadOtherwise, PostgresRelay } from './relay.js';
import { anyConnectionVerifier, authenticateClient, type ClientAuthMethod, type TokenVerifier } from './server-auth.js';
import { TcpListener } from '../tcp-server.js';
import { protectPostgresStatement, type SessionProtectionContext } from '../../policy/pg-session-protection.js';
import { asSetStatement, sortStartupParams, StartupOptionsError, type StartupSettings } from './startup-params.js';

export interface PostgresListenerOptions {
  host: string;
  port: number;
  /** TLS offered to clients; null disables SSLRequest acceptance. */
  tls: { context: tls.SecureContext; certificateDer: Buffer } | null;
  tlsRequired: boolean;
  authMethods: ClientAuthMethod[];
  verifier: TokenVerifier;
  /** The PostgreSQL backend for a connection name, or undefined if none. */
  resolveTarget(connection: string): BackendTarget | undefined;
  /**
   * Every configured connection name: a client naming none of them is told the database does not
   * exist (3D000), but only once its token proved who it is, so names cannot be probed.
   */
  connectionNames?: () => string[];
  /** Creates the session pipeline; throwing a GatewayError refuses the session. */
  openSession(info: SessionInfo): Promise<SessionPipeline>;
  /**
   * The backend credential for this session (the stored one, or a role made just for it); released
   * when the session ends. Throwing a GatewayError refuses the session.
   */
  acquireBackend(request: BackendRequest): Promise<BackendLease>;
  /** A failed login; resolves (after any backoff) to a refusal to send instead of the usual one when logins are throttled. */
  onAuthFailure(info: { user: string; connection: string; clientAddress: string; reason: string }): void | Promise<string | undefined>;
  onBackendConnect(connection: string, seconds: number): void;
  /** Cancel keys shared with other gateway instances (default: this listener's own only). */
  cancelKeys?: SharedCancelKeys;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  handshakeTimeoutMs?: number;
}

interface LiveSession {
  relay: PostgresRelay;
  secret: number;
  pipelineId: string;
}

/** Live sessions are kept by the cancel key pid handed to the client. */
export class PostgresListener extends TcpListener<number, LiveSession> {
  /** The catalogs the sessions' masking reads, per connection. */
  private readonly catalogs: PostgresCatalogs;

  private readonly cancelKeys: SharedCancelKeys;

  constructor(private readonly options: PostgresListenerOptions) {
    super('postgres', options, options.log);
    this.cancelKeys = options.cancelKeys ?? OWN_CANCEL_KEYS;
    this.catalogs = new PostgresCatalogs(options.resolveTarget);
  }

  /** Drains, then closes the catalog connections masking read through. */
  override async close(timeoutMs: number): Promise<void> {
    await super.close(timeoutMs);
    await this.catalogs.close();
  }

  /** A cancel another instance passed on: checked and carried out as if it had come here. */
  cancelQuery(pid: number, secret: number): void {
    if (this.sessions.has(pid)) this.cancel(pid, secret);
  }

  /** Ends a live session by its pipeline id (admin kill). */
  kill(sessionId: string, reason: SessionEndReason, message: string): boolean {
    for (const s of this.sessions.values()) {
      if (s.pipelineId === sessionId) {
        // A statement still running would outlive the closed socket (PostgreSQL notices a gone
        // client only when it next writes), so a revoked user's long query is cancelled as well.
        if (!s.relay.idle) s.relay.cancel().catch((err) => this.options.log.warn({ err, session: sessionId }, 'cancel on kill failed'));
        s.relay.terminate(reason, new GatewayError('killed', message));
        return true;
      }
    }
    return false;
  }

  /** What is left after the drain period ends with 57P01, as PostgreSQL's own shutdown does. */
  protected endOnShutdown(s: LiveSession): void {
    s.relay.terminate(
      'gateway_shutdown',
      new GatewayError('shutting_down', 'terminating connection because the jitgate gateway is shutting down'),
    );
  }

  protected accept(socket: net.Socket): void {
    void this.handleClient(socket);
  }

  private async handleClient(socket: net.Socket): Promise<void> {
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // reported through the handshake or relay paths
    const clientAddress = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    this.handshakes.add(socket);
    let current: net.Socket = socket;
    try {
      if (this.shuttingDown) throw new GatewayError('shutting_down', 'the jitgate gateway is shutting down');
      const established = await this.handshake(socket, clientAddress, (s) => (current = s));
      if (established) await this.startRelay(established);
    } catch (err) {
      this.refuse(current, err, clientAddress);
    } finally {
      this.handshakes.delete(socket);
    }
  }

  private refuse(socket: net.Socket, err: unknown, clientAddress: string): void {
    if (err instanceof UnansweredProtocolError) {
      socket.destroy();
      return;
    }
    const error = err instanceof ProtocolError ? new GatewayError('protocol_violation', err.message) : toGatewayError(err);
    if (error.code === 'internal') this.options.log.error({ err, clientAddress }, 'unexpected error during handshake');
    if (!socket.destroyed && socket.writable) {
      socket.end(build.error({ severity: 'FATAL', code: SQLSTATE[error.code], message: error.message, detail: error.detail }));
    }
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private async handshake(
    socket: net.Socket,
    clientAddress: string,
    setCurrent: (s: net.Socket) => void,
  ): Promise<Established | undefined> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? 30_000;
    let stream = new MessageStream(socket, timeoutMs);
    let secure: tls.TLSSocket | null = null;
    let params: Map<string, string> | undefined;
    while (!params) {
      const { packet, trailing } = await stream.readStartupPacket();
      const startup = parseStartupPacket(packet);
      if (startup.kind === 'ssl' || startup.kind === 'gssenc') {
        if (secure) throw new ProtocolError('SSL negotiation requested on an encrypted connection');
        // Bytes sent after the request, before the answer, are plaintext that may have been injected
        // ahead of the handshake (CVE-2021-23214). As PostgreSQL 15 does, the request is answered,
        // the TLS handshake (if any) runs on what follows, and the session then ends with 08P01: the
        // early bytes are discarded, never read as TLS nor as a startup packet.
        const injected = trailing > 0;
        if (startup.kind === 'gssenc' || !this.options.tls) {
          socket.write(Buffer.of(EncryptionAnswer.Refuse));
          if (injected) throw unencryptedAfterRequest(startup.kind);
          continue;
        }
        stream.detach();
        socket.write(Buffer.of(EncryptionAnswer.Accept));
        secure = await upgrade(socket, this.options.tls.context, timeoutMs);
        setCurrent(secure);
        if (injected) throw unencryptedAfterRequest('ssl');
        stream = new MessageStream(secure, timeoutMs);
      } else if (startup.kind === 'cancel') {
        stream.detach();
        socket.destroy();
        this.cancel(startup.pid, startup.secret);
        return undefined;
      } else {
        if (startup.major !== 3) {
          throw new GatewayError(
            'unsupported_protocol',
            `unsupported frontend protocol ${startup.major}.${startup.minor}: server supports 3.0 to 3.0`,
          );
        }
        const unrecognized = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
        if (startup.minor > 0 || unrecognized.length > 0) {
          (secure ?? socket).write(build.negotiateProtocolVersion(0, unrecognized));
        }
        params = startup.params;
      }
    }
    const client = secure ?? socket;
    const send = (b: Buffer) => void client.write(b);

    const user = params.get('user');
    if (!user) throw new GatewayError('auth_method_rejected', 'no PostgreSQL user name specified in startup packet');
    const connection = params.get('database') || user;
    if (params.has('replication') && params.get('replication') !== 'false' && params.get('replication') !== '0') {
      throw new GatewayError('unsupported_protocol', 'replication connections are not supported through jitgate');
    }
    if (this.options.tlsRequired && !secure) {
      throw new GatewayError('auth_method_rejected', 'jitgate requires an encrypted connection', undefined);
    }

    stream.startTyped();
    const target = this.options.resolveTarget(connection);
    // A connection name nobody configured: the token is checked against the user's tokens on every
    // connection, so only someone who holds a token learns that the name does not exist.
    const verifier = target ? this.options.verifier : anyConnectionVerifier(this.options.verifier, this.options.connectionNames?.() ?? []);
    const auth = await authenticateClient(stream, send, user, connection, verifier, {
      methods: this.options.authMethods,
      tls: secure ? { certificate: this.options.tls!.certificateDer } : null,
    });
    if (!auth.ok) {
      const throttled = await this.options.onAuthFailure({ user, connection, clientAddress, reason: auth.reason });
      if (throttled !== undefined) throw new GatewayError('too_many_logins', throttled);
      if (auth.reason === 'method_unavailable') {
        throw new GatewayError('auth_method_rejected', 'no authentication method is available without TLS; use sslmode=require');
      }
      throw new GatewayError('auth_failed', `password authentication failed for user "${echo(user)}"`);
    }
    if (!target) throw new GatewayError('unknown_connection', `database "${echo(connection)}" does not exist`);
    // As PostgreSQL, options are read once the client has authenticated.
    let settings: StartupSettings;
    try {
      settings = sortStartupParams(params);
    } catch (err) {
      if (err instanceof StartupOptionsError) throw new GatewayError('protocol_violation', err.message);
      throw err;
    }

    const protection: SessionProtectionContext = { ownBackendPid: 0, sharedRole: true };
    // The session builds this protocol's masker when masking applies (and decides with its check).
    const built: { masking?: PostgresMasking } = {};
    const pipeline = await this.options.openSession({
      user,
      connection,
      clientAddress,
      applicationName: params.get('application_name') ?? null,
      tokenId: auth.tokenId,
      authMethod: auth.method,
      encrypted: secure !== null,
      protect: (statement) => protectPostgresStatement(statement, protection),
      masker: (scope) => (built.masking = this.catalogs.masking(scope)),
    });
    const masking = built.masking;
    // Masking reads the catalog first (through the gateway's own connection), so that the startup
    // settings below are decided as every later statement is.
    if (masking) {
      try {
        await prepareMasking(masking, connection, this.options.log);
      } catch (err) {
        pipeline.end('backend_refused', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
        throw err;
      }
    }
    let backendParams: Map<string, string>;
    try {
      backendParams = this.startupSettings(pipeline, settings);
    } catch (err) {
      pipeline.end('client_error', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      throw err;
    }
    let backend: BackendSession;
    let lease: BackendLease | undefined;
    const began = process.hrtime.bigint();
    try {
      lease = await this.options.acquireBackend({ sessionId: pipeline.id, user, connection, tokenId: auth.tokenId, target });
      backend = await connectBackend(lease.target, backendParams);
      if (backend.startupFrames.some((f) => f[0] === MessageType.ParameterStatus && literalsReadOtherwise(f, 0, f.length))) {
        backend.socket.destroy();
        throw new GatewayError(
          'denied',
          'jitgate: this session would start with standard_conforming_strings off or a client encoding jitgate cannot read; statements could not be checked as the server reads them',
        );
      }
      protection.ownBackendPid = backend.pid;
      // A role made for this session alone: PostgreSQL itself keeps other sessions out of its view.
      protection.sharedRole = lease.target.user === target.user;
      this.options.onBackendConnect(connection, Number(process.hrtime.bigint() - began) / 1e9);
    } catch (err) {
      pipeline.end('backend_refused', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease?.release();
      this.options.log.warn(
        { connection, err: (err as Error).message, detail: (err as GatewayError).detail, cause: (err as GatewayError).logDetail },
        'backend connect failed',
      );
      throw err;
    }
    const clientEarly = stream.detach();
    if (client.destroyed || this.shuttingDown) {
      backend.socket.destroy();
      pipeline.end(this.shuttingDown ? 'gateway_shutdown' : 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease.release();
      return undefined;
    }
    return { client, backend, target: lease.target, lease, pipeline, masking, clientEarly };
  }

  /**
   * The startup parameters the backend gets: the allow-listed ones as sent, and every other setting
   * (of `options` or the packet's own) that the session's rules allow, decided (and recorded) as the
   * SET it amounts to. A refused one refuses the connection, naming it; one that would need approval
   * cannot wait at login.
   */
  private startupSettings(pipeline: SessionPipeline, settings: StartupSettings): Map<string, string> {
    // As in PostgreSQL, settings from options come first and the packet's own parameters override them.
    const out = new Map<string, string>();
    for (const { name, value } of settings.requested) {
      // atLogin: a review rule refuses rather than holds (nobody can wait for approvers in a login).
      const decision = pipeline.decide({ source: 'simple', text: asSetStatement(name, value), atLogin: true });
      if (decision instanceof Promise) {
        decision.then(undefined, () => undefined);
        throw new GatewayError('denied', `jitgate: the setting ${name} at login cannot be decided yet; SET it in the session instead`);
      }
      if (decision.effect !== 'allow') {
        throw new GatewayError(
          'denied',
          decision.message ?? `jitgate: the setting ${name} at login is not allowed`,
          decision.reasons.length ? `reason: ${decision.reasons.join(', ')}` : undefined,
        );
      }
      out.set(name, value);
    }
    for (const [name, value] of settings.passed) {
      out.delete(name);
      out.set(name, value);
    }
    if (out.size > 0) {
      this.options.log.info({ session: pipeline.id, passed: [...out.keys()] }, 'startup parameters');
    }
    return out;
  }

  private async startRelay({ client, backend, target, lease, pipeline, masking, clientEarly }: Established): Promise<void> {
    // A pid no session here or on another instance holds: a cancel reaching any instance finds it.
    // Both sockets are paused meanwhile (the handshake detached them).
    let pid = randomInt(1, 0x7fffffff);
    while (this.sessions.has(pid) || !(await this.cancelKeys.claim(pid, pipeline.id))) pid = randomInt(1, 0x7fffffff);
    if (client.destroyed || this.shuttingDown) {
      this.cancelKeys.release(pid);
      backend.socket.destroy();
      pipeline.end(this.shuttingDown ? 'gateway_shutdown' : 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease.release();
      return;
    }
    const secret = randomInt(0, 0x7fffffff);
    client.pause();
    client.write(
      Buffer.concat([
        build.authOk(),
        ...backend.startupFrames,
        build.backendKeyData(pid, secret),
        build.readyForQuery(backend.readyStatus),
      ]),
    );
    const relay = new PostgresRelay({
      client,
      backend: backend.socket,
      pipeline,
      ...(masking ? { masking } : {}),
      readyStatus: backend.readyStatus,
      cancelBackend: () => sendCancel(target, backend.pid, backend.secret),
      onEnd: (reason) => {
        this.sessions.delete(pid);
        this.cancelKeys.release(pid);
        pipeline.end(reason, relay.counters);
        lease.release();
      },
      onError: (err) => this.options.log.warn({ err, session: pipeline.id }, 'relay error'),
    });
    this.sessions.set(pid, { relay, secret, pipelineId: pipeline.id });
    pipeline.watchCounters?.(relay.counters);
    relay.start(clientEarly, backend.leftover);
  }

  private cancel(pid: number, secret: number): void {
    const session = this.sessions.get(pid);
    // A key handed out by another instance: that instance checks the secret and cancels.
    if (!session) return this.cancelKeys.passOn(pid, secret);
    // A wrong key is ignored silently, as PostgreSQL does.
    if (session.secret !== secret) return;
    // The client's Ctrl-C: withdraws a statement held for approval, else cancels the backend's.
    session.relay.clientCancel().catch((err) => this.options.log.warn({ err }, 'cancel request to backend failed'));
  }
}

interface Established {
  client: net.Socket;
  backend: BackendSession;
  target: BackendTarget;
  lease: BackendLease;
  pipeline: SessionPipeline;
  /** The session's masking, as the session pipeline built it; absent: plain passthrough. */
  masking: PostgresMasking | undefined;
  clientEarly: Buffer;
}

function unencryptedAfterRequest(kind: 'ssl' | 'gssenc'): GatewayError {
  return new GatewayError(
    'protocol_violation',
    `received unencrypted data after ${kind === 'ssl' ? 'SSL' : 'GSSAPI encryption'} request`,
    'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
  );
}

/**
 * Masking needs the backend's catalog before the first statement. Without it the session does not
 * start (fail closed): results that cannot be masked are not sent.
 */
async function prepareMasking(masking: PostgresMasking, connection: string, log: PostgresListenerOptions['log']): Promise<void> {
  try {
    await masking.prepare();
  } catch (err) {
    // The cause is the gateway's own (its catalog query, its backend login): logged, not sent.
    log.warn({ connection, err: (err as Error).message }, 'cannot read the catalog masking needs');
    throw new GatewayError('backend_unavailable', 'jitgate cannot read the catalog masking needs for this connection; try again later');
  }
}

function upgrade(socket: net.Socket, context: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new UnansweredProtocolError('TLS handshake timed out'));
    }, timeoutMs);
    secure.once('secure', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(new UnansweredProtocolError(`TLS handshake failed: ${err.message}`));
    });
  });
}
