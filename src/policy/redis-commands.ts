/**
 * What a Redis command is, from its arguments: its name as policy sees it (`get`, `config|get`), its
 * flags and ACL categories, and the keys it touches, found with the key specifications Redis itself
 * publishes (COMMAND), so movable-key commands (EVAL numkeys, XREAD ... STREAMS, ZUNION) are covered.
 */
import { REDIS_COMMAND_TABLE } from './redis-command-table.js';

export interface RedisKeySpec {
  begin: { index: number } | { keyword: string; startfrom: number };
  find: { lastkey: number; keystep: number; limit: number } | { keynumidx: number; firstkey: number; keystep: number };
  /** The command may change or delete this key. */
  write: boolean;
  /** The command reads this key's value (and may return it or copy it elsewhere). */
  access: boolean;
}

export interface RedisCommandSpec {
  arity: number;
  flags: string[];
  categories: string[];
  keys: RedisKeySpec[];
}

export interface RedisCommandInfo {
  /** Lower case; `container|sub` for subcommands (`client|kill`). */
  name: string;
  /** Undefined: Redis 7.0 does not know this command (a module's, a newer version's, or a typo). */
  spec: RedisCommandSpec | undefined;
  keys: string[];
  argv: readonly string[];
}

/**
 * Commands that can read keys they do not name in their arguments (scripts, functions, SORT with
 * BY/GET patterns): key rules cannot be checked for them.
 */
export function readsUndeclaredKeys(name: string, argv: readonly string[]): boolean {
  const container = name.split('|')[0]!;
  if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(container)) return true;
  if (container === 'sort' || container === 'sort_ro') return argv.slice(2).some((a) => /^(by|get)$/i.test(a));
  return false;
}

/** Looks a command up: the subcommand's own entry when there is one, else the command's. */
export function commandSpec(argv: readonly string[]): { name: string; spec: RedisCommandSpec | undefined } {
  const name = (argv[0] ?? '').toLowerCase();
  if (argv.length > 1) {
    const sub = `${name}|${argv[1]!.toLowerCase()}`;
    const found = REDIS_COMMAND_TABLE[sub];
    if (found) return { name: sub, spec: found };
  }
  return { name, spec: Object.hasOwn(REDIS_COMMAND_TABLE, name) ? REDIS_COMMAND_TABLE[name] : undefined };
}

export function describeCommand(argv: readonly string[]): RedisCommandInfo {
  const { name, spec } = commandSpec(argv);
  return { name, spec, keys: spec ? keysOf(spec, argv) : [], argv };
}

/** The key arguments of a command, by its key specs (the algorithm Redis uses for ACL key checks). */
export function keysOf(spec: RedisCommandSpec, argv: readonly string[]): string[] {
  return keyUses(spec, argv).map((k) => k.key);
}

/** Each key argument with its key spec (whether the command reads its value, whether it writes it). */
export function keyUses(spec: RedisCommandSpec, argv: readonly string[]): Array<{ key: string; spec: RedisKeySpec }> {
  const keys: Array<{ key: string; spec: RedisKeySpec }> = [];
  const argc = argv.length;
  for (const ks of spec.keys) {
    let first: number;
    if ('index' in ks.begin) {
      first = ks.begin.index;
    } else {
      const { keyword, startfrom } = ks.begin;
      const kw = keyword.toLowerCase();
      first = -1;
      if (startfrom >= 0) {
        for (let i = startfrom; i < argc; i++)
          if (argv[i]!.toLowerCase() === kw) {
            first = i + 1;
            break;
          }
      } else {
        for (let i = argc + startfrom; i > 0; i--)
          if (argv[i]!.toLowerCase() === kw) {
            first = i + 1;
            break;
          }
      }
      if (first < 0) continue;
    }
    if (first <= 0 || first >= argc) continue;
    let last: number;
    let step: number;
    if ('lastkey' in ks.find) {
      const { lastkey, keystep, limit } = ks.find;
      step = keystep;
      if (lastkey >= 0) last = first + lastkey;
      else if (limit === 0 || limit === 1) last = argc + lastkey;
      else last = first + Math.floor((argc - first) / limit) + lastkey;
    } else {
      const { keynumidx, firstkey, keystep } = ks.find;
      const n = Number(argv[first + keynumidx]);
      if (!Number.isInteger(n) || n <= 0) continue;
      step = keystep;
      first = first + firstkey;
      last = first + (n - 1) * keystep;
    }
    last = Math.min(last, argc - 1);
    for (let i = first; i <= last && step > 0; i += step) keys.push({ key: argv[i]!, spec: ks });
  }
  return keys;
}
