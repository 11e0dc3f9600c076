/** MaskingSession.explain: each output column with the lineage behind its mask (for `jitgate policy test`). */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPostgresParser } from '../sql/postgres.js';
import { buildCatalog } from './lineage.js';
import { MaskingSession } from './session.js';

beforeAll(() => loadPostgresParser());

const catalog = buildCatalog(
  [
    {
      oid: 20001,
      schema: 'acc',
      name: 'customers',
      kind: 'r',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'email' },
        { attnum: 3, name: 'card' },
      ],
    },
    {
      oid: 20002,
      schema: 'acc',
      name: 'contacts',
      kind: 'v',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'mail' },
      ],
      definition: ' SELECT customers.id, customers.email AS mail FROM acc.customers;',
    },
  ],
  [],
  { pureFunctions: ['lower', 'count'] },
);

async function session(): Promise<MaskingSession> {
  const m = new MaskingSession({
    rules: [
      {
        name: 'pii',
        columns: [
          { pattern: 'customers.email', strategy: { kind: 'email' } },
          { pattern: '*.card', strategy: { kind: 'card' } },
        ],
      },
    ],
    detectors: [],
    hashKey: Buffer.alloc(32),
    loadCatalog: () => Promise.resolve(catalog),
  });
  await m.prepare();
  return m;
}

describe('MaskingSession.explain', () => {
  it('names each output column, its sources and the rule and reason of its mask', async () => {
    const [s] = (await session()).explain('select id, email, lower(card) as c from acc.customers where card is not null')!;
    expect(s!.columns).toEqual([
      { index: 0, name: 'id', sources: ['acc.customers.id'], derived: false, maskedBy: [] },
      {
        index: 1,
        name: 'email',
        sources: ['acc.customers.email'],
        derived: false,
        mask: { rule: 'pii', reason: 'masked_column', strategy: 'email' },
        maskedBy: [{ source: 'acc.customers.email', rule: 'pii' }],
      },
      {
        index: 2,
        name: 'c',
        sources: ['acc.customers.card'],
        derived: true,
        mask: { rule: 'pii', reason: 'masked_expression', strategy: 'redact' },
        maskedBy: [{ source: 'acc.customers.card', rule: 'pii' }],
      },
    ]);
    expect(s!.reads).toEqual(expect.arrayContaining([{ source: 'acc.customers.card', rule: 'pii' }]));
  });

  it('follows a view to the column it shows', async () => {
    const [s] = (await session()).explain('select mail from acc.contacts')!;
    expect(s!.columns).toEqual([
      // The path: the view's column, then the table column it shows.
      {
        index: 0,
        name: 'mail',
        sources: ['acc.contacts.mail', 'acc.customers.email'],
        derived: false,
        mask: { rule: 'pii', reason: 'masked_column', strategy: 'email' },
        maskedBy: [{ source: 'acc.customers.email', rule: 'pii' }],
      },
    ]);
  });

  it('says nothing is returned for a statement without rows, and nothing for what does not parse', async () => {
    const m = await session();
    expect(m.explain('update acc.customers set id = id where id = 1')![0]!.columns).toBeNull();
    expect(m.explain('selec nothing')).toBeUndefined();
  });
});
