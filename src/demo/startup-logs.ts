/**
 * Where the embedded default's logs go, so the startup banner stays readable:
 *  - in a terminal: JSON lines appended to `<dataDir>/jitgate.log`, and warnings and errors also as
 *    one short line each on stderr (`jitgate warn: ...`), so trouble is still seen;
 *  - otherwise (CI, containers, pipes): JSON lines on stderr, the banner alone on stdout.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createLogger, type LogLevel, type Logger } from '../obs/log.js';

export interface StartupLogs {
  logger: Logger;
  /** The log file, when logs go to one. */
  file?: string;
  close(): Promise<void>;
}

const SHOWN_ON_TERMINAL = new Set(['warn', 'error', 'fatal']);

export function embeddedLogs(o: { dataDir: string; level: LogLevel; terminal: boolean; stderr: (text: string) => void }): StartupLogs {
  if (!o.terminal) {
    return {
      logger: createLogger({ level: o.level, destination: { write: (line: string) => o.stderr(line) } }),
      close: async () => undefined,
    };
  }
  mkdirSync(o.dataDir, { recursive: true });
  const file = path.join(o.dataDir, 'jitgate.log');
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  stream.on('error', (err) => o.stderr(`jitgate: cannot write the log file ${file}: ${err.message}\n`));
  const destination = {
    write(line: string): void {
      stream.write(line);
      const short = terminalLine(line);
      if (short) o.stderr(short);
    },
  };
  return {
    logger: createLogger({ level: o.level, destination }),
    file,
    close: () => new Promise<void>((resolve) => stream.end(() => resolve())),
  };
}

/** `jitgate warn: message (see the log file)` for warnings and errors; undefined for the rest. */
export function terminalLine(jsonLine: string): string | undefined {
  let entry: { level?: unknown; msg?: unknown };
  try {
    entry = JSON.parse(jsonLine) as { level?: unknown; msg?: unknown };
  } catch {
    return undefined;
  }
  if (typeof entry.level !== 'string' || !SHOWN_ON_TERMINAL.has(entry.level)) return undefined;
  return `jitgate ${entry.level}: ${typeof entry.msg === 'string' ? entry.msg : 'see the log file'}\n`;
}
