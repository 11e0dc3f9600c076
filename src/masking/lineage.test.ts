/**
 * Lineage and masking policy as tables: statement + catalog in, per-output-column masks (or a
 * refusal with its reason code) out. The catalog is what the gateway would read from the backend.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPostgresParser } from '../sql/postgres.js';
import { buildCatalog, isBlank, lineageOf } from './lineage.js';
import type { MaskingRule } from './policy.js';
import { MaskingSession } from './session.js';
import type { Decision } from '../core/types.js';

const catalog = buildCatalog(
  [
    {
      oid: 20001,
      schema: 'public',
      name: 'users',
      kind: 'r',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'email' },
        { attnum: 3, name: 'name' },
        { attnum: 4, name: 'ssn' },
      ],
    },
    {
      oid: 20002,
      schema: 'public',
      name: 'orders',
      kind: 'r',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'user_id' },
        { attnum: 3, name: 'card' },
      ],
    },
    {
      oid: 20003,
      schema: 'public',
      name: 'notes',
      kind: 'r',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'body' },
      ],
    },
    {
      oid: 20004,
      schema: 'public',
      name: 'contacts',
      kind: 'v',
      columns: [
        { attnum: 1, name: 'id' },
        { attnum: 2, name: 'contact' },
        { attnum: 3, name: 'shout' },
      ],
      definition: ' SELECT users.id, users.email AS contact, upper(users.name) AS shout FROM users;',
    },
  ],
  ['public.leak', 'leak'],
  {
    // What pg_proc calls immutable or stable (a sample); setval, set_config, pg_notify, advisory
    // locks and the like are volatile, so absent.
    pureFunctions: [
      'lower',
      'upper',
      'length',
      'count',
      'string_agg',
      'row_to_json',
      'to_jsonb',
      'array_agg',
      'unnest',
      'substr',
      'md5',
      'concat',
      'format',
      'xmlelement',
      'jsonb_to_recordset',
      'jsonb_each',
      'regexp_matches',
      'string_to_table',
      'generate_series',
    ],
    userOperators: ['~~~'],
  },
);

const rules: MaskingRule[] = [
  {
    name: 'pii',
    connections: ['*'],
    groups: ['*'],
    except: [],
    columns: [
      { pattern: 'users.email', strategy: { kind: 'email' } },
      { pattern: 'public.users.ssn', strategy: { kind: 'partial', keepLast: 4 } },
      { pattern: '*.card', strategy: { kind: 'card' } },
    ],
  },
];

async function ready(): Promise<MaskingSession> {
  const s = new MaskingSession({ rules, detectors: [], hashKey: Buffer.alloc(32), loadCatalog: async () => catalog, now: () => 0 });
  await s.prepare();
  return s;
}

/** Per output column: strategy/reason of its mask, '-' when clear. */
function masks(s: MaskingSession, sql: string): string[] | 'unknown' | null | undefined {
  const plan = s.plan(sql)?.[0];
  if (!plan) return undefined;
  if (plan.columns === 'unknown' || plan.columns === null) return plan.columns;
  return plan.columns.map((m) => (m ? `${m.strategy}/${m.reason}` : '-'));
}

beforeAll(async () => {
  await loadPostgresParser();
});

