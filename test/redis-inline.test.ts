/**
 * Inline commands are split by the gateway exactly as redis-server splits them (sdssplitargs):
 * random lines of spaces, quotes, escapes and bytes C and JavaScript disagree about (\v, \f,
 * 0xA0, 0x85) are sent to a real Redis as `RPUSH k <line>` and the list it stored is compared
 * with the gateway's split. The gateway forwards an inline command as the RESP of its own split,
 * so a disagreement could only change what a user gets, never what runs unchecked; this keeps
 * the two the same.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplyReader, RespError, splitInline, type RespValue } from '../src/protocols/redis/resp.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
}, 60_000);
afterAll(() => redis?.stop());

/** Sends `input` on a fresh connection and reads `count` replies (or until Redis closes it). */
function exchange(input: Buffer, count: number): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const s = connect(redis.port, redis.host);
    const reader = new ReplyReader({ keepBytes: 1 << 16, keepItems: 1 << 10 });
    const values: RespValue[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to ${JSON.stringify(input.toString('latin1'))}`));
    }, 5000);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(values);
    };
    s.on('data', (d: Buffer) => {
      reader.push(d, { begin: () => undefined, bytes: () => undefined, end: (v) => values.push(v) });
      if (values.length >= count) done();
    });
    s.on('close', done);
    s.on('error', done);
    s.write(input);
  });
}

describe('inline commands', () => {
  it('are split as redis-server splits them', async () => {
    const { user, password } = redis.users.gateway;
    const alphabet = [' ', '\t', '\v', '\f', '\r', '"', "'", '\\', 'x', 'a', '4', 'F', 'n', '\xa0', '\x85', '\xff'];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 16 }), async (chars) => {
        const line = chars.join('');
        let ours: string[] | 'unbalanced';
        try {
          ours = splitInline(`RPUSH k ${line}`).slice(2);
        } catch (err) {
          if (!(err instanceof RespError)) throw err;
          ours = 'unbalanced';
        }
        const input = Buffer.from(`AUTH ${user} ${password}\r\nDEL k\r\nRPUSH k ${line}\r\nLRANGE k 0 -1\r\n`, 'latin1');
        const [, , pushed, listed] = await exchange(input, 4);
        if (ours === 'unbalanced') {
          expect(pushed).toEqual({ type: 'error', text: 'ERR Protocol error: unbalanced quotes in request' });
        } else if (ours.length === 0) {
          expect(pushed?.type).toBe('error');
        } else {
          expect(listed?.type).toBe('array');
          const items = listed?.type === 'array' ? (listed.items ?? []) : [];
          expect(items.map((v) => (v.type === 'bulk' ? v.data?.toString('latin1') : null))).toEqual(ours);
        }
      }),
      { numRuns: 300 },
    );
  });
});
