/**
 * The Redis listener: accepts clients (TLS or plain on the same port: a TLS ClientHello is told
 * apart by its first byte), authenticates the jitgate token given with AUTH or HELLO ... AUTH,
 * opens the session (grant check), connects the backend with the gateway's credential and hands
 * both sockets to a RedisRelay.
 *
 * The user name chooses the connection: `AUTH alice@cache <token>` is person alice on connection
 * "cache" (split at the last @, so `jane@example.com@cache` works too). When only one Redis
 * connection is configured a plain `AUTH alice <token>` means that one. A token alone
 * (`AUTH <token>`) names no user (tokens are random and stored as verifiers only) and is refused
 * with a message saying what to send.
 *
 * Before authentication only AUTH, HELLO, PING and QUIT are answered (others get NOAUTH, as
 * Redis), commands are size-limited, and a client that does not authenticate in time is dropped.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { GatewayError, toGatewayError } from '../../core/errors.js';
import { echo } from '../../core/printable.js';
import type { ClientTokenVerifier } from '../../core/protocol-engine.js';
import type { BackendLease, BackendRequest, BackendTarget, SessionEndReason, SessionInfo, SessionPipeline } from '../../core/types.js';
import { connectRedisBackend, type RedisBackendSession } from './backend.js';
import { redisMasking, type RedisReplyMasker } from './masking.js';
import { RedisRelay } from './relay.js';
import { CommandReader, DEFAULT_COMMAND_LIMITS, encodeValue, errorReply, RespError, simpleReply, type ParsedCommand } from './resp.js';
import { TcpListener } from '../tcp-server.js';

export interface RedisListenerOptions {
  host: string;
  port: number;
  /** TLS offered to clients (the gateway's certificate); null: plain only. */
  tls: { context: tls.SecureContext } | null;
  tlsRequired: boolean;
  verifier: Pick<ClientTokenVerifier, 'verifyCleartext'>;
  /** Names of the configured Redis connections. */
  connections(): string[];
  resolveTarget(connection: string): BackendTarget | undefined;
  openSession(info: SessionInfo): Promise<SessionPipeline>;
  acquireBackend(request: BackendRequest): Promise<BackendLease>;
  /** A failed login; resolves (after any backoff) to a refusal to send instead of the usual one when logins are throttled. */
  onAuthFailure(info: { user: string; connection: string; clientAddress: string; reason: string }): void | Promise<string | undefined>;
  onBackendConnect(connection: string, seconds: number): void;
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  handshakeTimeoutMs?: number;
}

/** Unauthenticated clients may not send big commands (Redis: 10 arguments, 16 KB per argument). */
const PRE_AUTH_LIMITS = { maxBulkBytes: 16 * 1024, maxCommandBytes: 64 * 1024, maxArgs: 16 };
const MAX_AUTH_FAILURES = 5;

/** Live sessions are kept by their session id. */
export class RedisListener extends TcpListener<string, { pipelineId: string; relay: RedisRelay }> {
  constructor(private readonly options: RedisListenerOptions) {
    super('redis', options, options.log);
  }

  kill(sessionId: string, reason: SessionEndReason, message: string): boolean {
    const session = this.sessions.get(sessionId);
    if (!session) return false;
    session.relay.terminate(reason, message);
    return true;
  }

  protected endOnShutdown(s: { relay: RedisRelay }): void {
    s.relay.terminate('gateway_shutdown', 'jitgate: the gateway is shutting down');
  }

  protected accept(raw: net.Socket): void {
    raw.setNoDelay(true);
    raw.on('error', () => undefined);
    if (this.shuttingDown) {
      raw.destroy();
      return;
    }
    const clientAddress = `${raw.remoteAddress ?? 'unknown'}:${raw.remotePort ?? 0}`;
    this.handshakes.add(raw);
    raw.once('close', () => this.handshakes.delete(raw));
    const timeoutMs = this.options.handshakeTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      if (!raw.destroyed) raw.end(errorReply('ERR jitgate: authentication timed out'));
      setTimeout(() => raw.destroy(), 1000).unref();
    }, timeoutMs);
    timer.unref();
    raw.once('close', () => clearTimeout(timer));
    raw.once('data', (first: Buffer) => {
      // 0x16: a TLS handshake record. Redis clients speak TLS from the first byte (no upgrade).
      if (first[0] === 0x16 && this.options.tls) {
        const secure = new tls.TLSSocket(replay(raw, first), { isServer: true, secureContext: this.options.tls.context });
        secure.on('error', () => raw.destroy());
        secure.once('secure', () => new ClientHandshake(this, secure, raw, clientAddress, true, timer, Buffer.alloc(0)).start());
        return;
      }
      raw.pause();
      new ClientHandshake(this, raw, raw, clientAddress, false, timer, first).start();
    });
  }

  /** @internal the parts ClientHandshake needs. */
  get config(): RedisListenerOptions {
    return this.options;
  }

  /** @internal a session's relay started. */
  register(id: string, relay: RedisRelay, socket: net.Socket): void {
    this.handshakes.delete(socket);
    this.sessions.set(id, { pipelineId: id, relay });
  }

  /** @internal */
  unregister(id: string): void {
    this.sessions.delete(id);
  }
}

