import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkings, everyTwoWaySplit } from '../../../test/support/chunkings.js';
import { formatCommand, formatReply } from './display.js';
import {
  CommandReader,
  encodeCommand,
  encodeValue,
  ReplyReader,
  RespError,
  splitInline,
  type ParsedCommand,
  type RespValue,
} from './resp.js';

function readCommands(chunks: Buffer[]): ParsedCommand[] {
  const r = new CommandReader();
  const out: ParsedCommand[] = [];
  for (const c of chunks) r.push(c, (cmd) => out.push(cmd));
  return out;
}

function readReplies(chunks: Buffer[]): { values: RespValue[]; raw: Buffer[] } {
  const r = new ReplyReader({ keepBytes: 1 << 20, keepItems: 1 << 20 });
  const values: RespValue[] = [];
  const raw: Buffer[] = [];
  let parts: Buffer[] = [];
  for (const c of chunks) {
    r.push(c, {
      begin: () => (parts = []),
      bytes: (b) => parts.push(Buffer.from(b)),
      end: (v) => {
        values.push(v);
        raw.push(Buffer.concat(parts));
      },
    });
  }
  return { values, raw };
}

describe('CommandReader', () => {
  const wire = Buffer.concat([encodeCommand(['SET', 'k', 'v\r\nwith crlf']), Buffer.from('PING\r\n'), encodeCommand(['GET', 'k'])]);

  it('reads the same commands whatever the chunking', () => {
    const whole = readCommands([wire]).map((c) => c.args.map(String));
    expect(whole).toEqual([['SET', 'k', 'v\r\nwith crlf'], ['PING'], ['GET', 'k']]);
    for (let i = 1; i < wire.length; i++) {
      expect(readCommands([wire.subarray(0, i), wire.subarray(i)]).map((c) => c.args.map(String))).toEqual(whole);
    }
    const bytes = [...wire].map((b) => Buffer.from([b]));
    expect(readCommands(bytes).map((c) => c.args.map(String))).toEqual(whole);
  });

  it('hands on a command received in one piece as its own bytes, one slice', () => {
    const [first] = readCommands([wire]);
    expect(first!.raw).toHaveLength(1);
    expect(first!.raw![0]!.equals(encodeCommand(['SET', 'k', 'v\r\nwith crlf']))).toBe(true);
  });

  it('hands on a command split after a complete line as all of its bytes (not a stale slice of the next chunk)', () => {
    // The chunk ends right after `*3\r\n`: the next one must not be cut at the old offset.
    const set = encodeCommand(['SET', 'carrier', 'x\r\nFLUSHALL\r\n']);
    for (const at of [4, 13, 27]) {
      const [c] = readCommands([set.subarray(0, at), set.subarray(at)]);
      expect(Buffer.concat(c!.raw!).toString('latin1')).toBe(set.toString('latin1'));
    }
  });

  it('splits inline commands like Redis, quotes and escapes included', () => {
    expect(splitInline(`SET k "a b\\x41\\n"`)).toEqual(['SET', 'k', 'a bA\n']);
    expect(() => splitInline(`SET k 'it''s'`)).toThrow(/unbalanced quotes/);
    expect(splitInline(`SET k 'it\\'s'`)).toEqual(['SET', 'k', "it's"]);
    expect(() => splitInline('SET k "open')).toThrow(/unbalanced quotes/);
    // As Redis 7 splits them (checked against redis-server in test/redis-inline.test.ts):
    expect(splitInline('RPUSH l a"b c" ""')).toEqual(['RPUSH', 'l', 'ab c', '']);
    expect(splitInline('RPUSH l a\vb \xa0z\x85')).toEqual(['RPUSH', 'l', 'a\vb', '\xa0z\x85']);
    expect(() => splitInline('RPUSH l "x"y')).toThrow(/unbalanced quotes/);
  });

  it('refuses an inline command with a NUL byte (Redis would never run it, nor anything after it)', () => {
    expect(() => readCommands([Buffer.from('PING\0\r\nPING\r\n', 'latin1')])).toThrow(/NUL byte in inline request/);
  });

  it.each([
    ['*2\r\n$3\r\nGET\r\n:1\r\n', "Protocol error: expected '$', got ':'"],
    ['*x\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-5\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$3\r\nGETXX', 'Protocol error: bulk string not terminated by CRLF'],
    ['*01\r\n$4\r\nPING\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$04\r\nPING\r\n', 'Protocol error: invalid bulk length'],
    ['*-5\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-1\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$99999999999999999999\r\n', 'Protocol error: invalid bulk length'],
    ['*99999999999\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$+4\r\nPING\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n*1\r\n$4\r\nPING\r\n', "Protocol error: expected '$', got '*'"],
    ['*1\r\n$4\r\nPINGxx', 'Protocol error: bulk string not terminated by CRLF'],
  ])('refuses %j', (input, message) => {
    expect(() => readCommands([Buffer.from(input)])).toThrow(new RespError(message));
  });

  it('skips empty multibulks as Redis does', () => {
    expect(readCommands([Buffer.from('*0\r\n*-1\r\nPING\r\n')]).map((c) => c.args.map(String))).toEqual([['PING']]);
  });

  it("property: whatever the chunking, the same commands, and each RESP array's bytes exactly as sent", () => {
    fc.assert(
      fc.property(
        commandStream().chain((stream) => fc.tuple(fc.constant(stream), chunkings(stream.bytes))),
        ([stream, chunks]) => {
          const got = readCommands(chunks);
          expect(got.map((c) => c.args.map((a) => a.toString('latin1')))).toEqual(stream.commands.map((c) => c.args));
          got.forEach((c, i) => {
            const sent = stream.commands[i]!;
            if (sent.inline) expect(c.raw).toBeNull();
            else expect(Buffer.concat(c.raw!).toString('latin1')).toBe(sent.bytes.toString('latin1'));
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the same at every two-way split of a pipeline with a smuggling payload in a value', () => {
    const stream = streamOf([
      resp(['SET', 'carrier', 'x\r\nFLUSHALL\r\n*1\r\n$8\r\nFLUSHALL\r\nCONFIG SET requirepass x\r\n']),
      inline('GET "carrier"'),
      resp(['RPUSH', 'l', '', '$3', '*2']),
      resp(['SET', 'big', 'v'.repeat(3000)]),
      inline('PING'),
    ]);
    for (const { offset, chunks } of everyTwoWaySplit(stream.bytes)) {
      const got = readCommands(chunks);
      const shown = got.map((c) => (c.raw ? Buffer.concat(c.raw) : encodeCommand(c.args)).toString('latin1')).join('');
      expect(shown, `split at ${offset}`).toBe(
        stream.commands.map((c) => (c.inline ? encodeCommand(c.args) : c.bytes).toString('latin1')).join(''),
      );
    }
  });

  it('bounds what it holds: bulk and inline size limits', () => {
    const r = new CommandReader({ maxBulkBytes: 10, maxCommandBytes: 100, maxArgs: 4 });
    expect(() => r.push(Buffer.from('*1\r\n$11\r\n'), () => undefined)).toThrow(/invalid bulk length/);
    const r2 = new CommandReader({ maxBulkBytes: 10, maxCommandBytes: 80, maxArgs: 4 });
    expect(() => r2.push(Buffer.from('*2\r\n$10\r\n0123456789\r\n$10\r\n'), () => undefined)).toThrow(/command too large/);
    expect(() => readCommands([Buffer.alloc(70 * 1024, 'a')])).toThrow(/too big inline request/);
    const r3 = new CommandReader({ maxBulkBytes: 10, maxCommandBytes: 100, maxArgs: 4 });
    expect(() => r3.push(Buffer.from('*5\r\n'), () => undefined)).toThrow(/invalid multibulk length/);
  });
});

interface SentCommand {
  args: string[];
  bytes: Buffer;
  inline: boolean;
}

function resp(args: string[]): SentCommand {
  return { args, bytes: encodeCommand(args.map((a) => Buffer.from(a, 'latin1'))), inline: false };
}

/** An inline command of plain words (and one quoted argument when written so). */
function inline(line: string, ending = '\r\n'): SentCommand {
  return { args: splitInline(line), bytes: Buffer.from(line + ending, 'latin1'), inline: true };
}

function streamOf(commands: SentCommand[]): { commands: SentCommand[]; bytes: Buffer } {
  return { commands, bytes: Buffer.concat(commands.map((c) => c.bytes)) };
}

/** Pipelines of RESP arrays and inline commands, with values that look like protocol and big ones. */
function commandStream(): fc.Arbitrary<{ commands: SentCommand[]; bytes: Buffer }> {
  const tricky = fc.constantFrom(
    '',
    '\r\n',
    'FLUSHALL\r\n',
    '*1\r\n$8\r\nFLUSHALL\r\n',
    '$3\r\nSET\r\n',
    'GET secret:pin\n',
    '\0\xff',
    '*',
    '$',
  );
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: tricky },
    { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), tricky, fc.string({ maxLength: 8 })).map((p) => p.join('')) },
    // Bigger than a socket's chunk: arrives in pieces.
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 70_000 }).map((n) => 'b'.repeat(n)) },
  );
  const word = fc.stringMatching(/^[A-Za-z0-9:_-]{1,12}$/);
  const respCommand = fc
    .tuple(fc.constantFrom('SET', 'GET', 'RPUSH', 'HSET', 'XADD'), fc.array(value, { maxLength: 5 }))
    .map(([name, rest]) => resp([name, ...rest]));
  const inlineCommand = fc
    .tuple(fc.array(word, { minLength: 1, maxLength: 4 }), fc.constantFrom('\r\n', '\n'))
    .map(([words, end]) => inline(words.join(' '), end));
  return fc
    .array(fc.oneof({ weight: 3, arbitrary: respCommand }, { weight: 1, arbitrary: inlineCommand }), { minLength: 1, maxLength: 12 })
    .map(streamOf);
}

