import { describe, expect, it } from 'vitest';
import { formatCommand, formatReply } from './display.js';
import { CommandReader, encodeCommand, encodeValue, ReplyReader, RespError, splitInline, type ParsedCommand, type RespValue } from './resp.js';

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

  it('hands on a command received in one piece as its own bytes', () => {
    const [first] = readCommands([wire]);
    expect(first!.raw?.equals(encodeCommand(['SET', 'k', 'v\r\nwith crlf']))).toBe(true);
  });

  it('splits inline commands like Redis, quotes and escapes included', () => {
    expect(splitInline(`SET k "a b\\x41\\n"`)).toEqual(['SET', 'k', 'a bA\n']);
    expect(() => splitInline(`SET k 'it''s'`)).toThrow(/unbalanced quotes/);
    expect(splitInline(`SET k 'it\\'s'`)).toEqual(['SET', 'k', "it's"]);
    expect(() => splitInline('SET k "open')).toThrow(/unbalanced quotes/);
  });

  it.each([
    ['*2\r\n$3\r\nGET\r\n:1\r\n', "Protocol error: expected '$', got ':'"],
    ['*x\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-5\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$3\r\nGETXX', 'Protocol error: bulk string not terminated by CRLF'],
    ['*01\r\n$4\r\nPING\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\n$04\r\nPING\r\n', 'Protocol error: invalid bulk length'],
  ])('refuses %j', (input, message) => {
    expect(() => readCommands([Buffer.from(input)])).toThrow(new RespError(message));
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
    r.push(Buffer.from('$10\r\n0123456789\r\n*3\r\n:1\r\n:2\r\n:3\r\n'), { begin: () => undefined, bytes: (b) => (bytes += b.length), end: (v) => out.push(v) });
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
    expect(formatCommand(['HELLO', '3', 'AUTH', 'u', 'p', 'SETNAME', 'n'].map((s) => Buffer.from(s)))).toBe('HELLO 3 AUTH u (redacted) SETNAME n');
    const { values } = readReplies([Buffer.from('*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n')]);
    expect(formatReply(values[0]!)).toBe('1) "a"\n2) 1) (integer) 1\n   2) (nil)');
    expect(formatReply(values[1]!)).toBe('1# "f" => "v"');
    expect(formatReply(values[2]!)).toBe('(empty array)');
  });
});
