/**
 * Guardrails for Redis commands: the same rules as for SQL (one policy language), read through the
 * Redis lens. `deny.commands` names commands or subcommands (`flushall`, `config` = every CONFIG
 * subcommand, `client|kill`), `deny.categories` Redis ACL categories (`dangerous`, `@scripting`),
 * `deny.keys` key globs matched against the keys the command touches (found with Redis's own key
 * specs), and `deny.readOnly` every command Redis flags as a write. Pure: rules and argv in, a
 * Decision out. A command Redis does not describe is refused whenever any guardrail applies: what
 * cannot be analysed cannot be allowed.
 */
import type { Decision } from '../core/types.js';
import type { ReviewMatch, ReviewRule } from './review-rules.js';
import type { GuardrailRule } from './guardrails.js';
import { describeCommand, readsUndeclaredKeys, type RedisCommandInfo } from './redis-commands.js';

export type RedisGuardrailReason = 'unknown_command' | 'read_only' | 'command_denied' | 'category_denied' | 'key_denied';

const ALLOW: Decision = Object.freeze({ effect: 'allow', reasons: [] }) as Decision;

export function decideRedisCommand(rules: readonly GuardrailRule[], argv: readonly string[]): Decision {
  if (rules.length === 0) return ALLOW;
  const info = describeCommand(argv);
  if (!info.spec) {
    return refuse(rules[0]!, 'unknown_command', `${JSON.stringify(argv[0] ?? '')} is not a command jitgate knows, so it cannot be checked`);
  }
  for (const rule of rules) {
    const found = violation(rule, info);
    if (found) return refuse(rule, found[0], found[1]);
  }
  return ALLOW;
}

function violation(rule: GuardrailRule, info: RedisCommandInfo): [RedisGuardrailReason, string] | undefined {
  const d = rule.deny;
  const spec = info.spec!;
  const shown = info.name.toUpperCase();
  if (d.readOnly && spec.flags.includes('write')) return ['read_only', `${shown} writes on a read-only connection`];
  const container = info.name.split('|')[0]!;
  if (d.commands?.some((p) => redisGlob(p.toLowerCase()).test(info.name) || redisGlob(p.toLowerCase()).test(container))) {
    return ['command_denied', `${shown} is not allowed`];
  }
  const category = d.categories?.map((c) => c.replace(/^@/, '').toLowerCase()).find((c) => c === 'all' || spec.categories.includes(c));
  if (category) return ['category_denied', `${shown} is in the @${category} category`];
  if (d.keys?.length) {
    if (readsUndeclaredKeys(info.name, info.argv))
      return ['key_denied', `${shown} can read keys it does not name, so key rules cannot be checked`];
    const key = info.keys.find((k) => d.keys!.some((p) => redisGlob(p).test(k)));
    if (key !== undefined) return ['key_denied', `${shown} touches key ${JSON.stringify(key)}`];
  }
  return undefined;
}

function refuse(rule: GuardrailRule, reason: RedisGuardrailReason, what: string): Decision {
  return {
    effect: 'deny',
    reasons: [reason],
    rule: rule.name,
    message: `jitgate: command refused by guardrail "${rule.name}": ${what} (${reason})${rule.reason ? ` — ${rule.reason}` : ''}`,
  };
}

const compiled = new Map<string, RegExp>();

/** A Redis-style glob (`*`, `?`, `[abc]`, `\x`) as a regular expression; compiled once per pattern. */
export function redisGlob(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re) return re;
  let src = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') src += '[\\s\\S]*';
    else if (c === '?') src += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length) src += escape(pattern[++i]!);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close < 0) src += '\\[';
      else {
        let body = pattern.slice(i + 1, close);
        const negate = body.startsWith('^');
        if (negate) body = body.slice(1);
        src += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
        i = close;
      }
    } else src += escape(c);
  }
  re = new RegExp(src + '$');
  if (compiled.size < 10_000) compiled.set(pattern, re);
  return re;
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Statement reviews for Redis commands (policy/review-rules.ts): `writes: true` holds every command Redis
 * flags as a write; a command Redis does not describe is held too (it cannot be shown harmless).
 * The SQL criteria (kinds, tables, functions) do not apply to Redis.
 */
export function matchRedisReview(rules: readonly ReviewRule[], argv: readonly string[]): ReviewMatch | undefined {
  if (rules.length === 0) return undefined;
  const info = describeCommand(argv);
  if (!info.spec)
    return { rule: rules[0]!, reasons: ['unparsable_statement'], what: `${JSON.stringify(argv[0] ?? '')} is not a command jitgate knows` };
  const rule = rules.find((r) => r.match.writes && info.spec!.flags.includes('write'));
  return rule ? { rule, reasons: ['write_statement'], what: `${info.name.toUpperCase()} writes` } : undefined;
}