describe('lineage: output columns follow the data', () => {
  const cases: Array<[string, string[] | 'unknown']> = [
    ['select id, email, name from users', ['-', 'email/masked_column', '-']],
    ['select * from users', ['-', 'email/masked_column', '-', 'partial/masked_column']],
    ['select u.* from users u join orders o on o.user_id = u.id', ['-', 'email/masked_column', '-', 'partial/masked_column']],
    ['select email as innocent from public.users', ['email/masked_column']],
    ['select lower(email), length(name) from users', ['redact/masked_expression', '-']],
    ['select email::varchar(200) from users', ['email/masked_column']],
    ["select email || '' from users", ['redact/masked_expression']],
    ['select count(email), count(*) from users', ['-', '-']],
    ["select string_agg(email, ',') from users", ['redact/masked_expression']],
    ['select row_to_json(u) from users u', ['redact/masked_expression']],
    ['select u from users u', ['redact/masked_expression']],
    ['select to_jsonb(u.*) from users u', ['redact/masked_expression']],
    ['select x from (select email as x from users) s', ['email/masked_column']],
    ['with c as (select email e from users) select e from c', ['email/masked_column']],
    ['with c(a) as (select email from users) select a from c', ['email/masked_column']],
    ['select name from notes, users', ['-']],
    ['select body from notes union all select email from users', ['email/masked_column']],
    // Values of both branches share the column: all get the masked branch's strategy.
    ['select id from users union select card::int from orders', ['card/masked_column']],
    ['select contact, shout, id from contacts', ['email/masked_column', '-', '-']],
    ['select (select email from users limit 1)', ['email/masked_column']],
    ['select array(select email from users)', ['redact/masked_expression']],
    ['select exists(select email from users)', ['-']],
    ["select case when id > 1 then email else 'x' end from users", ['redact/masked_expression']],
    ['select e from users, lateral (select email as e) l', ['email/masked_column']],
    ['select x from users, unnest(array[email]) x', ['redact/masked_expression']],
    [
      'with recursive r(v, n) as (select email, 1 from users union all select v, n + 1 from r where n < 3) select v, n from r',
      ['email/masked_column', '-'],
    ],
    ['select * from pg_catalog.pg_stats', 'unknown'],
    ['select card from orders o natural join notes', ['card/masked_column']],
    ['select ssn from users', ['partial/masked_column']],
  ];
  it.each(cases)('%s', async (sql, expected) => {
    expect(masks(await ready(), sql)).toEqual(expected);
  });

  it('unknown relations are masked (fallback), system ones are not', async () => {
    const s = await ready();
    expect(s.plan('select * from newtable')![0]!.fallback?.reason).toBe('masking_unprovable');
    expect(s.plan('select * from pg_class')![0]!.fallback).toBeUndefined();
    expect(s.plan('select * from pg_stats')![0]!.fallback?.reason).toBe('masking_unprovable');
  });

  it('cursors and SQL prepared statements keep the lineage of their query', async () => {
    const s = await ready();
    expect(masks(s, 'declare c cursor for select lower(email), id from users')).toBeNull();
    expect(masks(s, 'fetch 10 from c')).toEqual(['redact/masked_expression', '-']);
    expect(masks(s, 'prepare p as select name, email from users')).toBeNull();
    expect(masks(s, 'execute p')).toEqual(['-', 'email/masked_column']);
    expect(masks(s, 'fetch 1 from other')).toBe('unknown');
  });

  it('RETURNING and COPY carry lineage; COPY options are read', async () => {
    const s = await ready();
    expect(masks(s, "update users set name = 'x' where id = 1 returning email, id")).toEqual(['email/masked_column', '-']);
    expect(masks(s, 'copy users (email, id) to stdout')).toEqual(['email/masked_column', '-']);
    const plan = s.plan("copy (select email from users) to stdout with (format csv, header, delimiter ';')")![0]!;
    expect(plan.copy).toMatchObject({ format: 'csv', delimiter: ';', header: true, null: '' });
    expect(plan.columns).toEqual([expect.objectContaining({ strategy: 'email' })]);
  });

  it('origins reported by RowDescription follow views to their base columns', async () => {
    const s = await ready();
    expect(s.originMask(20001, 2)?.strategy).toBe('email');
    expect(s.originMask(20001, 1)).toBeUndefined();
    expect(s.originMask(20004, 2)?.strategy).toBe('email');
    expect(s.originMask(20004, 3)).toBeUndefined();
    expect(s.originMask(99999, 1)?.reason).toBe('masking_unprovable');
    expect(s.originMask(1259, 1)).toBeUndefined();
  });
});

