/**
 * Re-encoding of masked values, table-driven: DataRow text and binary per type, COPY text and CSV
 * field syntax, and error texts that quote values. A fake PostgresMasking stands in for policy.
 */
import { describe, expect, it } from 'vitest';
import type { ColumnMask, StatementMaskPlan } from '../../core/types.js';
import type { PostgresMasking } from './masking.js';
import { quotesOnlyStatement } from '../../masking/pg-messages.js';
import { MaskingSession } from '../../masking/session.js';
import { escapeText, quoteCsv, REBUILT_ROW, ResultMasker, splitCsv, splitText, unescapeText } from './result-masker.js';

const EMAIL: ColumnMask = { rule: 'r', reason: 'masked_column', strategy: 'redact' };

function masking(plan: StatementMaskPlan): PostgresMasking {
  return {
    prepare: async () => undefined,
    check: () => undefined,
    plan: () => [plan],
    originMask: () => undefined,
    maskValue: (m, v) => (m.strategy === 'null' ? null : `<${v.length}>`),
    maskBytes: () => undefined,
  };
}

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function rowDescription(cols: Array<[string, number, number]>): Buffer {
  const parts = [Buffer.from([0, cols.length])];
  for (const [name, type, format] of cols) {
    const b = Buffer.alloc(18);
    b.writeUInt32BE(type, 6);
    b.writeInt16BE(format, 16);
    parts.push(Buffer.from(name + '\0'), b);
  }
  return msg('T', Buffer.concat(parts));
}

function dataRow(values: Array<Buffer | null>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(v ? v.length : -1);
    parts.push(len, ...(v ? [v] : []));
  }
  return msg('D', Buffer.concat(parts));
}

function values(row: Buffer): Array<string | null> {
  const out: Array<string | null> = [];
  let pos = 7;
  for (let i = 0; i < row.readInt16BE(5); i++) {
    const l = row.readInt32BE(pos);
    out.push(l < 0 ? null : row.toString('utf8', pos + 4, pos + 4 + l));
    pos += 4 + Math.max(l, 0);
  }
  return out;
}

function run(
  plan: StatementMaskPlan,
  cols: Array<[string, number, number]>,
  row: Array<Buffer | null>,
  policy: PostgresMasking = masking(plan),
): Array<string | null> | 'unchanged' {
  const m = new ResultMasker(policy);
  const q = msg('Q', Buffer.from('select\0'));
  m.onStatement(0x51, q, 0, q.length, true);
  const t = rowDescription(cols);
  m.onBackend(0x54, t, 0, t.length);
  const out = rebuilt(m, dataRow(row));
  return out ? values(out) : 'unchanged';
}

/** The DataRow as the masker rebuilt it, or undefined when it goes unchanged. */
function rebuilt(m: ResultMasker, row: Buffer): Buffer | undefined {
  const out = m.onBackend(0x44, row, 0, row.length);
  if (out === undefined) return undefined;
  expect(out).toBe(REBUILT_ROW);
  return m.rowBuf.subarray(m.rowStart, m.rowEnd);
}

