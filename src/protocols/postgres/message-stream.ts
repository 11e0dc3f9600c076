/**
 * Message-at-a-time reading for the handshake phases (client startup and authentication, backend
 * login). The relay does not use this: once a session is established, bytes flow through the
 * Framer directly. `detach()` hands over whatever arrived early so no byte is lost at the switch.
 */
import type { Socket } from 'node:net';
import { Framer, HEADER_LENGTH, ProtocolError, startupPacketLength } from './codec.js';

export interface Frame {
  type: number;
  /** The whole message, header included. */
  raw: Buffer;
  /** The body after the header (HEADER_LENGTH bytes). */
  body: Buffer;
}

export class MessageStream {
  private chunks: Buffer[] = [];
  private framer = new Framer();
  private frames: Frame[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private typed = false;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private readonly onEnd = () => this.fail(new ProtocolError('connection closed during handshake'));
  private readonly onError = (err: Error) => this.fail(err);

  constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** Reads one untyped startup-phase packet (SSLRequest, StartupMessage, CancelRequest...). */
  async readStartupPacket(): Promise<{ packet: Buffer; trailing: number }> {
    for (;;) {
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = all.length ? [all] : [];
      const length = all.length >= 4 ? startupPacketLength(all) : -1;
      if (length > 0 && all.length >= length) {
        const packet = all.subarray(0, length);
        const rest = all.subarray(length);
        this.chunks = rest.length ? [rest] : [];
        return { packet, trailing: rest.length };
      }
      await this.wait();
    }
  }

  /** Switches to typed messages (after the StartupMessage). */
  startTyped(): void {
    this.typed = true;
    const pending = this.chunks;
    this.chunks = [];
    for (const c of pending) this.frameChunk(c);
  }

  async read(): Promise<Frame> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      await this.wait();
    }
  }

  /** Stops reading and returns every byte received but not consumed, in order. */
  detach(): Buffer {
    // Paused so nothing flows to a listener-less socket before the next owner attaches.
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    const rest = [...this.frames.map((f) => f.raw), ...this.chunks, ...this.framer.takeBuffered()];
    this.frames = [];
    this.chunks = [];
    return Buffer.concat(rest);
  }

  private receive(chunk: Buffer): void {
    if (this.typed) this.frameChunk(chunk);
    else this.chunks.push(chunk);
    this.wake();
  }

  private frameChunk(chunk: Buffer): void {
    try {
      this.framer.push(chunk, (type, buf, start, end) => {
        const raw = buf.subarray(start, end);
        this.frames.push({ type, raw, body: raw.subarray(HEADER_LENGTH) });
      });
    } catch (err) {
      this.fail(err as Error);
    }
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
        reject(new ProtocolError('timeout during handshake'));
      }, this.timeoutMs);
      this.waiter = () => {
        clearTimeout(timer);
        if (this.failure) reject(this.failure);
        else resolve();
      };
    });
  }
}
