/** The TCP side every protocol listener shares: bind, report the address, stop accepting. */
import net from 'node:net';

export class TcpServer {
  private readonly server: net.Server;

  constructor(protocol: string, accept: (socket: net.Socket) => void, log: { error(obj: object, msg?: string): void }) {
    this.server = net.createServer(accept);
    this.server.on('error', (err) => log.error({ err }, `${protocol} listener error`));
  }

  /** Binds and resolves to `host:port` (IPv6 hosts in brackets). */
  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
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
    return this.server.listening;
  }

  /** Stops accepting; resolves once the server has closed. */
  stop(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