describe('ReplyReader', () => {
  const replies = [
    '+OK\r\n',
    '-ERR boom\r\n',
    ':42\r\n',
    '$5\r\nhello\r\n',
    '$-1\r\n',
    '*-1\r\n',
    '*0\r\n',
    '*3\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n$0\r\n\r\n',
    '%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n_\r\n',
    '~2\r\n$1\r\nx\r\n$1\r\ny\r\n',
    '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n',
    ',3.14\r\n',
    '#t\r\n',
    '(12345678901234567890\r\n',
    '=15\r\ntxt:Some string\r\n',
    '!10\r\nSYNTAX bad\r\n',
    '|1\r\n$3\r\nttl\r\n:5\r\n$3\r\nval\r\n',
  ];
  const wire = Buffer.from(replies.join(''));

  it('finds every reply whatever the chunking, with its exact bytes', () => {
    const whole = readReplies([wire]);
    expect(whole.values).toHaveLength(replies.length);
    expect(whole.raw.map(String)).toEqual(replies);
    for (let i = 1; i < wire.length; i++) {
      const split = readReplies([wire.subarray(0, i), wire.subarray(i)]);
      expect(split.raw.map(String)).toEqual(replies);
    }
  });

  it('property: the same replies, byte for byte, at random chunkings into many pieces', () => {
    const big = `$70000\r\n${'z'.repeat(70_000)}\r\n`;
    const all = [...replies, big, ...replies];
    const stream = Buffer.from(all.join(''));
    fc.assert(
      fc.property(chunkings(stream, 200), (chunks) => {
        expect(readReplies(chunks).raw.map(String)).toEqual(all);
      }),
      { numRuns: 100 },
    );
  });

  it('decodes and re-encodes values (attributes are dropped from the tree only)', () => {
    const { values } = readReplies([wire]);
    for (const [i, v] of values.entries()) {
      if (i === replies.length - 1) expect(String(encodeValue(v))).toBe('$3\r\nval\r\n');
      else if (replies[i] === '$-1\r\n' || replies[i] === '*-1\r\n') continue;
      else expect(String(encodeValue(v))).toBe(replies[i]);
    }
  });

  it('keeps only the head of a big value while its bytes stream on', () => {
    const r = new ReplyReader({ keepBytes: 4, keepItems: 2 });
    const out: RespValue[] = [];
    let bytes = 0;
    r.push(Buffer.from('$10\r\n0123456789\r\n*3\r\n:1\r\n:2\r\n:3\r\n'), {
      begin: () => undefined,
      bytes: (b) => (bytes += b.length),
      end: (v) => out.push(v),
    });
    expect(out[0]).toEqual({ type: 'bulk', data: Buffer.from('0123'), cut: 10 });
    expect(out[1]).toMatchObject({ type: 'array', count: 3, cut: true });
    expect(bytes).toBe(17 + 16);
  });

  it('rejects an unknown type byte', () => {
    expect(() => readReplies([Buffer.from('?x\r\n')])).toThrow(RespError);
  });
});

describe('display', () => {
  it('shows commands and replies as redis-cli does, secrets redacted', () => {
    expect(formatCommand(['set', 'k', 'a b', '"q"'].map((s) => Buffer.from(s)))).toBe('SET k "a b" "\\"q\\""');
    expect(formatCommand(['AUTH', 'alice@cache', 'jg_secret'].map((s) => Buffer.from(s)))).toBe('AUTH alice@cache (redacted)');
    expect(formatCommand(['HELLO', '3', 'AUTH', 'u', 'p', 'SETNAME', 'n'].map((s) => Buffer.from(s)))).toBe(
      'HELLO 3 AUTH u (redacted) SETNAME n',
    );
    const { values } = readReplies([Buffer.from('*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n')]);
    expect(formatReply(values[0]!)).toBe('1) "a"\n2) 1) (integer) 1\n   2) (nil)');
    expect(formatReply(values[1]!)).toBe('1# "f" => "v"');
    expect(formatReply(values[2]!)).toBe('(empty array)');
  });
});
