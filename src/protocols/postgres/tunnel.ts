/**
 * The local end of `jitgate connect --tunnel`: a tiny PostgreSQL endpoint on 127.0.0.1 for GUI tools
 * that cannot run a command to fetch a password. A tool connects without TLS or password (trust,
 * on 127.0.0.1 only: nothing off this machine can reach it, but other local users can, so run
 * tunnels on machines you do not share); the tunnel logs in to the gateway on the user's behalf
 * with a fresh jitgate token, replays the gateway's startup messages to the tool, and from then on
 * pipes bytes both ways.
 *
 * Cancel requests from the tool are forwarded to the gateway: the tool holds the gateway's own key
 * data, which the gateway maps to the backend.
 */
import net from 'node:net';
import type { BackendTarget } from '../../core/types.js';
import { BackendRefusal, connectBackend, sendCancel } from './backend.js';
import { build, EncryptionAnswer, parseStartupPacket, ProtocolError } from './codec.js';
import { MessageStream } from './message-stream.js';

export interface TunnelOptions {
  /** Local port (0 = any free one); always bound to 127.0.0.1. */
  port: number;
  gateway: { host: string; port: number; tls: 'disable' | 'prefer' | 'require'; servername?: string };
  user: string;
  connection: string;
  /** A token for the next login; `fresh` asks for a new one (the previous was refused). */
  token(fresh: boolean): Promise<string>;
  /** Progress lines for the person running the tunnel (never contain the token). */
  report?(line: string): void;
  handshakeTimeoutMs?: number;
}

export class LocalTunnel {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: TunnelOptions) {
    this.server = net.createServer((socket) => void this.accept(socket));
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private target(token: string): BackendTarget {
    const g = this.options.gateway;
    return {
      connection: this.options.connection,
      protocol: 'postgres',
      host: g.host,
      port: g.port,
      database: this.options.connection,
      user: this.options.user,
      password: token,
      tls: { mode: g.tls, ...(g.servername ? { servername: g.servername } : {}) },
      connectTimeoutMs: 15_000,
    };
  }

  private async accept(client: net.Socket): Promise<void> {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    client.setNoDelay(true);
    const from = `${client.remoteAddress}:${client.remotePort}`;
    const stream = new MessageStream(client, this.options.handshakeTimeoutMs ?? 30_000);
    let params: Map<string, string> | undefined;
    try {
      while (!params) {
        const { packet } = await stream.readStartupPacket();
        const startup = parseStartupPacket(packet);
        if (startup.kind === 'ssl' || startup.kind === 'gssenc') {
          client.write(Buffer.of(EncryptionAnswer.Refuse)); // loopback only: no TLS to offer
        } else if (startup.kind === 'cancel') {
          stream.detach();
          client.destroy();
          // Any token will do for the socket: a cancel carries no authentication.
          await sendCancel(this.target(''), startup.pid, startup.secret).catch(() => undefined);
          return;
        } else {
          if (startup.major !== 3) throw new ProtocolError(`unsupported frontend protocol ${startup.major}.${startup.minor}`);
          params = startup.params;
        }
      }
      const backend = await this.login(params);
      const early = stream.detach();
      client.write(
        Buffer.concat([
          build.authOk(),
          ...backend.startupFrames,
          build.backendKeyData(backend.pid, backend.secret),
          build.readyForQuery(backend.readyStatus),
          backend.leftover,
        ]),
      );
      const upstream = backend.socket;
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      if (early.length) upstream.write(early);
      client.pipe(upstream);
      upstream.pipe(client);
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.end());
      client.on('close', () => upstream.destroy());
      client.resume();
      upstream.resume();
      this.options.report?.(`${from}: connected to ${this.options.connection} through the gateway`);
    } catch (err) {
      stream.detach();
      this.refuse(client, err, from);
    }
  }

  /** Log in with the cached token; once more with a fresh one if the gateway refused it. */
  private async login(params: Map<string, string>) {
    try {
      return await connectBackend(this.target(await this.options.token(false)), params);
    } catch (err) {
      const code = err instanceof BackendRefusal ? err.fields.get('C') : undefined;
      if (code !== '28P01') throw err;
      return connectBackend(this.target(await this.options.token(true)), params);
    }
  }

  private refuse(client: net.Socket, err: unknown, from: string): void {
    let fields: { code: string; message: string; detail?: string };
    if (err instanceof BackendRefusal) {
      // The gateway's own words (e.g. why the grant ended) reach the tool unchanged.
      const f = err.fields;
      fields = { code: f.get('C') ?? '08006', message: f.get('M') ?? err.message, ...(f.get('D') ? { detail: f.get('D') } : {}) };
    } else {
      const e = err as Error & { detail?: string };
      fields = {
        code: err instanceof ProtocolError ? '08P01' : '08006',
        message: `jitgate tunnel: ${e.message}`,
        ...(e.detail ? { detail: e.detail } : {}),
      };
    }
    this.options.report?.(`${from}: refused: ${fields.message}${fields.detail ? ` (${fields.detail})` : ''}`);
    if (!client.destroyed && client.writable) client.end(build.error({ severity: 'FATAL', ...fields }));
    setTimeout(() => client.destroy(), 1000).unref();
  }
}
