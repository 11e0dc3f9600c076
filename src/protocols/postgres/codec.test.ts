import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { build, Framer, parseFields, parseStartupPacket, ProtocolError, startupPacketLength } from './codec.js';

function frames(framer: Framer, chunks: Buffer[]): string[] {
  const out: string[] = [];
  for (const c of chunks) framer.push(c, (type, buf, start, end) => out.push(String.fromCharCode(type) + buf.toString('hex', start, end)));
  return out;
}

const sampleStream = Buffer.concat([
  build.query('select 1'),
  build.parse('s1', 'select $1::int'),
  build.error({ severity: 'ERROR', code: '42501', message: 'nope', detail: 'reason: x' }),
  build.readyForQuery(0x49),
  build.terminate(),
]);

describe('Framer', () => {
  it('yields the same messages however the stream is split (every offset, one and two cuts)', () => {
    const whole = frames(new Framer(), [sampleStream]);
    expect(whole).toHaveLength(5);
    for (let i = 0; i <= sampleStream.length; i++) {
      for (let j = i; j <= sampleStream.length; j++) {
        const parts = [sampleStream.subarray(0, i), sampleStream.subarray(i, j), sampleStream.subarray(j)];
        expect(frames(new Framer(), parts)).toEqual(whole);
      }
    }
  });

  it('yields the same messages for random message sequences and random chunkings', () => {
    const message = fc.tuple(fc.constantFrom(...'QPBEDCSHdcfXZTNA'.split('')), fc.uint8Array({ maxLength: 300 })).map(([t, body]) => {
      const b = Buffer.alloc(5 + body.length);
      b[0] = t.charCodeAt(0);
      b.writeInt32BE(4 + body.length, 1);
      Buffer.from(body).copy(b, 5);
      return b;
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (msgs, cuts) => {
        const stream = Buffer.concat(msgs);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of points) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        chunks.push(stream.subarray(prev));
        const framer = new Framer();
        expect(frames(framer, chunks)).toEqual(msgs.map((m) => String.fromCharCode(m[0]!) + m.toString('hex')));
        expect(framer.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a partial message until it is complete and hands it over on request', () => {
    const f = new Framer();
    const got = frames(f, [sampleStream.subarray(0, 3)]);
    expect(got).toEqual([]);
    expect(f.buffered).toBe(3);
    expect(Buffer.concat(f.takeBuffered())).toEqual(sampleStream.subarray(0, 3));
    expect(f.buffered).toBe(0);
  });

  it('rejects absurd lengths instead of waiting for a gigabyte', () => {
    const bad = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    expect(() => new Framer().push(bad, () => undefined)).toThrow(ProtocolError);
    const tooShort = Buffer.from([0x51, 0, 0, 0, 2]);
    expect(() => new Framer().push(tooShort, () => undefined)).toThrow(/invalid message length/);
    // The bound also applies when the header arrives split.
    const f = new Framer(1024);
    f.push(Buffer.from([0x44, 0, 0]), () => undefined);
    expect(() => f.push(Buffer.from([0x10, 0x00]), () => undefined)).toThrow(ProtocolError);
  });
});

describe('startup packets', () => {
  it('parses SSLRequest, GSSENCRequest, CancelRequest and StartupMessage', () => {
    expect(parseStartupPacket(build.sslRequest())).toEqual({ kind: 'ssl' });
    expect(parseStartupPacket(build.cancelRequest(42, 7))).toEqual({ kind: 'cancel', pid: 42, secret: 7 });
    const startup = parseStartupPacket(build.startup({ user: 'alice', database: 'demo', application_name: 'psql' }));
    expect(startup).toEqual({
      kind: 'startup',
      major: 3,
      minor: 0,
      params: new Map([
        ['user', 'alice'],
        ['database', 'demo'],
        ['application_name', 'psql'],
      ]),
    });
  });

  it('rejects bad lengths and layouts', () => {
    expect(() => startupPacketLength(Buffer.from([0, 0, 0, 4]))).toThrow(/invalid length/);
    expect(() => startupPacketLength(Buffer.from([0x47, 0x45, 0x54, 0x20]))).toThrow(/invalid length/); // "GET "
    const unterminated = Buffer.from([0, 0, 0, 13, 0, 3, 0, 0, 0x75, 0x73, 0x65, 0x72, 0]);
    expect(() => parseStartupPacket(unterminated)).toThrow(ProtocolError);
  });
});

describe('error fields', () => {
  it('round-trips severity, SQLSTATE, message and detail', () => {
    const e = build.error({ severity: 'FATAL', code: '28P01', message: 'password authentication failed for user "a"', detail: 'd' });
    const fields = parseFields(e, 0, e.length);
    expect(fields.get('S')).toBe('FATAL');
    expect(fields.get('C')).toBe('28P01');
    expect(fields.get('M')).toBe('password authentication failed for user "a"');
    expect(fields.get('D')).toBe('d');
  });
});
