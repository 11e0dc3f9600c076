/**
 * What the PostgreSQL relay writes to one side: adjacent slices of one incoming buffer are merged
 * into a single run (most messages pass unchanged, so most chunks go out as the very buffer they
 * came in), injected messages (masked rows, notices) are kept in order between runs, and the whole
 * lot is taken as one buffer per chunk: one socket write each way per read.
 */
export class Output {
  private parts: Buffer[] = [];
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;

  forward(buf: Buffer, start: number, end: number): void {
    if (this.runBuf === buf && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.closeRun();
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  inject(message: Buffer): void {
    this.closeRun();
    this.parts.push(message);
  }

  /** Everything collected since the last take, as one buffer (or null). */
  take(): Buffer | null {
    this.closeRun();
    const parts = this.parts;
    if (parts.length === 0) return null;
    this.parts = [];
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private closeRun(): void {
    if (this.runBuf) {
      this.parts.push(this.runBuf.subarray(this.runStart, this.runEnd));
      this.runBuf = null;
    }
  }
}
