import { describe, expect, it } from 'vitest';
import { ALL_DETECTORS, luhnValid, redactFindings } from '../../masking/detectors.js';
import { RedisReplyMasker } from './masking.js';
import { encodeValue, ReplyReader, type RespValue } from './resp.js';

/** A stream ID whose digits pass the Luhn check, so the card detector would take it for a card. */
function luhnStreamId(from: number): string {
  for (let ms = from; ms < from + 100; ms++) if (luhnValid(`${ms}0`)) return `${ms}-0`;
  throw new Error('no Luhn-valid ID in range');
}

const ID = luhnStreamId(1_700_000_000_000);
const ID2 = luhnStreamId(1_700_000_000_100);
const CARD = '4111 1111 1111 1111';

const bulk = (s: string): RespValue => ({ type: 'bulk', data: Buffer.from(s) });
const arr = (...items: RespValue[]): RespValue => ({ type: 'array', items, count: items.length });
const map = (...items: RespValue[]): RespValue => ({ type: 'map', items, count: items.length / 2 });
const int = (n: number): RespValue => ({ type: 'integer', text: String(n) });
const entry = (id: string, ...fields: string[]) => arr(bulk(id), arr(...fields.map(bulk)));

/** The reply after masking with every detector and no rule, as RESP text. */
function masked(
  args: string[],
  reply: RespValue,
  masker = new RedisReplyMasker({ keys: [], fields: [], detectors: [...ALL_DETECTORS], hashKey: Buffer.alloc(32) }),
): string {
  // Through the wire form, as the relay hands replies to the masker.
  let value: RespValue | undefined;
  new ReplyReader({ keepBytes: 1 << 20, keepItems: 1 << 20 }).push(encodeValue(reply), {
    begin: () => undefined,
    bytes: () => undefined,
    end: (v) => (value = v),
  });
  masker.mask(
    args.map((a) => Buffer.from(a)),
    value!,
  );
  return encodeValue(value!).toString();
}

describe('protocol identifiers are not masked by detectors', () => {
  it('the test IDs would be taken for cards', () => {
    expect(redactFindings(ID, ['card']).findings).toHaveLength(1);
    expect(redactFindings(ID2, ['card']).findings).toHaveLength(1);
  });

  it.each([
    ['XADD', ['XADD', 's', '*', 'f', 'v'], bulk(ID)],
    ['XRANGE', ['XRANGE', 's', '-', '+'], arr(entry(ID, 'f', 'v'), entry(ID2, 'f', 'w'))],
    ['XREVRANGE', ['XREVRANGE', 's', '+', '-'], arr(entry(ID2, 'f', 'v'))],
    ['XREAD (RESP2)', ['XREAD', 'STREAMS', 's', '0'], arr(arr(bulk('s'), arr(entry(ID, 'f', 'v'))))],
    ['XREADGROUP (RESP3)', ['XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', 's', '>'], map(bulk('s'), arr(entry(ID, 'f', 'v')))],
    ['XCLAIM', ['XCLAIM', 's', 'g', 'c', '0', ID], arr(entry(ID, 'f', 'v'))],
    ['XCLAIM JUSTID', ['XCLAIM', 's', 'g', 'c', '0', ID, 'JUSTID'], arr(bulk(ID))],
    ['XAUTOCLAIM', ['XAUTOCLAIM', 's', 'g', 'c', '0', '0'], arr(bulk(ID2), arr(entry(ID, 'f', 'v')), arr(bulk(ID2)))],
    ['XPENDING summary', ['XPENDING', 's', 'g'], arr(int(2), bulk(ID), bulk(ID2), arr(arr(bulk('c'), bulk('2'))))],
    ['XPENDING extended', ['XPENDING', 's', 'g', '-', '+', '10'], arr(arr(bulk(ID), bulk('c'), int(5), int(1)))],
    [
      'XINFO STREAM',
      ['XINFO', 'STREAM', 's'],
      arr(
        bulk('length'),
        int(1),
        bulk('last-generated-id'),
        bulk(ID2),
        bulk('recorded-first-entry-id'),
        bulk(ID),
        bulk('first-entry'),
        entry(ID, 'f', 'v'),
      ),
    ],
    ['XINFO GROUPS', ['XINFO', 'GROUPS', 's'], arr(arr(bulk('name'), bulk('g'), bulk('last-delivered-id'), bulk(ID)))],
  ])('%s', (_what, args, reply) => {
    expect(masked(args, reply)).toBe(encodeValue(reply).toString());
  });

  it('SCAN-family cursors', () => {
    const cursor = '4111111111111111';
    expect(masked(['SCAN', '0'], arr(bulk(cursor), arr(bulk('k'))))).toContain(cursor);
    expect(masked(['HSCAN', 'h', '0'], arr(bulk(cursor), arr(bulk('f'), bulk('v'))))).toContain(cursor);
  });

  it('while values in the same replies are still scrubbed', () => {
    const out = masked(['XRANGE', 's', '-', '+'], arr(entry(ID, 'card', CARD)));
    expect(out).toContain(ID);
    expect(out).not.toContain(CARD);
    // A card number in an ID's place is not an ID: scrubbed.
    expect(masked(['XADD', 's', '*', 'f', 'v'], bulk(CARD))).not.toContain(CARD);
    expect(masked(['GET', 'k'], bulk(ID))).not.toContain(ID);
  });

  it('and a masked stream key keeps its IDs while its values are masked', () => {
    const masker = new RedisReplyMasker({
      keys: [{ pattern: 'pay:*', strategy: { kind: 'redact' }, rule: 'payments' }],
      fields: [],
      detectors: [],
      hashKey: Buffer.alloc(32),
    });
    const out = masked(['XRANGE', 'pay:s', '-', '+'], arr(entry(ID, 'amount', '12.50')), masker);
    expect(out).toContain(ID);
    expect(out).not.toContain('12.50');
  });
});
