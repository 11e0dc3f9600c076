/** The masking report from recorded events: per rule and column, refusals by statement shape, detector-only columns. */
import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from './file-recorder.js';
import { MaskingReportBuilder, normaliseStatement } from './masking-report.js';

let seq = 0;
const ev = (type: string, data: Record<string, unknown>, at = 1_000): RecordedEvent => ({ seq: seq++, at, type, data, h: '' });
const refused = (text: string, reason: string) =>
  ev('statement', { n: 1, source: 'simple', text, decision: { effect: 'deny', reasons: [reason], rule: 'masking' } });

describe('MaskingReportBuilder', () => {
  it('counts masked results and rows per rule and column, for whole results and streamed ones', () => {
    const b = new MaskingReportBuilder({ since: 0, until: 10_000 });
    b.add('prod', [
      ev('result', {
        columns: [
          { name: 'id', type: 23 },
          { name: 'email', type: 25 },
        ],
        masked: [{ column: 1, rule: 'pii', reason: 'masked_column' }],
        rows: [['1', 'a***@x.io']],
        tag: 'SELECT 1',
        count: 1,
      }),
      ev('columns', { columns: [{ name: 'email', type: 25 }], masked: [{ column: 0, rule: 'pii', reason: 'masked_column' }] }),
      ev('rows', { rows: [['a'], ['b']] }),
      ev('complete', { tag: 'SELECT 250', rows: 250 }),
      // A result with no masks counts nothing; one cut by an error counts the rows sent before it.
      ev('result', { columns: [{ name: 'id', type: 23 }], rows: [['1']], tag: 'SELECT 1', count: 1 }),
      ev('columns', { columns: [{ name: 'c', type: 25 }], masked: [{ column: 0, rule: 'lineage', reason: 'masking_unprovable' }] }),
      ev('error', { severity: 'ERROR', code: '57014', message: 'canceled', rows: 7 }),
    ]);
    const r = b.build({ connection: null, limited: false });
    expect(r.columns).toEqual([
      { connection: 'prod', rule: 'pii', reason: 'masked_column', column: 'email', results: 2, rows: 251 },
      { connection: 'prod', rule: 'lineage', reason: 'masking_unprovable', column: 'c', results: 1, rows: 7 },
    ]);
    expect(r.sessions).toEqual({ read: 1, unreadable: 0, limited: false });
  });

  it('groups masking refusals by statement shape, most frequent first, and ignores other refusals', () => {
    const b = new MaskingReportBuilder({ since: 0, until: 10_000 });
    b.add('prod', [
      refused('insert into t select email from users where id = 1;', 'masking_copy'),
      refused('insert into t  select email from users where id = 22', 'masking_copy'),
      refused('do $$ begin perform 1; end $$', 'masking_unprovable'),
      refused('drop table users', 'kind_denied'),
    ]);
    const r = b.build({ connection: 'prod', limited: true });
    expect(r.refusals.map((x) => [x.count, x.reason, x.statement])).toEqual([
      [2, 'masking_copy', 'insert into t select email from users where id = ?'],
      [1, 'masking_unprovable', 'do ?'],
    ]);
  });

  it('lists columns only detectors rewrote, with the detectors, but not columns a rule masked', () => {
    const b = new MaskingReportBuilder({ since: 0, until: 10_000 });
    b.add('prod', [
      ev('result', {
        columns: [
          { name: 'note', type: 25 },
          { name: 'email', type: 25 },
        ],
        masked: [{ column: 1, rule: 'pii', reason: 'masked_column' }],
        rows: [
          ['mail [email] or [phone]', '[email]'],
          ['plain', null],
          ['card [card]', '[email]'],
        ],
        tag: 'SELECT 3',
        count: 3,
      }),
    ]);
    expect(b.build({ connection: null, limited: false }).detectorOnly).toEqual([
      { connection: 'prod', column: 'note', detectors: ['card', 'email', 'phone'], results: 1, rows: 2 },
    ]);
  });

  it('counts only events inside the window', () => {
    const b = new MaskingReportBuilder({ since: 5_000, until: 10_000 });
    b.add('prod', [refused('select 1', 'masking_copy'), { ...refused('select 2', 'masking_copy'), at: 6_000 }]);
    expect(b.build({ connection: null, limited: false }).refusals.map((x) => x.statement)).toEqual(['select ?']);
  });
});

describe('normaliseStatement', () => {
  it.each([
    ["select * from t where a = 'x''y' and b = 42 and c = 1.5e3", 'select * from t where a = ? and b = ? and c = ?'],
    ['select  $tag$ body $tag$ ,\n $$x$$;', 'select ? , ?'],
    ['select t1.c2 from t1', 'select t1.c2 from t1'],
    ["select E'\\n', x'1f'", 'select ?, ?'],
  ])('%s', (text, shape) => {
    expect(normaliseStatement(text)).toBe(shape);
  });
});