describe('DataRow re-encoding', () => {
  const int4 = Buffer.from([0, 0, 0, 7]);
  const cases: Array<
    [string, StatementMaskPlan, Array<[string, number, number]>, Array<Buffer | null>, Array<string | null> | 'unchanged']
  > = [
    [
      'clear rows are not rebuilt',
      { columns: [undefined], fallback: undefined, touchesMasked: false },
      [['a', 25, 0]],
      [Buffer.from('x')],
      'unchanged',
    ],
    [
      'text column, text format',
      { columns: [EMAIL, undefined], fallback: undefined, touchesMasked: true },
      [
        ['e', 25, 0],
        ['n', 25, 0],
      ],
      [Buffer.from('abc'), Buffer.from('keep')],
      ['<3>', 'keep'],
    ],
    [
      'varchar column, binary format (same bytes as text)',
      { columns: [EMAIL], fallback: undefined, touchesMasked: true },
      [['e', 1043, 1]],
      [Buffer.from('abcd')],
      ['<4>'],
    ],
    [
      'int4 cannot hold the mask: NULL (binary)',
      { columns: [EMAIL], fallback: undefined, touchesMasked: true },
      [['i', 23, 1]],
      [int4],
      [null],
    ],
    [
      'jsonb cannot hold the mask: NULL (text)',
      { columns: [EMAIL], fallback: undefined, touchesMasked: true },
      [['j', 3802, 0]],
      [Buffer.from('{"a":1}')],
      [null],
    ],
    ['SQL NULL stays NULL', { columns: [EMAIL], fallback: undefined, touchesMasked: true }, [['e', 25, 0]], [null], 'unchanged'],
    [
      'null strategy',
      { columns: [{ ...EMAIL, strategy: 'null' }], fallback: undefined, touchesMasked: true },
      [['e', 25, 0]],
      [Buffer.from('x')],
      [null],
    ],
    [
      'unknown shape: columns without origin take the fallback',
      { columns: 'unknown', fallback: EMAIL, touchesMasked: true },
      [
        ['e', 25, 0],
        ['f', 25, 0],
      ],
      [Buffer.from('ab'), Buffer.from('c')],
      ['<2>', '<1>'],
    ],
    [
      'shape mismatch: fallback',
      { columns: [undefined], fallback: EMAIL, touchesMasked: true },
      [
        ['e', 25, 0],
        ['f', 25, 0],
      ],
      [Buffer.from('ab'), Buffer.from('c')],
      ['<2>', '<1>'],
    ],
  ];
  it.each(cases)('%s', (_name, plan, cols, row, expected) => {
    expect(run(plan, cols, row)).toEqual(expected);
  });

  it('masks ASCII values from their bytes and others as text, each exactly as the strategy says', () => {
    const session = new MaskingSession({
      rules: [],
      detectors: [],
      hashKey: Buffer.alloc(32, 3),
      loadCatalog: () => Promise.reject(new Error('unused')),
    });
    const email: ColumnMask = { rule: 'r', reason: 'masked_column', strategy: 'email' };
    const ssn: ColumnMask = { rule: 'r', reason: 'masked_column', strategy: 'partial', keepLast: 4 };
    const card: ColumnMask = { rule: 'r', reason: 'masked_column', strategy: 'card' };
    const hash: ColumnMask = { rule: 'r', reason: 'masked_column', strategy: 'hash' };
    const plan: StatementMaskPlan = {
      columns: [email, ssn, undefined, email, card, hash, email],
      fallback: undefined,
      touchesMasked: true,
    };
    const policy: PostgresMasking = {
      ...masking(plan),
      maskValue: (m, v) => session.maskValue(m, v),
      maskBytes: (m) => session.maskBytes(m),
    };
    const text = (v: string) => Buffer.from(v, 'utf8');
    const row = ['jane.doe@example.com', '123-45-6789', 'kept as is', 'zoë@exämple.com', '4111 1111 1111 1111', 'x@y.z', null];
    const cols = plan.columns as ColumnMask[];
    const out = run(
      plan,
      cols.map((_, i) => [`c${i}`, 25, 0]),
      row.map((v) => (v === null ? null : text(v))),
      policy,
    );
    expect(out).toEqual(row.map((v, i) => (v === null ? null : cols[i] ? session.maskValue(cols[i], v) : v)));
    expect(out).toEqual(['j*******@example.com', '*******6789', 'kept as is', 'z**@exämple.com', 'XXXX XXXX XXXX 1111', out[5], null]);
    expect(out[5]).toMatch(/^h:[0-9a-f]{16}$/);
  });

  it('writes rebuilt rows one after another, and never over a row already handed out', () => {
    const plan: StatementMaskPlan = { columns: [EMAIL, undefined], fallback: undefined, touchesMasked: true };
    const m = new ResultMasker(masking(plan));
    const q = msg('Q', Buffer.from('select\0'));
    m.onStatement(0x51, q, 0, q.length, true);
    const t = rowDescription([
      ['e', 25, 0],
      ['n', 25, 0],
    ]);
    m.onBackend(0x54, t, 0, t.length);
    // Enough rows to fill more than one 64 KiB arena; every one kept, as a socket's queue would.
    const handed: Array<{ row: Buffer; n: number }> = [];
    for (let n = 0; n < 4000; n++) {
      const row = rebuilt(m, dataRow([Buffer.from('x'.repeat(n % 50)), Buffer.from(`row ${n}`)]))!;
      const previous = handed.at(-1)?.row;
      // Within one arena, each row follows the previous one: the relay sends a run of them as one slice.
      if (previous && previous.buffer === row.buffer) expect(row.byteOffset).toBe(previous.byteOffset + previous.length);
      handed.push({ row, n });
    }
    expect(new Set(handed.map((h) => h.row.buffer)).size).toBeGreaterThan(1);
    for (const { row, n } of handed) expect(values(row)).toEqual([`<${n % 50}>`, `row ${n}`]);
  });

  it('a DataRow nobody described is masked entirely (fail closed)', () => {
    const m = new ResultMasker(masking({ columns: null, fallback: undefined, touchesMasked: false }));
    const d = dataRow([Buffer.from('secret')]);
    // Without a row description the type is unknown: the value becomes NULL.
    expect(values(rebuilt(m, d)!)).toEqual([null]);
  });
});

