/**
 * Masking of Redis replies: values of keys that match a rule's `keys` patterns, hash values whose
 * field matches a rule's `fields` patterns, and content detectors over every string the client is
 * sent (values, keys from SCAN/KEYS, pub/sub payloads, error messages).
 *
 * A reply is read by the shape of the command that produced it: MGET's items pair with its keys,
 * HGETALL/HSCAN/HRANDFIELD WITHVALUES alternate fields and values (RESP2 flat, RESP3 maps or
 * pairs), EXEC's items with the commands queued in the transaction, pub/sub messages by their
 * channel. Where a value's field cannot be known (HVALS) while field rules exist, it is masked
 * anyway: what cannot be shown clean is not shown.
 */
import { redactFindings, type DetectorName } from '../../masking/detectors.js';
import { applyStrategy, type MaskStrategy } from '../../masking/strategies.js';
import type { Decision, MaskingScope, SessionMasking, Statement } from '../../core/types.js';
import { describeCommand, keyUses, readsUndeclaredKeys } from '../../policy/redis-commands.js';
import { redisGlob } from '../../policy/redis-guardrails.js';
import { identifiersIn } from './identifiers.js';
import type { ReplyMasker } from './relay.js';
import type { RespValue } from './resp.js';

export interface RedisMaskingPolicy {
  /** Key globs (case-sensitive) and the strategy of their values, first match wins. */
  keys: Array<{ pattern: string; strategy: MaskStrategy; rule: string }>;
  /** Hash field globs and the strategy of their values. */
  fields: Array<{ pattern: string; strategy: MaskStrategy; rule: string }>;
  detectors: DetectorName[];
  hashKey: Buffer;
}

/**
 * The key and hash-field rules and detectors of a session's MaskingScope, or undefined when none
 * applies to Redis (column rules are for SQL): such a session's replies pass through untouched.
 */
export function redisMaskingPolicy(scope: MaskingScope): RedisMaskingPolicy | undefined {
  const keys = scope.rules.flatMap((r) => (r.keys ?? []).map((k) => ({ ...k, rule: r.name })));
  const fields = scope.rules.flatMap((r) => (r.fields ?? []).map((f) => ({ ...f, rule: r.name })));
  if (keys.length === 0 && fields.length === 0 && scope.detectors.length === 0) return undefined;
  return { keys, fields, detectors: scope.detectors, hashKey: scope.hashKey };
}

/** The masker of a Redis session (the listener's factory for the session pipeline), if any rule or detector applies. */
export function redisMasking(scope: MaskingScope): RedisReplyMasker | undefined {
  const policy = redisMaskingPolicy(scope);
  return policy && new RedisReplyMasker(policy);
}

/** Replies up to this size are held and masked; bigger ones are refused (fail closed). */
export const DEFAULT_MASKED_REPLY_BYTES = 16 * 1024 * 1024;

const HASH_PAIRS = new Set(['hgetall', 'hscan', 'hrandfield']);
/** Replies computed from a value rather than copies of it: a strategy would leak (hash of one character). */
const DERIVED = new Set(['getrange', 'substr', 'lcs']);
/** Commands that read a value bit by bit: no mask can stand in for the answer. */
const BIT_READS = new Set(['getbit', 'bitfield', 'bitfield_ro', 'bitpos', 'bitcount']);
/**
 * What may touch a masked key: commands answering with the key's values (which the strategy
 * replaces), with facts that do not depend on them (existence, type, TTL, number of items), or
 * writing it without reading it. Anything else (STRLEN, APPEND, INCRBY, SISMEMBER, SADD, LPOS,
 * ZSCORE, ZRANGEBYLEX, SINTER, SORT, OBJECT, MEMORY USAGE, DUMP, GEO*, PF*, ...) is refused on a
 * masked key: its answer says something about the value that no mask stands in for.
 */
