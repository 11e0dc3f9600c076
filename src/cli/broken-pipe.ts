/**
 * `jitgate replay ID | head` closes the pipe after ten lines; the next write to stdout then fails
 * with EPIPE, which Node reports as an unhandled 'error' event with a stack trace. A reader that
 * stopped reading is no error of ours: like other Unix tools, end quietly.
 */
export function endQuietlyOnBrokenPipe(stream: NodeJS.WritableStream, exit: (code: number) => void): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      exit(0);
      return;
    }
    throw err;
  });
}
