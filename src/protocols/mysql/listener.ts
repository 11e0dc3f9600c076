/**
 * The MySQL listener: greets clients (protocol 10), upgrades to TLS on an SSL request, authenticates
 * the jitgate token (./server-auth.ts), connects the backend with the session's credential and
 * hands both sockets to a MysqlRelay. user = the person's login, database = the connection's name.
 * Every refusal is an ERR packet with the server's own error numbers, sent to that client only.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import { echo } from '../../core/printable.js';
import type { BackendLease, BackendTarget, SessionEndReason, SessionPipeline } from '../../core/types.js';
import type { BackendRequest, SessionInfo } from '../../core/types.js';
import { OWN_CANCEL_KEYS, type SharedCancelKeys } from '../../core/protocol-engine.js';
import { connectMysqlBackend, prepareSession, readBackendVersion, runOnBackend, type MysqlBackendSession } from './backend.js';
import { BackendLoginRefused, MYSQL_ERROR } from './errors.js';
import { buildGreeting, CACHING_SHA2, isSslRequest, newNonce, parseHandshakeResponse, type HandshakeResponse } from './handshake.js';
import { Cap, DEFAULT_CHARSET, errPayload, GATEWAY_CAPABILITIES, MysqlProtocolError, okPayload, packet, Status } from './packets.js';
import { PacketStream } from './packet-stream.js';
import { MysqlRelay, type KillRequest } from './relay.js';
import { MysqlMasking, VIEWS_QUERY } from './masking.js';
import { querySession } from './admin-client.js';
import { authenticateMysqlClient, ScrambleCache, type MysqlTokenVerifier } from './server-auth.js';
import { TcpListener } from '../tcp-server.js';

/** Announced until a backend has told its version (the greeting of the first MySQL connection is read at listen()). */
export const FALLBACK_SERVER_VERSION = '8.0.36-jitgate';

/**
 * The version clients are told: the backend's own (tools choose their dialect by it, MariaDB's
 * `5.5.5-` prefix included), with jitgate as a suffix as MariaDB marks its builds (`-log`, `-debug`).
 */
export function announcedVersion(backendVersion: string): string {
  return backendVersion.endsWith('-jitgate') ? backendVersion : `${backendVersion}-jitgate`;
}

/** Handshake collation ids of big5, sjis, gbk, cp932 and gb18030 (see HIDING_CHARSETS in sql/mysql.ts). */
const HIDING_COLLATIONS = new Set([1, 84, 13, 88, 28, 87, 95, 96, 248, 249, 250]);

export interface MysqlListenerOptions {
  host: string;
  port: number;
  /** TLS offered to clients; null: SSL requests are refused. */
  tls: { context: tls.SecureContext } | null;
  tlsRequired: boolean;
  verifier: MysqlTokenVerifier;
  /** The MySQL backend for a connection name, or undefined if none. */
  resolveTarget(connection: string): BackendTarget | undefined;
  /** Whether a name is a configured connection of any kind (COM_INIT_DB to another one is refused). */
  isConnection(name: string): boolean;
  /** The credential KILL QUERY runs with on the backend (the connection's stored one). */
  killTarget(connection: string): BackendTarget | undefined;
  /**
   * Roles a per-session user activates at session start (ephemeral credentials): SET DEFAULT ROLE
   * for another user needs write access to the mysql schema, which the gateway's user should not have.
   */
  sessionRoles?(connection: string): string[];
  /** Whether LOAD DATA LOCAL may run on this connection. */
  localFilesAllowed?(connection: string): boolean;
  /** The MySQL connections' names: the first one's backend version is what the greeting announces. */
  mysqlConnections?: string[];
  openSession(info: SessionInfo): Promise<SessionPipeline>;
  acquireBackend(request: BackendRequest): Promise<BackendLease>;
  /** A failed login; resolves (after any backoff) to a refusal to send instead of the usual one when logins are throttled. */
  onAuthFailure(info: { user: string; connection: string; clientAddress: string; reason: string }): void | Promise<string | undefined>;
  onBackendConnect(connection: string, seconds: number): void;
  /** Connection ids shared with other gateway instances, for KILL (default: this listener's own only). */
  cancelKeys?: SharedCancelKeys;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  handshakeTimeoutMs?: number;
}

