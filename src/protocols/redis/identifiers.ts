/**
 * Values in a reply that the Redis protocol defines as identifiers, not data: stream entry IDs
 * (XADD, XRANGE, XREAD[GROUP], XCLAIM, XAUTOCLAIM, XPENDING, XINFO) and SCAN-family cursors.
 * Masking leaves them as they are: a stream ID such as `1700000000000-0` can pass a card
 * number's Luhn check, and a masked ID breaks XACK, XDEL and XCLAIM; a masked cursor breaks the
 * scan. They carry no value of the key (an ID is when the entry was added and its sequence).
 *
 * Only nodes in the positions the command's reply defines for them, and only when they look like
 * one (`<ms>-<seq>`, or digits for a cursor), are returned: anything else there is masked as usual.
 */
import type { RespValue } from './resp.js';

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const CURSOR = /^\d{1,20}$/;
const EMPTY: ReadonlySet<RespValue> = new Set();
/** XINFO STREAM fields holding an ID, and those holding one entry. */
const ID_FIELDS = new Set(['last-generated-id', 'max-deleted-entry-id', 'recorded-first-entry-id', 'last-delivered-id']);
const ENTRY_FIELDS = new Set(['first-entry', 'last-entry']);

/** The identifier nodes in `reply` to the command `name` (`xinfo|stream`, `scan`, ...). */
export function identifiersIn(name: string, reply: RespValue): ReadonlySet<RespValue> {
  const container = name.split('|')[0]!;
  if (container !== 'scan' && container !== 'sscan' && container !== 'hscan' && container !== 'zscan' && !container.startsWith('x'))
    return EMPTY;
  const found = new Set<RespValue>();
  const id = (v: RespValue | undefined) => {
    if (v?.type === 'bulk' && v.data && STREAM_ID.test(v.data.toString('latin1'))) found.add(v);
  };
  const entry = (v: RespValue | undefined) => {
    if (isList(v)) id(v.items[0]);
  };
  const entries = (v: RespValue | undefined) => {
    if (isList(v)) v.items.forEach(entry);
  };
  const claimed = (v: RespValue | undefined) => {
    // XCLAIM / XAUTOCLAIM: entries, or bare IDs with JUSTID.
    if (isList(v)) v.items.forEach((x) => (x.type === 'bulk' ? id(x) : entry(x)));
  };
  const pairs = (v: RespValue | undefined, each: (field: string, value: RespValue) => void) => {
    if (!isList(v)) return;
    for (let i = 0; i + 1 < v.items.length; i += 2) {
      const f = v.items[i]!;
      const field = f.type === 'bulk' ? f.data?.toString('latin1') : f.type === 'simple' ? f.text : undefined;
      if (field !== undefined) each(field, v.items[i + 1]!);
    }
  };
  const group = (g: RespValue) =>
    pairs(g, (field, value) => {
      if (ID_FIELDS.has(field)) id(value);
      else if (field === 'pel' && isList(value)) value.items.forEach(entry);
      else if (field === 'consumers' && isList(value))
        value.items.forEach((c) => pairs(c, (cf, cv) => cf === 'pel' && isList(cv) && cv.items.forEach(entry)));
    });
  switch (name) {
    case 'scan':
    case 'sscan':
    case 'hscan':
    case 'zscan':
      if (isList(reply) && reply.items[0]?.type === 'bulk' && reply.items[0].data && CURSOR.test(reply.items[0].data.toString('latin1')))
        found.add(reply.items[0]);
      break;
    case 'xadd':
      id(reply);
      break;
    case 'xrange':
    case 'xrevrange':
      entries(reply);
      break;
    case 'xread':
    case 'xreadgroup':
      // RESP2: [[key, entries], ...]; RESP3: a map key -> entries.
      if (reply.type === 'map' && reply.items) reply.items.forEach((v, i) => i % 2 === 1 && entries(v));
      else if (isList(reply)) reply.items.forEach((s) => isList(s) && entries(s.items[1]));
      break;
    case 'xclaim':
      claimed(reply);
      break;
    case 'xautoclaim':
      if (isList(reply)) {
        id(reply.items[0]);
        claimed(reply.items[1]);
        if (isList(reply.items[2])) reply.items[2].items.forEach(id);
      }
      break;
    case 'xpending':
      if (!isList(reply)) break;
      // Summary: [count, smallest ID, greatest ID, consumers]; extended: [[ID, consumer, idle, deliveries], ...].
      if (reply.items[0]?.type === 'integer') {
        id(reply.items[1]);
        id(reply.items[2]);
      } else reply.items.forEach(entry);
      break;
    case 'xinfo|stream':
      pairs(reply, (field, value) => {
        if (ID_FIELDS.has(field)) id(value);
        else if (ENTRY_FIELDS.has(field)) entry(value);
        else if (field === 'entries') entries(value);
        else if (field === 'groups' && isList(value)) value.items.forEach(group);
      });
      break;
    case 'xinfo|groups':
      if (isList(reply)) reply.items.forEach(group);
      break;
    default:
      break;
  }
  return found;
}

function isList(v: RespValue | undefined): v is Extract<RespValue, { type: 'array' | 'set' | 'push' | 'map' }> & { items: RespValue[] } {
  return v !== undefined && (v.type === 'array' || v.type === 'set' || v.type === 'push' || v.type === 'map') && v.items !== null;
}