describe('statements that would carry masked data out are refused', () => {
  const refused: Array<[string, string]> = [
    ['insert into notes (body) select email from users', 'masking_copy'],
    ['insert into notes values (1, (select email from users limit 1))', 'masking_copy'],
    ['update notes set body = u.email from users u where u.id = notes.id', 'masking_copy'],
    ['update users set name = email', 'masking_copy'],
    ['create table stolen as select * from users', 'masking_copy'],
    ['select email into stolen from users', 'masking_copy'],
    ['create view v2 as select email from users', 'masking_copy'],
    ['create materialized view v3 as select lower(email) from users', 'masking_copy'],
    ["copy (select email from users) to '/tmp/x'", 'masking_copy'],
    ["copy users to program 'cat'", 'masking_copy'],
    ["select set_config('my.v', email, false) from users", 'masking_copy'],
    ["select pg_notify('ch', email) from users", 'masking_copy'],
    ['with x as (insert into notes(body) select email from users returning 1) select 1', 'masking_copy'],
    ['merge into notes n using users u on n.id = u.id when not matched then insert values (u.id, u.email)', 'masking_copy'],
    ['alter table users rename column email to e', 'masking_copy'],
    ['explain analyze insert into notes(body) select email from users', 'masking_copy'],
    ["do $$ begin raise notice '%', (select email from users limit 1); end $$", 'masking_unprovable'],
    ['select leak(id) from users', 'masking_unprovable'],
    ["select query_to_xml('select email from users', true, false, '')", 'masking_unprovable'],
    ['create function f() returns text language sql as $$ select email from users $$', 'masking_unprovable'],
    ['call p()', 'masking_unprovable'],
    ['selec broken', 'masking_unprovable'],
    ['insert into notes (body) select * from newtable', 'masking_copy'],
    // Functions with side effects (anything not known pure) must not receive masked data.
    ["select setval('s1', (select card::bigint from orders limit 1))", 'masking_copy'],
    ['select pg_advisory_lock(card::bigint) from orders', 'masking_copy'],
    ['select pg_replication_origin_create(email) from users', 'masking_copy'],
    ["select pg_create_physical_replication_slot('s' || ssn) from users", 'masking_copy'],
    ['select lo_create(length(email)::oid) from users', 'masking_copy'],
    ['select pg_catalog.nextval(email) from users', 'masking_copy'],
    ['select public.lower(email) from users', 'masking_copy'],
    ['select pg_sleep(length(email)) from users', 'masking_copy'],
    ['select * from users, pg_advisory_lock(card::bigint) l, orders', 'masking_copy'],
    ['select email ~~~ name from users', 'masking_unprovable'],
    // Table functions carry their inputs' masks into what is copied.
    [
      "insert into notes (body) select x from users c, xmltable('/x' passing xmlelement(name x, c.email) columns x text path '.') t",
      'masking_copy',
    ],
    ['create table stolen as select t.* from users u, jsonb_each(to_jsonb(u)) t', 'masking_copy'],
    ["insert into notes (body) select r[1] from users, regexp_matches(email, '(.*)') r", 'masking_copy'],
    ["insert into notes (body) select x from users, lateral string_to_table(email, '@') x", 'masking_copy'],
    ['insert into notes (body) select g::text from users, generate_series(1, length(email)) g', 'masking_copy'],
    ['insert into notes (body) select x from users, rows from (unnest(array[email]), generate_series(1, 2)) as t(x, n)', 'masking_copy'],
    // A parameter of EXECUTE can land anywhere the prepared statement puts it.
    ['execute p((select email from users limit 1))', 'masking_copy'],
  ];
  it.each(refused)('%s', async (sql, reason) => {
    const s = await ready();
    expect((await s.check({ source: 'simple', text: sql }))?.reasons).toEqual([reason]);
  });

  const allowed = [
    "insert into users (email) values ('new@example.com')",
    "update users set email = 'x@example.com' where id = 1",
    'delete from users where id = 1',
    "insert into notes (body) values ('hello')",
    'create table t (a int)',
    'select email from users',
    "update users set name = 'n' where email = 'a@b.c'",
    // Volatile functions are fine with data that is not masked.
    "select setval('s1', (select max(id) from users))",
    'select pg_advisory_lock(id) from users',
    "select nextval('s1'), random(), now()",
  ];
  it.each(allowed)('allows %s', async (sql) => {
    const s = await ready();
    expect(await s.check({ source: 'simple', text: sql })).toBeUndefined();
  });

  it('without a catalog nothing is allowed through: statements refused, plans absent (fail closed)', () => {
    const s = new MaskingSession({ rules, detectors: [], hashKey: Buffer.alloc(32), loadCatalog: () => Promise.reject(new Error('down')) });
    expect((s.check({ source: 'simple', text: 'select 1' }) as Decision | undefined)?.reasons).toEqual(['masking_unprovable']);
    expect(s.plan('select email from users')).toBeUndefined();
    return expect(s.prepare()).rejects.toThrow('down');
  });

  it('validates the catalog before statements whose plan may be stale', async () => {
    let loads = 0;
    let now = 0;
    const s = new MaskingSession({
      rules,
      detectors: [],
      hashKey: Buffer.alloc(32),
      loadCatalog: async () => (loads++, catalog),
      now: () => now,
    });
    await s.prepare();
    expect(loads).toBe(1);
    // Plain tables on a fresh catalog: decided at once.
    expect(s.check({ source: 'simple', text: 'select email from users' })).toBeUndefined();
    // A view's definition, or a relation the catalog does not know, may have changed since.
    await s.check({ source: 'simple', text: 'select * from contacts' });
    await s.check({ source: 'simple', text: 'select * from newtable' });
    expect(loads).toBe(3);
    // A result from a relation the catalog does not know, or a catalog over a second old.
    s.originMask(99999, 1);
    expect(s.check({ source: 'simple', text: 'select email from users' })).toBeInstanceOf(Promise);
    now = 5_000;
    expect(s.check({ source: 'simple', text: 'select id from users' })).toBeInstanceOf(Promise);
    expect(s.check({ source: 'simple', text: 'select 1' })).toBeUndefined();
  });

  it('the function call protocol is refused', async () => {
    const s = await ready();
    expect((s.check({ source: 'function-call', text: 'function call oid 1' }) as Decision | undefined)?.reasons).toEqual([
      'masking_unprovable',
    ]);
  });

  it('a table created earlier in the same string is known to the statements after it', async () => {
    const s = await ready();
    const plans = s.plan(
      'create temp table t (a int, card text); insert into t values (1, null); select * from t; select t.a, u.email from t, users u',
    )!;
    expect(plans[2]!.columns).toEqual([undefined, expect.objectContaining({ strategy: 'card', rule: 'pii' })]);
    expect(plans[3]!.columns).toEqual([undefined, expect.objectContaining({ strategy: 'email' })]);
    expect(s.plan('select * from t')![0]!.columns).toBe('unknown');
  });

  it('lineage reports sources for each statement of a multi-statement string', () => {
    const r = lineageOf('select 1; select email from users', catalog, { cursors: new Map(), prepared: new Map() });
    expect(r.ok && r.statements.length).toBe(2);
  });
});