interface LiveSession {
  relay: MysqlRelay;
  pipelineId: string;
  user: string;
  connection: string;
  backendThreadId: number;
}

/** Live sessions are kept by the connection id the client was given. */
export class MysqlListener extends TcpListener<number, LiveSession> {
  private readonly cache = new ScrambleCache();
  private nextId = randomInt(1000, 100_000);
  private serverVersion = FALLBACK_SERVER_VERSION;
  private readonly cancelKeys: SharedCancelKeys;

  constructor(private readonly options: MysqlListenerOptions) {
    super('mysql', options, options.log);
    this.cancelKeys = options.cancelKeys ?? OWN_CANCEL_KEYS;
  }

  override async listen(): Promise<string> {
    const address = await super.listen();
    await this.probeVersion();
    return address;
  }

  /** Reads the first MySQL backend's greeting (no login) for the version to announce; later logins keep it current. */
  private async probeVersion(): Promise<void> {
    const name = this.options.mysqlConnections?.[0];
    const target = name ? this.options.resolveTarget(name) : undefined;
    if (!target) return;
    try {
      this.serverVersion = announcedVersion(await readBackendVersion(target));
    } catch (err) {
      this.options.log.warn(
        { connection: name, err: (err as Error).message },
        'cannot read the MySQL backend version; announcing a default until a session connects',
      );
    }
  }

  /**
   * A login without a database (mysqlslap, some GUI tools) opens the user's MySQL connection when
   * they may log in to exactly one; with none or several it stays "No database selected".
   */
  private async onlyConnectionOf(user: string): Promise<string> {
    const usable: string[] = [];
    for (const name of this.options.mysqlConnections ?? []) {
      if ((await this.options.verifier.scramCandidates(user, name)).candidates.length > 0) usable.push(name);
    }
    return usable.length === 1 ? usable[0]! : '';
  }

  /** The version the greeting announces now. */
  get announcedVersion(): string {
    return this.serverVersion;
  }

  /** Ends a live session by its pipeline id (admin kill, grant ended). */
  kill(sessionId: string, reason: SessionEndReason, message: string): boolean {
    for (const [id, s] of this.sessions) {
      if (s.pipelineId === sessionId) {
        if (!s.relay.idle)
          this.killBackendQuery(s).catch((err) => this.options.log.warn({ err, session: sessionId }, 'KILL QUERY on kill failed'));
        s.relay.terminate(reason, new GatewayError('killed', message));
        this.sessions.delete(id);
        return true;
      }
    }
    return false;
  }

  /** What is left after the drain period ends with the server's own shutdown error (1053). */
  protected endOnShutdown(s: LiveSession): void {
    s.relay.terminate('gateway_shutdown', new GatewayError('shutting_down', 'Server shutdown in progress (jitgate is shutting down)'));
  }

  /** An id no session here or on another instance holds: a KILL reaching any instance finds it. */
  private async connectionId(): Promise<number> {
    for (;;) {
      const id = (this.nextId = this.nextId >= 0x7fffffff ? 1000 : this.nextId + 1);
      if (!this.sessions.has(id) && (await this.cancelKeys.claim(id, ''))) return id;
    }
  }

  /** A KILL QUERY another instance passed on (its owner checked there): carried out as if it had come here. */
  cancelQuery(connectionId: number): void {
    const s = this.sessions.get(connectionId);
    if (!s || s.relay.withdrawHeld() || s.relay.idle) return;
    this.killBackendQuery(s).catch((err) => this.options.log.warn({ err, session: s.pipelineId }, 'KILL QUERY passed on failed'));
  }

  protected accept(socket: net.Socket): void {
    void this.handleClient(socket);
  }