const MASKED_KEY_SAFE = new Set([
  // values, masked
  'get',
  'getex',
  'getdel',
  'getset',
  'mget',
  'getrange',
  'substr',
  'lrange',
  'lindex',
  'lpop',
  'rpop',
  'blpop',
  'brpop',
  'lmpop',
  'blmpop',
  'lmove',
  'blmove',
  'rpoplpush',
  'brpoplpush',
  'hget',
  'hmget',
  'hgetall',
  'hkeys',
  'hvals',
  'hscan',
  'hrandfield',
  'smembers',
  'srandmember',
  'spop',
  'sscan',
  'zrange',
  'zrevrange',
  'zrandmember',
  'zscan',
  'zpopmin',
  'zpopmax',
  'bzpopmin',
  'bzpopmax',
  'zmpop',
  'bzmpop',
  'xrange',
  'xrevrange',
  'xread',
  'xreadgroup',
  'xclaim',
  'xautoclaim',
  // facts that do not depend on the value
  'exists',
  'type',
  'ttl',
  'pttl',
  'expiretime',
  'pexpiretime',
  'touch',
  'watch',
  'llen',
  'hlen',
  'hexists',
  'scard',
  'zcard',
  'xlen',
  'xpending',
  'xinfo|groups',
  'xinfo|consumers',
  // writes that read nothing back
  'set',
  'setex',
  'psetex',
  'setnx',
  'mset',
  'msetnx',
  'del',
  'unlink',
  'expire',
  'pexpire',
  'expireat',
  'pexpireat',
  'persist',
  'lpush',
  'rpush',
  'lpushx',
  'rpushx',
  'lset',
  'ltrim',
  'hset',
  'hmset',
  'hsetnx',
  'hdel',
  'xadd',
  'xdel',
  'xtrim',
  'xack',
  'xsetid',
  'xgroup|create',
  'xgroup|createconsumer',
  'xgroup|delconsumer',
  'xgroup|destroy',
  'xgroup|setid',
  'rename',
  'renamenx',
  'copy',
  'move',
  'restore',
  'ssubscribe',
  'sunsubscribe',
  'spublish',
]);
/** With field rules: commands describing a whole value, masked fields included. */
const FIELD_BLIND = new Set(['dump', 'memory|usage']);
/** With field rules: commands answering a fact about one field's value (argv[2] is the field). */
const FIELD_FACTS = new Set(['hstrlen', 'hincrby', 'hincrbyfloat']);
const REDACT: MaskStrategy = { kind: 'redact' };
const HASH_BY_FIELD = new Set(['hget', 'hmget', 'hgetdel', 'hgetex']);

export class RedisReplyMasker implements SessionMasking, ReplyMasker {
  readonly maxReplyBytes: number;
  /** Nodes of the reply being masked that are protocol identifiers (stream IDs, cursors): left as they are. */
  private identifiers: ReadonlySet<RespValue> = new Set();

  constructor(
    private readonly policy: RedisMaskingPolicy,
    maxReplyBytes = DEFAULT_MASKED_REPLY_BYTES,
  ) {
    this.maxReplyBytes = maxReplyBytes;
  }

