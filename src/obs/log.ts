/**
 * Structured JSON logs (pino) with secrets redacted.
 *
 * Two layers, because either alone leaks:
 * 1. pino's `redact` paths (fast, path-based) for the well-known places: top-level keys, one and two
 *    levels down, and request/response headers.
 * 2. A key-name scrubber in `formatters.log` / `formatters.bindings` that walks logged objects at any
 *    depth (copy-on-write: the caller's object is never modified) and censors every value whose key
 *    names a secret (`password`, `backendPassword`, `clientSecret`, `accessToken`, `authorization`,
 *    `cookie`, `apiKey`, `privateKey`, ...). It also turns Error objects into plain objects first,
 *    so secrets attached to errors are caught too.
 *
 * What no logger can redact: secrets interpolated into the message string. Never write
 * `log.info(\`token ${token}\`)`; log the object and let this module censor it.
 */
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export const REDACTED = '[redacted]';

export interface LoggerOptions {
  level: LogLevel;
  /** Where JSON lines go; default stdout. Anything with `write(line: string)`. */
  destination?: DestinationStream;
  /** Bound to every line (e.g. `{ service: 'jitgate' }`); default `{ pid, hostname }` is dropped. */
  base?: Record<string, unknown>;
}

/** Key names (lower-cased, `-`/`_` removed) whose values are always secret. */
const SECRET_KEYS = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'secret',
  'token',
  'tokens',
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'apikey',
  'privatekey',
  'masterkey',
  'credential',
  'credentials',
  'pgpassword',
  'dsn',
  'connectionstring',
  'sessionkey',
  'signingkey',
  'encryptionkey',
]);

/** Suffixes that make a key secret too: backendPassword, clientSecret, accessToken, refresh_token, x-api-key. */
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token', 'apikey', 'privatekey', 'masterkey', 'authorization', 'cookie'];

export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_]/g, '');
  if (SECRET_KEYS.has(k)) return true;
  return SECRET_SUFFIXES.some((s) => k.endsWith(s));
}

const TOP_LEVEL = [
  'password',
  'passwd',
  'secret',
  'token',
  'accessToken',
  'refreshToken',
  'idToken',
  'authorization',
  'cookie',
  'apiKey',
  'privateKey',
  'masterKey',
  'credential',
  'clientSecret',
];

/** The pino redact paths (layer 1). Exported so tests and docs can show them. */
export const REDACT_PATHS: string[] = [
  ...TOP_LEVEL,
  ...TOP_LEVEL.map((k) => `*.${k}`),
  ...TOP_LEVEL.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["proxy-authorization"]',
  '*.headers["x-api-key"]',
];

const MAX_DEPTH = 12;

/**
 * Return `value` with every secret-named key censored, at any depth. Objects are copied only where
 * something changes (or an Error is converted); the input is never mutated. Cycles are cut.
 */
export function scrubSecrets<T>(value: T): T {
  return scrub(value, 0, new WeakSet()) as T;
}

function scrub(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value) || value instanceof Date || value instanceof RegExp) return value;
  seen.add(value);
  try {
    if (value instanceof Error) {
      return scrub(stdSerializers.err(value), depth + 1, seen);
    }
    if (Array.isArray(value)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        const s = scrub(v, depth + 1, seen);
        if (s !== v) {
          out ??= value.slice();
          out[i] = s;
        }
      }
      return out ?? value;
    }
    if (value instanceof Map) {
      return scrub(Object.fromEntries(value), depth + 1, seen);
    }
    // Only walk plain-ish objects; class instances with toJSON are serialized by their own rules.
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
    let out: Record<string, unknown> | undefined;
    const src = value as Record<string, unknown>;
    for (const key of Object.keys(src)) {
      const v = src[key];
      const s = isSecretKey(key) && v !== undefined && v !== null && v !== '' ? REDACTED : scrub(v, depth + 1, seen);
      if (s !== v) {
        out ??= { ...src };
        out[key] = s;
      }
    }
    return out ?? value;
  } finally {
    seen.delete(value);
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const opts = {
    level: options.level,
    base: options.base ?? null,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    formatters: {
      level: (label: string) => ({ level: label }),
      bindings: (bindings: Record<string, unknown>) => scrubSecrets(bindings),
      log: (obj: Record<string, unknown>) => scrubSecrets(obj),
    },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
