import { escapeControlsKeepLayout } from '../core/printable.js';

/** What a CLI command may touch, injected so commands run the same in-process (tests) and for real. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
  now(): number;
}

export function processIo(): CliIo {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
  };
}

/**
 * The output layer every command prints through: whatever a command prints (statement texts, reasons,
 * result values, names, error messages, JSON) reaches the terminal with its control characters shown
 * as visible escapes (core/printable.ts), so no printed value can move the cursor, erase a line or
 * reorder text. Newlines and tabs pass: they are the printers' own layout (table cells escape them,
 * ./format.ts). JSON stays valid: JSON.stringify already escapes C0 controls, and the rest become
 * `\uXXXX`, a JSON escape of the same character.
 */
export function terminalSafe(io: CliIo): CliIo {
  return { ...io, out: (t) => io.out(escapeControlsKeepLayout(t)), err: (t) => io.err(escapeControlsKeepLayout(t)) };
}

/** An expected failure: printed as one line on stderr, exit code 1, no stack trace. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