  /** Nothing to read first: the rules match key and field names as commands give them. */
  prepare(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Commands refused while masking applies (fail closed):
   *  - those that would put a masked key's values into a key no rule masks the same way (COPY,
   *    RENAME, LMOVE, SUNIONSTORE, SORT ... STORE: `masking_copy`, as INSERT ... SELECT is for SQL);
   *  - those whose reads cannot be known (scripts, functions, SORT BY/GET, DEBUG, commands Redis does
   *    not describe: `masking_unprovable`);
   *  - any command on a masked key that is not known to answer with the key's (masked) values or with
   *    facts that do not depend on them (existence, type, TTL, counts of items): STRLEN, INCRBY k 0,
   *    BITCOUNT, LPOS, SISMEMBER, OBJECT ENCODING, MEMORY USAGE, ... each reveal something about the
   *    value an integer reply cannot be masked for (`masking_unprovable`);
   *  - with field rules, HSTRLEN/HINCRBY/HINCRBYFLOAT of a masked field, and DUMP, OBJECT and MEMORY
   *    USAGE of any key (a hash's masked fields are inside whatever they describe).
   * Every refusal names the masking rule it protects.
   */
  check(statement: Statement): Decision | undefined {
    const { keys, fields } = this.policy;
    if (keys.length === 0 && fields.length === 0) return undefined;
    const argv = statement.argv ?? [];
    const info = describeCommand(argv);
    const shown = (info.name || '?').replace('|', ' ').toUpperCase();
    const container = info.name.split('|')[0]!;
    if (!info.spec || readsUndeclaredKeys(info.name, argv) || container === 'debug') {
      return refusal('masking_unprovable', `${shown} can read values jitgate cannot follow, and masking applies to this session`, [
        ...new Set([...keys, ...fields].map((r) => r.rule)),
      ]);
    }
    if (fields.length > 0) {
      if (FIELD_BLIND.has(info.name) || container === 'object') {
        return refusal('masking_unprovable', `${shown} would describe hash values jitgate masks field by field`, fields[0]!.rule);
      }
      if (FIELD_FACTS.has(info.name)) {
        const field = argv[2];
        const rule = this.fieldRule(field);
        if (rule)
          return refusal('masking_unprovable', `${shown} would reveal facts about the masked field ${JSON.stringify(field)}`, rule.rule);
      }
    }
    if (keys.length === 0) return undefined;
    const uses = keyUses(info.spec, argv);
    for (const src of uses) {
      const rule = this.keyRule(src.key);
      if (!rule) continue;
      const key = JSON.stringify(src.key);
      if (BIT_READS.has(info.name)) return refusal('masking_unprovable', `${shown} would read the masked key ${key} bit by bit`, rule.rule);
      if (info.name === 'migrate') return refusal('masking_copy', `${shown} would move the masked key ${key} elsewhere`, rule.rule);
      if (src.spec.access) {
        const leak = uses.find((dst) => dst.spec.write && !dst.spec.access && this.keyRule(dst.key) !== rule);
        if (leak) {
          return refusal(
            'masking_copy',
            `${shown} would copy masked values of ${key} to ${JSON.stringify(leak.key)}, where they are not masked the same way`,
            rule.rule,
          );
        }
      }
      if (!MASKED_KEY_SAFE.has(info.name) || (info.name === 'zrange' && argv.some((a, i) => i > 3 && /^by(lex|score)$/i.test(a)))) {
        return refusal(
          'masking_unprovable',
          `${shown} of the masked key ${key} would reveal facts about its value that cannot be masked`,
          rule.rule,
        );
      }
    }
    return undefined;
  }

  mask(args: readonly Buffer[] | null, value: RespValue, queued?: ReadonlyArray<readonly Buffer[]>): boolean {
    const state = { changed: false };
    this.identifiers = new Set();
    if (args === null) this.push(value, state);
    else this.reply(args, value, state, queued);
    return state.changed;
  }

  private reply(args: readonly Buffer[], value: RespValue, state: Changed, queued?: ReadonlyArray<readonly Buffer[]>): void {
    const argv = args.map((a) => a.toString('utf8'));
    const info = describeCommand(argv);
    const name = info.name.split('|')[0]!;
    this.identifiers = identifiersIn(info.name, value);
    if (name === 'exec' && queued && isAgg(value) && value.items) {
      value.items.forEach((item, i) =>
        queued[i] ? this.reply(queued[i]!, item, state) : this.scrubAll(item, state, undefined, new Set()),
      );
      return;
    }
    const keys = new Set(info.keys);
    if (name === 'mget' && isAgg(value) && value.items) {
      value.items.forEach((item, i) => this.scrubAll(item, state, this.keyStrategy(info.keys[i]), keys));
      return;
    }
    const found = info.keys.map((k) => this.keyStrategy(k)).find((s) => s !== undefined);
    const keyStrategy = found && DERIVED.has(name) ? REDACT : found;
    if ((name === 'sscan' || name === 'zscan') && isAgg(value) && value.items && value.items.length === 2) {
      // The cursor is an identifier (left as it is), not a value.
      this.scrubAll(value.items[0]!, state, undefined, keys);
      this.scrubAll(value.items[1]!, state, keyStrategy, keys);
      return;
    }
    if (HASH_BY_FIELD.has(name)) {
      const at = argv.findIndex((a) => a.toLowerCase() === 'fields');
      const fields = name === 'hget' ? [argv[2]] : name === 'hmget' ? argv.slice(2) : at > 0 ? argv.slice(at + 2) : [];
      if (isAgg(value) && value.items)
        value.items.forEach((item, i) => this.scrubAll(item, state, keyStrategy ?? this.fieldStrategy(fields[i]), keys));
      else this.scrubAll(value, state, keyStrategy ?? this.fieldStrategy(fields[0]), keys);
      return;
    }
    if (name === 'hrandfield' && !argv.some((a) => a.toLowerCase() === 'withvalues')) {
      // Field names only.
      this.scrubAll(value, state, undefined, keys);
      return;
    }
    if (HASH_PAIRS.has(name)) {
      const list = name === 'hscan' && isAgg(value) && value.items ? value.items[1] : value;
      if (name === 'hscan' && isAgg(value) && value.items?.[0]) this.scrubAll(value.items[0], state, undefined, keys);
      if (list) this.hashPairs(list, state, keyStrategy, keys);
      return;
    }
    const unknownField = name === 'hvals' && this.policy.fields.length > 0 ? this.policy.fields[0]!.strategy : undefined;
    this.scrubAll(value, state, keyStrategy ?? unknownField, keys);
  }

  /** Field/value pairs: flat (RESP2), a map (RESP3), or a list of [field, value] pairs. */
  private hashPairs(list: RespValue, state: Changed, keyStrategy: MaskStrategy | undefined, keys: Set<string>): void {
    if (!isAgg(list) || !list.items) return this.scrubAll(list, state, keyStrategy, keys);
    const items = list.items;
    if (items.every((x) => isAgg(x))) {
      for (const pair of items) this.hashPairs(pair, state, keyStrategy, keys);
      return;
    }
    for (let i = 0; i < items.length; i += 2) {
      const field = items[i]!;
      this.scrubAll(field, state, undefined, keys);
      const v = items[i + 1];
      if (!v) {
        // HRANDFIELD without WITHVALUES: fields only.
        continue;
      }
      const f = field.type === 'bulk' ? field.data?.toString('utf8') : undefined;
      this.scrubAll(v, state, keyStrategy ?? this.fieldStrategy(f), keys);
    }
  }

  /** Pub/sub messages: the payload by its channel; anything else pushed, by detectors. */
  private push(value: RespValue, state: Changed): void {
    if (!isAgg(value) || !value.items) return;
    const items = value.items;
    const kind = items[0]?.type === 'bulk' ? items[0].data?.toString('latin1').toLowerCase() : undefined;
    const at = kind === 'pmessage' ? 2 : kind === 'message' || kind === 'smessage' ? 1 : -1;
    if (at < 0) return this.scrubAll(value, state, undefined, new Set());
    const channel = items[at]?.type === 'bulk' ? (items[at] as { data: Buffer | null }).data?.toString('utf8') : undefined;
    const payload = items[at + 1];
    if (payload) this.scrubAll(payload, state, this.keyStrategy(channel), new Set());
  }

  /** The key rule masking `key`, if any (also what `jitgate policy test` reports). */
  keyRule(key: string | undefined): RedisMaskingPolicy['keys'][number] | undefined {
    if (key === undefined) return undefined;
    return this.policy.keys.find((k) => redisGlob(k.pattern).test(key));
  }

  private fieldRule(field: string | undefined): RedisMaskingPolicy['fields'][number] | undefined {
    if (field === undefined) return undefined;
    return this.policy.fields.find((f) => redisGlob(f.pattern).test(field));
  }

  private keyStrategy(key: string | undefined): MaskStrategy | undefined {
    return this.keyRule(key)?.strategy;
  }

  private fieldStrategy(field: string | undefined): MaskStrategy | undefined {
    if (field === undefined) return undefined;
    return this.policy.fields.find((f) => redisGlob(f.pattern).test(field))?.strategy;
  }

  /**
   * Every string in `v`: masked with `strategy` when one applies (the command's own key names are
   * left as they are: the client sent them), then scrubbed by the detectors.
   */
  private scrubAll(v: RespValue, state: Changed, strategy: MaskStrategy | undefined, keys: Set<string>): void {
    if (this.identifiers.has(v)) return;
    switch (v.type) {
      case 'bulk':
      case 'verbatim': {
        if (v.data === null) return;
        const text = v.data.toString('utf8');
        if (strategy && !keys.has(text)) {
          const masked = applyStrategy(strategy, text, { hashKey: this.policy.hashKey });
          state.changed = true;
          if (masked === null) {
            if (v.type === 'bulk') v.data = null;
            else v.data = Buffer.alloc(0);
            return;
          }
          v.data = Buffer.from(masked, 'utf8');
          return;
        }
        const scrubbed = this.detect(text);
        if (scrubbed !== undefined) {
          v.data = Buffer.from(scrubbed, 'utf8');
          state.changed = true;
        }
        return;
      }
      case 'simple':
      case 'error': {
        const scrubbed = this.detect(v.text);
        if (scrubbed !== undefined) {
          v.text = scrubbed;
          state.changed = true;
        }
        return;
      }
      case 'bloberror': {
        const scrubbed = this.detect(v.data.toString('utf8'));
        if (scrubbed !== undefined) {
          v.data = Buffer.from(scrubbed, 'utf8');
          state.changed = true;
        }
        return;
      }
      case 'array':
      case 'set':
      case 'push':
      case 'map':
        for (const item of v.items ?? []) this.scrubAll(item, state, strategy, keys);
        return;
      case 'double':
      case 'bignum': {
        // A masked key's numbers (RESP3 sorted-set scores): masked as RESP2 sends them, as strings.
        if (!strategy) return;
        const masked = applyStrategy(strategy, v.text, { hashKey: this.policy.hashKey });
        const asBulk = v as unknown as { type: string; text?: string; data: Buffer | null };
        asBulk.type = 'bulk';
        delete asBulk.text;
        asBulk.data = masked === null ? null : Buffer.from(masked, 'utf8');
        state.changed = true;
        return;
      }
      default:
        return;
    }
  }

  private detect(text: string): string | undefined {
    if (this.policy.detectors.length === 0 || text.length === 0) return undefined;
    const r = redactFindings(text, this.policy.detectors);
    return r.findings.length ? r.text : undefined;
  }
}

interface Changed {
  changed: boolean;
}

/** A refusal naming the masking rule(s) it protects: `... (masking rule "pii", masking_copy)`. */
function refusal(reason: 'masking_copy' | 'masking_unprovable', what: string, rule: string | string[]): Decision {
  const rules = typeof rule === 'string' ? [rule] : rule;
  const named = rules.map((r) => JSON.stringify(r)).join(', ');
  return { effect: 'deny', reasons: [reason], rule: rules[0]!, message: `jitgate: ${what} (masking rule ${named}, ${reason})` };
}

function isAgg(v: RespValue): v is Extract<RespValue, { type: 'array' | 'set' | 'push' | 'map' }> {
  return v.type === 'array' || v.type === 'set' || v.type === 'push' || v.type === 'map';
}