describe('COPY field syntax', () => {
  it.each([
    ['a\\tb\\\\c\\nd', 'a\tb\\c\nd'],
    ['\\x41\\101', 'AA'],
    ['plain', 'plain'],
  ])('text unescape %s', (raw, value) => {
    expect(unescapeText(raw)).toBe(value);
  });

  it('text escape round-trips through split', () => {
    const v = 'x\ty\\z\n;';
    const line = ['1', escapeText(v, '\t'), '\\N'].join('\t');
    expect(splitText(line, '\t').map(unescapeText)).toEqual(['1', v, 'N']);
    expect(splitText(line, '\t')[2]).toBe('\\N');
  });

  const o = { delimiter: ',', quote: '"', escape: '"', null: '' };
  it.each([
    [
      '1,"a,b",,""',
      [
        ['1', false],
        ['a,b', true],
        ['', false],
        ['', true],
      ],
    ],
    [
      '"he said ""hi""",x',
      [
        ['he said "hi"', true],
        ['x', false],
      ],
    ],
  ] as const)('csv split %s', (line, expected) => {
    expect(splitCsv(line, o).map((f) => [f.value, f.quoted])).toEqual(expected);
  });

  it('csv split with another quote and escape', () => {
    expect(splitCsv("'a\\'b';c", { delimiter: ';', quote: "'", escape: '\\' }).map((f) => f.value)).toEqual(["a'b", 'c']);
  });

  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "x"', '"say ""x"""'],
    ['', '""'],
  ])('csv quote %s', (v, out) => {
    expect(quoteCsv(v, o)).toBe(out);
  });
});

describe('error texts of statements that read masked data', () => {
  it.each([
    // Quotes a value the statement only read: hidden.
    ['relation "alice@x.com" does not exist', 'select 1 from users where email::regclass is null', false],
    ['requested character too large for encoding: 411111111', 'select chr(substr(card, 1, 9)::int) from users', false],
    ['operator does not exist: top', 'select 1 from users where secret::regoper is null', false],
    ['invalid input syntax for type integer: "alice@x.com"', 'select email::int from users', false],
    // Fixed texts, or variable parts the client wrote itself: kept.
    ['division by zero', 'select 1 / 0 from users where email is null', true],
    ['column "emial" does not exist', 'select emial from users', true],
    ['relation "userz" does not exist', 'select email from userz', true],
    ['syntax error at or near "form"', 'select email form users', true],
    // Constraint names come from the catalog, never from a value.
    ['duplicate key value violates unique constraint "users_email_key"', "insert into users (email) values ('x')", true],
    ['duplicate key value violates unique constraint "a" x "b"', "insert into users (email) values ('x')", false],
    ['invalid input syntax for type integer: "abc"', "select 'abc'::int from users where email is null", true],
    ['invalid input syntax for type integer: "hush"', 'select secret::int from users', false],
    ['value too long for type character varying(11)', "update users set ssn = 'far too long for it'", true],
    // A short value inside a longer word of the statement is not "what the client wrote".
    ['invalid input syntax for type integer: "f"', 'select gender::int from people', false],
    ['invalid input syntax for type integer: "f"', "select gender::int from people where gender <> 'f'", true],
  ] as const)('%s', (message, statement, kept) => {
    expect(quotesOnlyStatement(message, statement)).toBe(kept);
  });
});
