import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkNativeScramble, checkSha2Scramble, nativeScramble, scrambleVerifiers, sha2Scramble } from './handshake.js';
import { framePacket, MAX_PACKET, MysqlProtocolError, PacketFramer, type Packet } from './packets.js';

function frameAll(bytes: Buffer, cuts: number[]): Packet[] {
  const framer = new PacketFramer();
  const out: Packet[] = [];
  let last = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b).concat(bytes.length)) {
    framer.push(bytes.subarray(last, cut), (p) => out.push({ ...p, payload: Buffer.from(p.payload) }));
    last = cut;
  }
  return out;
}

describe('MySQL packet framing', () => {
  it('yields the same packets however the byte stream is split', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(3000)), (payloads, cuts) => {
        const bytes = Buffer.concat(payloads.map((p, i) => framePacket(Buffer.from(p), i).bytes));
        const packets = frameAll(bytes, cuts);
        expect(packets.map((p) => [...p.payload])).toEqual(payloads.map((p) => [...p]));
        expect(packets.map((p) => p.seq)).toEqual(payloads.map((_, i) => i));
      }),
      { numRuns: 200 },
    );
  });

  it('joins payloads of 16 MB and more from their physical packets, and re-splits them', () => {
    const payload = Buffer.alloc(MAX_PACKET + 10, 7);
    const framed = framePacket(payload, 3);
    expect(framed.nextSeq).toBe(5);
    const packets = frameAll(framed.bytes, [1, 5000, MAX_PACKET, MAX_PACKET + 4, MAX_PACKET + 6]);
    expect(packets).toHaveLength(1);
    expect(packets[0]!.seq).toBe(3);
    expect(packets[0]!.lastSeq).toBe(4);
    expect(packets[0]!.raws).toHaveLength(2);
    expect(packets[0]!.payload.equals(payload)).toBe(true);
    // A payload of exactly 16 MB - 1 ends with an empty packet.
    expect(framePacket(Buffer.alloc(MAX_PACKET), 0).bytes.length).toBe(MAX_PACKET + 8);
  });

  it('says when a chunk was exactly whole packets (the relay then forwards the chunk itself)', () => {
    const framer = new PacketFramer();
    const two = Buffer.concat([framePacket(Buffer.from('a'), 1).bytes, framePacket(Buffer.from('bc'), 2).bytes]);
    framer.push(two, () => undefined);
    expect(framer.aligned).toBe(true);
    framer.push(two.subarray(0, 7), () => undefined);
    expect(framer.aligned).toBe(false);
    framer.push(two.subarray(7), () => undefined);
    expect(framer.aligned).toBe(false);
    framer.push(two, () => undefined);
    expect(framer.aligned).toBe(true);
  });

  it('refuses a continuation with a wrong sequence id', () => {
    const first = framePacket(Buffer.alloc(MAX_PACKET + 1), 0).bytes;
    first[MAX_PACKET + 4 + 3] = 9;
    expect(() => frameAll(first, [])).toThrow(MysqlProtocolError);
  });
});

describe('password scrambles', () => {
  it('checks a scramble against the double hash a server keeps, and nothing else', () => {
    const nonce = Buffer.from('abcdefghijklmnopqrst');
    const v = scrambleVerifiers(Buffer.from('jg_token'));
    expect(checkNativeScramble(nativeScramble(Buffer.from('jg_token'), nonce), nonce, v.native)).toBe(true);
    expect(checkSha2Scramble(sha2Scramble(Buffer.from('jg_token'), nonce), nonce, v.sha2)).toBe(true);
    expect(checkSha2Scramble(sha2Scramble(Buffer.from('jg_other'), nonce), nonce, v.sha2)).toBe(false);
    expect(checkNativeScramble(nativeScramble(Buffer.from('jg_token'), Buffer.from('tsrqponmlkjihgfedcba')), nonce, v.native)).toBe(false);
  });
});