/** A socket whose first chunk was already read, as a stream TLS can wrap. */
function replay(socket: net.Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  d.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  return d;
}

/** One client from its first byte until its session's relay starts (or it gives up). */
class ClientHandshake {
  private readonly reader = new CommandReader(PRE_AUTH_LIMITS);
  private readonly queue: ParsedCommand[] = [];
  /** Malformed input after the queued commands: answered in order, then the connection closes. */
  private parseError: string | undefined;
  private busy = false;
  private done = false;
  private failures = 0;

  constructor(
    private readonly listener: RedisListener,
    private readonly socket: net.Socket,
    /** The TCP socket under `socket` (the same one without TLS): what the listener tracks. */
    private readonly raw: net.Socket,
    private readonly clientAddress: string,
    private readonly encrypted: boolean,
    private readonly timer: NodeJS.Timeout,
    private readonly first: Buffer,
  ) {}

  start(): void {
    this.socket.on('data', this.onData);
    this.socket.on('error', () => this.socket.destroy());
    if (this.first.length) this.onData(this.first);
    this.socket.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.done) return;
    if (this.parseError !== undefined) return;
    try {
      this.reader.push(chunk, (c) => this.queue.push(c));
    } catch (err) {
      this.parseError = err instanceof RespError ? err.message : 'Protocol error';
      this.socket.pause();
    }
    // Commands after AUTH wait for it; a client pipelining more than a little before it is paused.
    if (this.queue.length > 64) this.socket.pause();
    void this.process();
  };

  private async process(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.done) {
        const c = this.queue.shift()!;
        await this.handle(c);
      }
      if (!this.done && this.parseError !== undefined) this.fail(`ERR ${this.parseError}`);
    } catch (err) {
      this.listener.config.log.error({ err }, 'redis handshake failed');
      this.fail('ERR jitgate: internal gateway error');
    } finally {
      this.busy = false;
    }
    if (!this.done && this.parseError === undefined) this.socket.resume();
  }

  private send(b: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  private fail(message: string): void {
    this.done = true;
    if (!this.socket.destroyed) this.socket.end(errorReply(message));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private async handle(c: ParsedCommand): Promise<void> {
    const name = c.args[0]!.toString('latin1').toLowerCase();
    const arg = (i: number) => c.args[i]?.toString('utf8');
    switch (name) {
      case 'ping':
        // The argument goes back byte for byte (a string here would be written as UTF-8, longer than its $length).
        this.send(c.args.length > 1 ? encodeValue({ type: 'bulk', data: c.args[1]! }) : simpleReply('PONG'));
        return;
      case 'quit':
        this.done = true;
        this.socket.end(simpleReply('OK'));
        return;
      case 'auth':
        if (c.args.length === 2) {
          this.send(
            errorReply(
              'WRONGPASS jitgate: a token alone does not say who you are: send AUTH <user>@<connection> <token> ' +
                '(redis-cli --user alice@cache --pass TOKEN)',
            ),
          );
          return;
        }
        if (c.args.length !== 3) {
          this.send(errorReply("ERR wrong number of arguments for 'auth' command"));
          return;
        }
        return this.authenticate(arg(1)!, arg(2)!, { protocol: 2, hello: false });
      case 'hello': {
        const version = arg(1);
        if (version !== undefined && version !== '2' && version !== '3') {
          this.send(errorReply('NOPROTO unsupported protocol version'));
          return;
        }
        let auth: [string, string] | undefined;
        let clientName: string | undefined;
        for (let i = 2; i < c.args.length; i++) {
          const opt = arg(i)!.toLowerCase();
          if (opt === 'auth' && i + 2 < c.args.length) {
            auth = [arg(i + 1)!, arg(i + 2)!];
            i += 2;
          } else if (opt === 'setname' && i + 1 < c.args.length) {
            clientName = arg(i + 1)!;
            i += 1;
          } else {
            this.send(errorReply(`ERR Syntax error in HELLO option '${opt}'`));
            return;
          }
        }
        if (!auth) {
          this.send(
            errorReply(
              'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> ' +
                'option can be used to authenticate the client and select the RESP protocol version at the same time',
            ),
          );
          return;
        }
        return this.authenticate(auth[0], auth[1], { protocol: version === '3' ? 3 : 2, hello: true, clientName });
      }
      default:
        this.send(errorReply('NOAUTH Authentication required.'));
    }
  }

  private async authenticate(name: string, token: string, hs: { protocol: 2 | 3; hello: boolean; clientName?: string }): Promise<void> {
    const o = this.listener.config;
    if (o.tlsRequired && !this.encrypted) {
      this.fail('NOAUTH jitgate requires an encrypted connection: connect with TLS (redis-cli --tls)');
      return;
    }
    const who = parseUserName(name, o.connections());
    if ('error' in who) {
      this.send(errorReply(`WRONGPASS jitgate: ${who.error}`));
      return;
    }
    const { user, connection } = who;
    const tokenId = await o.verifier.verifyCleartext(user, connection, token);
    if (!tokenId) {
      const throttled = await o.onAuthFailure({ user, connection, clientAddress: this.clientAddress, reason: 'bad_token' });
      const answer = throttled !== undefined ? `ERR ${throttled}` : 'WRONGPASS invalid username-password pair or user is disabled.';
      if (++this.failures >= MAX_AUTH_FAILURES) this.fail(answer);
      else this.send(errorReply(answer));
      return;
    }
    const target = o.resolveTarget(connection);
    if (!target) {
      this.send(errorReply(`WRONGPASS jitgate: no Redis connection named "${echo(connection)}"`));
      return;
    }
    if (this.listener.shuttingDown) {
      this.fail('ERR jitgate: the gateway is shutting down');
      return;
    }
    let pipeline: SessionPipeline;
    // The session builds this protocol's masker when masking applies (and decides with its check).
    const built: { masker?: RedisReplyMasker } = {};
    try {
      pipeline = await o.openSession({
        user,
        connection,
        clientAddress: this.clientAddress,
        applicationName: hs.clientName ?? null,
        tokenId,
        authMethod: hs.hello ? 'hello-auth' : 'auth',
        encrypted: this.encrypted,
        masker: (scope) => (built.masker = redisMasking(scope)),
      });
    } catch (err) {
      this.send(refusal(err));
      return;
    }
    let lease: BackendLease | undefined;
    let backend: RedisBackendSession;
    const masker = built.masker ?? null;
    const began = process.hrtime.bigint();
    try {
      await masker?.prepare();
      lease = await o.acquireBackend({ sessionId: pipeline.id, user, connection, tokenId, target });
      backend = await connectRedisBackend(lease.target, hs);
      o.onBackendConnect(connection, Number(process.hrtime.bigint() - began) / 1e9);
    } catch (err) {
      pipeline.end('backend_refused', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      lease?.release();
      o.log.warn(
        { connection, err: (err as Error).message, detail: (err as GatewayError).detail, cause: (err as GatewayError).logDetail },
        'redis backend connect failed',
      );
      this.send(refusal(err));
      return;
    }
    if (this.socket.destroyed || this.listener.shuttingDown) {
      backend.socket.destroy();
      pipeline.end(this.listener.shuttingDown ? 'gateway_shutdown' : 'client_quit', {
        bytesFromClient: 0,
        bytesToClient: 0,
        statements: 0,
      });
      lease.release();
      this.done = true;
      return;
    }
    this.done = true;
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
    this.socket.pause();
    this.reader.limits = DEFAULT_COMMAND_LIMITS;
    this.socket.write(backend.greeting);
    const relay: RedisRelay = new RedisRelay({
      client: this.socket,
      backend: backend.socket,
      pipeline,
      reader: this.reader,
      backendClientId: backend.clientId,
      reauth: backend.reauth,
      verifyAgain: async (again, t) => {
        const w = parseUserName(again, o.connections());
        return (
          !('error' in w) &&
          w.user === user &&
          w.connection === connection &&
          (await o.verifier.verifyCleartext(user, connection, t)) !== undefined
        );
      },
      masker,
      onEnd: (reason) => {
        this.listener.unregister(pipeline.id);
        pipeline.end(reason, relay.counters);
        lease.release();
      },
      onError: (err) => o.log.warn({ err, session: pipeline.id }, 'redis relay error'),
    });
    this.listener.register(pipeline.id, relay, this.raw);
    pipeline.watchCounters?.(relay.counters);
    relay.start(this.queue.splice(0), Buffer.alloc(0), this.parseError);
  }
}

/** `user@connection` (split at the last @), or the user alone when one Redis connection exists. */
export function parseUserName(name: string, connections: readonly string[]): { user: string; connection: string } | { error: string } {
  const at = name.lastIndexOf('@');
  if (at > 0 && connections.includes(name.slice(at + 1))) return { user: name.slice(0, at), connection: name.slice(at + 1) };
  if (connections.length === 1 && name !== '' && name !== 'default') return { user: name, connection: connections[0]! };
  if (at > 0) return { error: `no Redis connection named "${echo(name.slice(at + 1))}"` };
  return { error: 'name the connection in the user name: AUTH <user>@<connection> <token>' };
}

function refusal(err: unknown): Buffer {
  const e = toGatewayError(err);
  const code = e.code === 'grant_inactive' || e.code === 'denied' ? 'NOPERM' : e.code === 'auth_failed' ? 'WRONGPASS' : 'ERR';
  const message = e.message.startsWith('jitgate') ? e.message : `jitgate: ${e.message}`;
  return errorReply(`${code} ${message}${e.detail ? ` (${e.detail})` : ''}`);
}
