/**
 * Which startup parameters a client may pass to the backend, and how. A startup parameter is applied
 * by the backend before any statement, so none of the gateway's checks would see it: `role=owner`
 * switches role, `search_path` or `session_authorization` change what later statements mean. Settings
 * that only shape how values are shown pass as they are (SHOWN_AS); every other parameter, like each
 * `-c name=value` / `--name=value` of the `options` parameter (PGOPTIONS, split and read exactly as
 * PostgreSQL does), is a setting the session decides and records like a SET statement before it is
 * passed. Drivers send ordinary settings this way (node-postgres: statement_timeout, lock_timeout,
 * idle_in_transaction_session_timeout), so dropping them would silently change what the client asked
 * for; a setting the connection's rules refuse refuses the login, naming it.
 */

/** Formatting and identification only: none changes privileges, search paths or limits. */
const SHOWN_AS = new Set(['application_name', 'client_encoding', 'datestyle', 'timezone', 'extra_float_digits', 'intervalstyle']);

/** Identity and routing, the gateway's own (never passed). */
const GATEWAY_OWN = new Set(['user', 'database', 'replication', 'options']);

export interface StartupSettings {
  /** Parameters passed to the backend as they are (allow-listed). */
  passed: Map<string, string>;
  /**
   * Settings to be decided like `SET name = value` before they are passed: those of `options` first,
   * then the packet's own (which PostgreSQL applies after options, so they win).
   */
  requested: Array<{ name: string; value: string }>;
}

export class StartupOptionsError extends Error {}

/** Sorts a StartupMessage's parameters; throws StartupOptionsError for an `options` PostgreSQL rejects. */
export function sortStartupParams(params: ReadonlyMap<string, string>): StartupSettings {
  const passed = new Map<string, string>();
  const options = params.get('options');
  const requested = options === undefined ? [] : settingsOfOptions(options);
  for (const [name, value] of params) {
    if (GATEWAY_OWN.has(name) || name.startsWith('_pq_.')) continue;
    if (SHOWN_AS.has(name.toLowerCase())) passed.set(name, value);
    else requested.push({ name, value });
  }
  return { passed, requested };
}

/** The settings in an `options` string, read as PostgreSQL's pg_split_opts and getopt read it. */
export function settingsOfOptions(options: string): Array<{ name: string; value: string }> {
  const args = splitOptions(options);
  const out: Array<{ name: string; value: string }> = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    let setting: string;
    if (arg.startsWith('--')) {
      setting = arg.slice(2);
    } else if (arg.startsWith('-c')) {
      if (arg.length > 2) setting = arg.slice(2);
      else if (i + 1 < args.length) setting = args[++i]!;
      else throw new StartupOptionsError('option requires an argument -- c');
    } else if (arg.startsWith('-')) {
      throw new StartupOptionsError(`only -c name=value and --name=value are accepted in options through jitgate, not "${arg}"`);
    } else {
      throw new StartupOptionsError(`invalid command-line argument for server process: ${arg}`);
    }
    const eq = setting.indexOf('=');
    if (eq < 0) {
      throw new StartupOptionsError(setting.length ? `--${setting} requires a value` : '-c requires a value');
    }
    // PostgreSQL's ParseLongOption: dashes in the name are underscores.
    out.push({ name: setting.slice(0, eq).replace(/-/g, '_'), value: setting.slice(eq + 1) });
  }
  return out;
}

/** pg_split_opts: whitespace separates arguments; a backslash makes the next character literal. */
export function splitOptions(options: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && isSpace(options[i]!)) i++;
    if (i >= options.length) break;
    let arg = '';
    let escaped = false;
    while (i < options.length) {
      const c = options[i]!;
      if (isSpace(c) && !escaped) break;
      if (!escaped && c === '\\') escaped = true;
      else {
        escaped = false;
        arg += c;
      }
      i++;
    }
    args.push(arg);
  }
  return args;
}

/** C isspace in the "C" locale. */
function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/** A SET statement that says what a setting from `options` does, as PostgreSQL would apply it. */
export function asSetStatement(name: string, value: string): string {
  return `SET ${quoteIdent(name)} = ${quoteLiteral(value)}`;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$.]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