describe('blank query strings', () => {
  it.each([
    ['', true],
    ['  ;\n', true],
    ['-- only a comment', true],
    ['/* a /* nested */ comment */ ;', true],
    ['/* unterminated', false],
    ["select '--'", false],
    ['select 1 -- trailing', false],
  ])('%j is blank: %s', (sql, blank) => {
    expect(isBlank(sql)).toBe(blank);
    if (blank) expect(lineageOf(sql, catalog, { cursors: new Map(), prepared: new Map() })).toEqual({ ok: true, statements: [] });
  });

  it('a window clause and XMLTABLE fields are read in full (errors there are scrubbed)', async () => {
    const s = await ready();
    expect(s.plan('create unique index on users ((email::int))')![0]!.touchesMasked).toBe(true);
    expect(s.plan('cluster users using users_pkey')![0]!.touchesMasked).toBe(true);
    expect(s.plan('create index on notes (body)')![0]!.touchesMasked).toBe(false);
    expect(s.plan('select row_number() over (partition by id order by email::int) from users')![0]!.touchesMasked).toBe(true);
    expect(
      s.plan("select 1 from users c, xmltable('/x' passing xmlelement(name x, c.email) columns x text path '.') t")![0]!.touchesMasked,
    ).toBe(true);
  });
});
