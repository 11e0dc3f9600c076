import { describe, expect, it } from 'vitest';
import { chainHash, GENESIS, type RecordedEvent } from './file-recorder.js';
import { alignedTable } from './psql-table.js';
import { renderTranscript } from './transcript.js';

function events(list: Array<[string, Record<string, unknown>]>): RecordedEvent[] {
  let prev = GENESIS;
  return list.map(([type, data], seq) => {
    const base = { seq, at: Date.UTC(2026, 0, 1) + seq * 1000, type, data };
    prev = chainHash(prev, base);
    return { ...base, h: prev };
  });
}

const start = {
  session: 's-1',
  protocol: 'postgres',
  user: 'alice',
  groups: ['engineering'],
  connection: 'orders',
  clientAddress: '10.0.0.5:5000',
  applicationName: 'psql',
  authMethod: 'SCRAM-SHA-256-PLUS',
  encrypted: true,
  tokenId: 't-1',
  grant: {
    id: 'g-1',
    reason: 'incident 7',
    requestId: 'r-1',
    approvedBy: ['bob'],
    breakGlass: false,
    policy: 'p',
    issuedBy: null,
    createdAt: 0,
    expiresAt: Date.UTC(2026, 0, 1, 1),
  },
  recording: { mode: 'required', limits: {} },
};

describe('transcript', () => {
  it('reads like the psql session: prompt, aligned tables, tags, notices, errors, decisions and holds', () => {
    const text = renderTranscript(
      events([
        ['session_start', start],
        ['statement', { n: 1, source: 'simple', text: 'select id, name\nfrom items;', decision: { effect: 'allow', reasons: [] } }],
        [
          'columns',
          {
            columns: [
              { name: 'id', type: 23 },
              { name: 'name', type: 25 },
            ],
          },
        ],
        [
          'rows',
          {
            rows: [
              ['1', 'apple'],
              ['22', null],
            ],
          },
        ],
        ['complete', { tag: 'SELECT 2', rows: 2 }],
        ['ready', { ms: 3 }],
        [
          'statement',
          { n: 2, source: 'simple', text: 'insert into t values (1) returning id;', decision: { effect: 'allow', reasons: [] } },
        ],
        ['columns', { columns: [{ name: 'id', type: 23 }] }],
        ['rows', { rows: [['1']] }],
        ['complete', { tag: 'INSERT 0 1', rows: 1 }],
        ['notice', { severity: 'NOTICE', code: '00000', message: 'hello' }],
        ['ready', {}],
        ['statement', { n: 3, source: 'simple', text: 'drop table t;', held: true }],
        ['decision', { n: 3, decision: { effect: 'deny', reasons: ['denied_by_approver'], approvedBy: undefined }, waitedMs: 12_000 }],
        ['error', { severity: 'ERROR', code: '42501', message: 'statement refused' }],
        ['ready', {}],
        ['statement', { n: 4, source: 'simple', text: 'select * from big;', decision: { effect: 'allow', reasons: [] } }],
        ['columns', { columns: [{ name: 'v', type: 25 }] }],
        ['rows', { rows: [['a']] }],
        ['complete', { tag: 'SELECT 5', rows: 5, truncated: { cap: 'statement', recorded: 1 } }],
        ['ready', {}],
        ['session_end', { reason: 'client_quit', bytesFromClient: 1, bytesToClient: 1, statements: 4, rowsRecorded: 4 }],
      ]),
    );
    expect(text).toBe(
      [
        '-- session s-1: alice (engineering) on orders with psql from 10.0.0.5:5000, 2026-01-01T00:00:00.000Z',
        '-- access grant g-1 (approved by bob; reason: "incident 7"; until 2026-01-01T01:00:00.000Z)',
        'orders=> select id, name',
        'orders-> from items;',
        ' id | name  ',
        '----+-------',
        '  1 | apple',
        ' 22 | ',
        '(2 rows)',
        '',
        'orders=> insert into t values (1) returning id;',
        ' id ',
        '----',
        '  1',
        '(1 row)',
        '',
        'INSERT 0 1',
        'NOTICE:  hello',
        'orders=> drop table t;',
        '-- jitgate: statement 3 held for approval',
        '-- jitgate: statement 3 refused after 12s (denied_by_approver)',
        'ERROR:  statement refused',
        'orders=> select * from big;',
        ' v ',
        '---',
        ' a',
        '-- jitgate: 4 more rows not recorded (limit per statement)',
        '(5 rows)',
        '',
        '-- session ended after 21s (client_quit): 4 statements, 4 rows recorded',
        '',
      ].join('\n'),
    );
  });

  it('prints multi-line and wide values the way psql does', () => {
    expect(
      alignedTable(
        [
          { name: 'm', type: 25 },
          { name: 'z', type: 25 },
        ],
        [['a\nbb', '日本']],
      ),
    ).toBe(' m  |  z   \n----+------\n a +| 日本\n bb | \n');
  });
});