  private async handleClient(socket: net.Socket): Promise<void> {
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // reported through the handshake or relay paths
    const clientAddress = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    this.handshakes.add(socket);
    const state = { current: socket as net.Socket, seq: 0 };
    const connectionId = await this.connectionId();
    try {
      if (this.shuttingDown) throw new GatewayError('shutting_down', 'Server shutdown in progress (jitgate is shutting down)');
      await this.handshake(socket, clientAddress, state, connectionId);
    } catch (err) {
      this.refuse(state.current, err, clientAddress, state.seq);
    } finally {
      this.handshakes.delete(socket);
      // No session came of it (refused, or gone before it began): the id is free again.
      if (!this.sessions.has(connectionId)) this.cancelKeys.release(connectionId);
    }
  }

  private refuse(socket: net.Socket, err: unknown, clientAddress: string, seq: number): void {
    const error = err instanceof MysqlProtocolError ? new GatewayError('protocol_violation', err.message) : toGatewayError(err);
    if (error.code === 'internal') this.options.log.error({ err, clientAddress }, 'unexpected error during mysql handshake');
    const { errno, sqlState } = error instanceof BackendLoginRefused ? error : MYSQL_ERROR[error.code];
    const message = error.detail ? `${error.message}: ${error.detail}` : error.message;
    if (!socket.destroyed && socket.writable) socket.end(packet(errPayload(errno, sqlState, message), seq));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private async handshake(
    socket: net.Socket,
    clientAddress: string,
    state: { current: net.Socket; seq: number },
    connectionId: number,
  ): Promise<void> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? 30_000;
    const nonce = newNonce();
    const offered = (GATEWAY_CAPABILITIES | (this.options.tls ? Cap.SSL : 0)) >>> 0;
    socket.write(
      packet(
        buildGreeting({
          serverVersion: this.serverVersion,
          connectionId,
          nonce,
          capabilities: offered,
          charset: DEFAULT_CHARSET,
          status: Status.AUTOCOMMIT,
          plugin: CACHING_SHA2,
        }),
        0,
      ),
    );
    let stream = new PacketStream(socket, timeoutMs);
    let first = await stream.read(1);
    state.seq = 2;
    let secure: tls.TLSSocket | null = null;
    if (isSslRequest(first.payload)) {
      if (!this.options.tls) throw new GatewayError('unsupported_protocol', 'TLS is not available on this listener');
      // Clients may send their TLS ClientHello right behind the SSL request (nothing is answered in
      // between): whatever arrived early goes back to the socket, where the TLS layer reads it first.
      const early = stream.detach();
      if (early.length > 0) socket.unshift(early);
      secure = await upgrade(socket, this.options.tls.context, timeoutMs);
      state.current = secure;
      stream = new PacketStream(secure, timeoutMs);
      first = await stream.read(2);
      state.seq = 3;
    }
    const client = secure ?? socket;
    const response = parseHandshakeResponse(first.payload);
    if (HIDING_COLLATIONS.has(response.charset)) {
      throw new GatewayError(
        'unsupported_protocol',
        'jitgate does not relay the big5, cp932, gbk, sjis and gb18030 client character sets (a quote can hide in their characters); connect with utf8mb4',
      );
    }
    const user = response.user;
    if (this.options.tlsRequired && !secure) {
      throw new GatewayError(
        'auth_method_rejected',
        'Connections using insecure transport are prohibited: jitgate requires TLS (mysql: --ssl, mysql2: ssl: {...})',
      );
    }
    if (!user) throw new GatewayError('auth_failed', "Access denied for user ''");
    const connection = response.database || (await this.onlyConnectionOf(user));
    if (!connection) {
      throw new GatewayError(
        'unknown_connection',
        'No database selected: jitgate needs database = the name of the connection to open (e.g. mysql -u alice orders)',
      );
    }
    // An unknown database is 1049 as the README promises (a token for it could not be valid anyway).
    const target = this.options.resolveTarget(connection);
    if (!target) throw new GatewayError('unknown_connection', `Unknown database '${echo(connection)}': no MySQL connection of that name`);
    const auth = await authenticateMysqlClient({
      stream,
      send: (payload, seq) => void client.write(packet(payload, seq)),
      response,
      responseSeq: first.seq,
      nonce,
      connection,
      verifier: this.options.verifier,
      cache: this.cache,
      encrypted: secure !== null,
      allowRsa: !this.options.tlsRequired,
    });
    state.seq = auth.nextSeq;
    if (!auth.ok) {
      const throttled = await this.options.onAuthFailure({ user, connection, clientAddress, reason: auth.reason });
      if (throttled !== undefined) throw new GatewayError('too_many_logins', throttled);
      if (auth.reason === 'method_unavailable') {
        throw new GatewayError(
          'auth_method_rejected',
          'Authentication requires a secure connection: the first login with a token needs TLS (mysql: --ssl)',
        );
      }
      throw new GatewayError(
        'auth_failed',
        `Access denied for user '${echo(user)}' (using password: ${auth.reason === 'no_password' ? 'NO' : 'YES'})`,
      );
    }

    const info: SessionInfo = {
      user,
      connection,
      clientAddress,
      applicationName: response.attributes.get('program_name') ?? null,
      tokenId: auth.tokenId,
      authMethod: auth.method,
      encrypted: secure !== null,
    };
    // The session builds this protocol's masker when masking applies (and decides with its check).
    const built: { masking?: MysqlMasking } = {};
    const pipeline = await this.options.openSession({ ...info, masker: (scope) => (built.masking = new MysqlMasking(scope)) });
    const masking = built.masking;
    let backend: MysqlBackendSession;
    let lease: BackendLease | undefined;
    const began = process.hrtime.bigint();
    const capabilities = (response.capabilities & offered) >>> 0;
    const localFiles = this.options.localFilesAllowed?.(connection) ?? false;
    try {
      lease = await this.options.acquireBackend({ sessionId: pipeline.id, user, connection, tokenId: auth.tokenId, target });
      const roles = this.options.sessionRoles?.(connection) ?? [];
      // A per-session user has no privileges on the database until its role is active, so it
      // logs in without one and opens it after SET ROLE.
      backend = await connectMysqlBackend(roles.length > 0 ? { ...lease.target, database: '' } : lease.target, {
        clientCapabilities: capabilities,
        charset: response.charset,
        localFiles: localFiles && (capabilities & Cap.LOCAL_FILES) !== 0,
        attributes: new Map([
          ['jitgate_user', user],
          ...(info.applicationName ? [['program_name', info.applicationName] as [string, string]] : []),
        ]),
      });
      if (roles.length > 0) {
        // MariaDB activates one role at a time; MySQL all of them.
        const activate = /mariadb/i.test(backend.serverVersion)
          ? `SET ROLE ${quoteIdent(roles[0]!)}`
          : `SET ROLE ${roles.map(quoteIdent).join(', ')}`;
        const session = backend;
        try {
          await prepareSession(session, activate, connection);
          if (lease.target.database) await prepareSession(session, `USE ${quoteIdent(lease.target.database)}`, connection);
        } catch (err) {
          session.socket.destroy();
          throw err;
        }
      }
      if (masking) {
        // Masking needs the backend's views before the first statement; without them no session (fail closed).
        const session = backend;
        masking.readViewsWith(() => querySession(session, VIEWS_QUERY));
        await masking.prepare().catch((err: Error) => {
          session.socket.destroy();
          if (err instanceof BackendLoginRefused) throw err;
          // The cause is the gateway's own (its views query): logged, not sent.
          this.options.log.warn({ connection, err: err.message }, 'cannot read the views masking needs');
          throw new GatewayError(
            'backend_unavailable',
            'jitgate cannot read the catalog masking needs for this connection; try again later',
          );
        });
      }
      this.serverVersion = announcedVersion(backend.serverVersion);
      this.options.onBackendConnect(connection, Number(process.hrtime.bigint() - began) / 1e9);
    } catch (err) {
      pipeline.end('backend_refused', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease?.release();
      this.options.log.warn(
        { connection, err: (err as Error).message, detail: (err as GatewayError).detail, cause: (err as GatewayError).logDetail },
        'mysql backend connect failed',
      );
      throw err;
    }
    const clientEarly = stream.detach();
    if (client.destroyed || this.shuttingDown) {
      backend.socket.destroy();
      pipeline.end(this.shuttingDown ? 'gateway_shutdown' : 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease.release();
      return;
    }
    client.write(packet(okPayload({ status: backend.status || Status.AUTOCOMMIT }), auth.nextSeq));
    this.startRelay(client, backend, lease, pipeline, connection, user, capabilities, localFiles, masking, clientEarly, connectionId);
  }

  private startRelay(
    client: net.Socket,
    backend: MysqlBackendSession,
    lease: BackendLease,
    pipeline: SessionPipeline,
    connection: string,
    user: string,
    capabilities: number,
    localFilesAllowed: boolean,
    masking: MysqlMasking | undefined,
    clientEarly: Buffer,
    connectionId: number,
  ): void {
    const relay: MysqlRelay = new MysqlRelay({
      client,
      backend: backend.socket,
      pipeline,
      capabilities,
      connection,
      backendDatabase: lease.target.database,
      isOtherConnection: (name) => name !== connection && this.options.isConnection(name),
      localFilesAllowed,
      serverVersion: backend.serverVersion,
      masking,
      kill: (request) => this.clientKill(request, user),
      onEnd: (reason) => {
        if (this.sessions.get(connectionId)?.relay === relay) this.sessions.delete(connectionId);
        this.cancelKeys.release(connectionId);
        pipeline.end(reason, relay.counters);
        lease.release();
      },
      onError: (err) => this.options.log.warn({ err, session: pipeline.id }, 'mysql relay error'),
    });
    this.sessions.set(connectionId, { relay, pipelineId: pipeline.id, user, connection, backendThreadId: backend.threadId });
    // The id claimed at the greeting now names its session, whose owner a KILL through another instance is checked against.
    void this.cancelKeys.claim(connectionId, pipeline.id);
    pipeline.watchCounters?.(relay.counters);
    relay.start(clientEarly, backend.leftover);
  }

  /**
   * KILL [QUERY|CONNECTION] n from a client: n is the connection id this gateway handed out, mapped
   * to the backend's thread. As in MySQL without the CONNECTION ADMIN privilege, a user may kill
   * only their own sessions.
   */
  private async clientKill(request: KillRequest, requester: string): Promise<string | undefined> {
    // The id the greeting gave, or the backend's own (what CONNECTION_ID() answers) of one of the requester's sessions.
    const target =
      this.sessions.get(request.id) ?? [...this.sessions.values()].find((s) => s.backendThreadId === request.id && s.user === requester);
    if (!target) return this.killElsewhere(request, requester);
    if (target.user !== requester) return `You are not owner of thread ${request.id}`;
    if (request.queryOnly) {
      if (target.relay.withdrawHeld()) return undefined;
      if (!target.relay.idle) await this.killBackendQuery(target);
      return undefined;
    }
    if (!target.relay.idle) await this.killBackendQuery(target).catch(() => undefined);
    target.relay.terminate('killed', new GatewayError('killed', 'Connection was killed'));
    for (const [id, s] of this.sessions) if (s === target) this.sessions.delete(id);
    return undefined;
  }

  /** A KILL naming an id another instance handed out: passed on to it once the owner is checked. */
  private async killElsewhere(request: KillRequest, requester: string): Promise<string | undefined> {
    let outcome: 'passed' | 'unknown' | 'not_owner';
    try {
      outcome = await this.cancelKeys.passOnKill(request.id, requester, request.queryOnly);
    } catch (err) {
      this.options.log.warn({ err, id: request.id }, 'cannot pass a KILL on to another gateway instance');
      return 'jitgate: KILL failed: the gateway cannot reach its state store';
    }
    if (outcome === 'unknown') return `Unknown thread id: ${request.id}`;
    if (outcome === 'not_owner') return `You are not owner of thread ${request.id}`;
    return undefined;
  }

  private async killBackendQuery(s: LiveSession): Promise<void> {
    const admin = this.options.killTarget(s.connection);
    if (!admin) throw new GatewayError('backend_unavailable', `connection "${s.connection}" has no credential to cancel with`);
    await runOnBackend(admin, `KILL QUERY ${s.backendThreadId}`);
  }
}

function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

function upgrade(socket: net.Socket, context: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new MysqlProtocolError('TLS handshake timed out'));
    }, timeoutMs);
    secure.once('secure', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(new MysqlProtocolError(`TLS handshake failed: ${err.message}`));
    });
  });
}

export type { HandshakeResponse };
