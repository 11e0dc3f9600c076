/**
 * Packet-at-a-time reading for the handshake phases (client login, backend login). The relay does
 * not use this: once a session is established bytes flow through a PacketFramer directly.
 * `detach()` hands over whatever arrived early so no byte is lost at the switch.
 */
import type { Socket } from 'node:net';
import { MysqlProtocolError, PacketFramer, type Packet } from './packets.js';

export class PacketStream {
  private readonly framer: PacketFramer;
  private packets: Packet[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.framer.push(chunk, (p) => this.packets.push(p));
    } catch (err) {
      this.fail(err as Error);
    }
    this.wake();
  };
  private readonly onEnd = () => this.fail(new MysqlProtocolError('connection closed during handshake'));
  private readonly onError = (err: Error) => this.fail(err);

  constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
    private readonly what = 'handshake',
    /** Handshake packets are small: a client cannot make the gateway buffer megabytes before login. */
    maxPacket = 1 << 20,
  ) {
    this.framer = new PacketFramer(maxPacket);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** The next packet; its sequence id must be `expectSeq` when given. */
  async read(expectSeq?: number): Promise<Packet> {
    for (;;) {
      const p = this.packets.shift();
      if (p) {
        if (expectSeq !== undefined && p.seq !== (expectSeq & 0xff)) throw new MysqlProtocolError('Got packets out of order');
        return p;
      }
      await this.wait();
    }
  }

  /** Whether bytes are waiting beyond the packets read (e.g. plaintext after an SSL request). */
  get hasUnread(): boolean {
    return this.packets.length > 0;
  }

  detach(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = [...this.packets.flatMap((p) => p.raws), this.framer.takeBuffered()];
    this.packets = [];
    return Buffer.concat(rest);
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private wait(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new MysqlProtocolError(`timeout during ${this.what}`));
      }, this.timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        if (this.failure) reject(this.failure);
        else resolve();
      };
    });
  }
}
