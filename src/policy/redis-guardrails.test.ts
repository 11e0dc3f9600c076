import { describe, expect, it } from 'vitest';
import type { GuardrailRule } from './guardrails.js';
import { describeCommand } from './redis-commands.js';
import { decideRedisCommand, redisGlob } from './redis-guardrails.js';

const rule = (deny: Partial<GuardrailRule['deny']>, name = 'r'): GuardrailRule => ({
  name,
  connections: ['*'],
  groups: ['*'],
  except: [],
  deny: { kinds: [], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: false, ...deny },
});

describe('key positions from Redis key specs', () => {
  it.each([
    [['GET', 'a'], ['a']],
    [
      ['MSET', 'a', '1', 'b', '2'],
      ['a', 'b'],
    ],
    [
      ['EVAL', 'return 1', '2', 'k1', 'k2', 'arg'],
      ['k1', 'k2'],
    ],
    [
      ['XREAD', 'COUNT', '2', 'STREAMS', 's1', 's2', '0', '0'],
      ['s1', 's2'],
    ],
    [
      ['ZUNIONSTORE', 'dst', '2', 'z1', 'z2', 'WEIGHTS', '1', '2'],
      ['dst', 'z1', 'z2'],
    ],
    [
      ['BLPOP', 'q1', 'q2', '5'],
      ['q1', 'q2'],
    ],
    [['CONFIG', 'GET', 'maxmemory'], []],
  ])('%j touches %j', (argv, keys) => {
    expect(describeCommand(argv).keys).toEqual(keys);
  });

  it('names subcommands', () => {
    expect(describeCommand(['client', 'KILL', 'ID', '1']).name).toBe('client|kill');
    expect(describeCommand(['nosuch']).spec).toBeUndefined();
  });
});

describe('decideRedisCommand', () => {
  it('allows everything when no rule applies', () => {
    expect(decideRedisCommand([], ['FLUSHALL']).effect).toBe('allow');
  });

  it.each([
    [{ commands: ['flushall'] }, ['FLUSHALL'], 'command_denied'],
    [{ commands: ['config'] }, ['CONFIG', 'SET', 'x', 'y'], 'command_denied'],
    [{ commands: ['config|set'] }, ['CONFIG', 'GET', 'x'], null],
    [{ commands: ['script*'] }, ['SCRIPT', 'FLUSH'], 'command_denied'],
    [{ categories: ['dangerous'] }, ['KEYS', '*'], 'category_denied'],
    [{ categories: ['@scripting'] }, ['EVALSHA', 'abc', '0'], 'category_denied'],
    [{ keys: ['secret:*'] }, ['MGET', 'a', 'secret:b'], 'key_denied'],
    [{ keys: ['Secret:*'] }, ['GET', 'secret:b'], null],
    [{ readOnly: true }, ['DEL', 'a'], 'read_only'],
    [{ readOnly: true }, ['GET', 'a'], null],
    [{}, ['NOSUCH', 'a'], 'unknown_command'],
  ] as const)('%j on %j -> %s', (deny, argv, reason) => {
    const d = decideRedisCommand([rule(deny as Partial<GuardrailRule['deny']>)], argv);
    if (reason === null) expect(d.effect).toBe('allow');
    else expect(d).toMatchObject({ effect: 'deny', reasons: [reason], rule: 'r' });
  });

  it('Redis globs', () => {
    expect(redisGlob('user:?:[ab]*').test('user:1:apple')).toBe(true);
    expect(redisGlob('user:?:[ab]*').test('user:12:apple')).toBe(false);
    expect(redisGlob('a\\*').test('a*')).toBe(true);
    expect(redisGlob('a\\*').test('ab')).toBe(false);
  });
});
