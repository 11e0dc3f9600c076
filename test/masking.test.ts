/**
 * Masking end to end: psql and the pg driver through the gateway to a real PostgreSQL. Every
 * strategy and detector, every exit (text and binary rows, COPY text/CSV/binary, errors, notices,
 * prepared statements executed again, cursors, views, CTEs, set operations, whole-row and JSON
 * conversions), the record of what was masked, and exempt groups seeing clear values.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { settledSession } from './support/recording.js';
import { rawLogin } from './support/raw-client.js';
import { client, cstr, int16, int32, MASKING_SETUP, MASKING_YAML, msg, tokenWithGroups } from './support/masking.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(MASKING_SETUP);
  gw = await startTestGateway(server, { extraYaml: MASKING_YAML });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function rows(sql: string, values?: unknown[]): Promise<Array<Record<string, unknown>>> {
  const c = await client(gw);
  try {
    return (await c.query(sql, values)).rows;
  } finally {
    await c.end();
  }
}

async function psqlOut(input: string, args = ['-At']): Promise<{ stdout: string; stderr: string }> {
  const r = await psql(gw.dsn({}), await gw.token(), ['-v', 'ON_ERROR_STOP=0', ...args], { input });
  return r;
}

describe('masking strategies (text results, pg driver)', () => {
  it('masks each strategy by source column and leaves the rest', async () => {
    const r = await rows('select id, email, name, ssn, phone, card, age, secret from users order by id');
    expect(r[0]).toMatchObject({
      id: 1,
      email: 'a****@example.com',
      ssn: '*******6789',
      phone: '+X XXX-XXX-XX34',
      card: 'XXXX XXXX XXXX 1111',
      age: null,
      secret: null,
    });
    expect(r[0]!.name).toMatch(/^h:[0-9a-f]{16}$/);
    expect(r[1]!.name).not.toBe(r[0]!.name);
  });

  it('the keyed hash is deterministic: equal values hash equal, so joins and GROUP BY still work', async () => {
    const a = await rows('select name from users where id = 1');
    const b = await rows('select u.name from users u join users v on u.name = v.name where u.id = 1');
    expect(a[0]!.name).toBe(b[0]!.name);
  });

  it('follows the data, not the column name: aliases, casts, expressions, views, CTEs, subqueries, set operations', async () => {
    const r = (
      await rows(`
      select email as x,
             email::varchar as cast_email,
             lower(email) as lowered,
             (select c.contact from contacts c where c.id = u.id) as via_view,
             upper(bio) as upper_bio
      from users u where id = 1`)
    )[0]!;
    expect(r).toMatchObject({
      x: 'a****@example.com',
      cast_email: 'a****@example.com',
      lowered: '[redacted]',
      via_view: 'a****@example.com',
      upper_bio: 'LIKES TEA',
    });
    expect(await rows('with c as (select email e from only users) select e from c order by e')).toEqual([
      { e: 'a****@example.com' },
      { e: 'b**@example.com' },
    ]);
    expect(await rows('select contact from contacts where id = 2')).toEqual([{ contact: 'b**@example.com' }]);
    const u = await rows('select body as v from notes where id = 1 union all select email from users where id = 1');
    expect(u.map((x) => x.v)).toEqual(['h****', 'a****@example.com'].map((v) => (v === 'h****' ? expect.any(String) : v)));
    expect(u[1]!.v).toBe('a****@example.com');
  });

  it('whole rows and JSON conversions of a row are masked', async () => {
    const r = (
      await rows(
        'select row_to_json(u) as j, to_jsonb(u.*)::text as b, u::text as t, json_agg(u.email)::text as agg from users u where id = 1 group by u.*',
      )
    )[0]!;
    expect(JSON.stringify(r)).not.toContain('alice@example.com');
    expect(r.t).toBe('[redacted]');
    expect(r.j).toBeNull(); // json cannot hold the mask text
  });

  it('exempt groups see clear values', async () => {
    const c = await client(gw, await tokenWithGroups(gw, ['dba']), 'dora');
    try {
      const r = (await c.query('select email, ssn, bio from users where id = 2')).rows[0];
      expect(r).toEqual({ email: 'bob@example.com', ssn: '987-65-4321', bio: 'mail me at bob.personal@gmail.com' });
    } finally {
      await c.end();
    }
  });
});

describe('exits', () => {
  it('binary results are masked and re-encoded for their type', async () => {
    const c = await client(gw);
    try {
      // Binary result format for every column (pg's `binary` option).
      const r = await c.query({ text: 'select id, email, age, ssn from users where id = 1', binary: true } as pg.QueryConfig);
      const row = r.rows[0]!;
      expect(Buffer.isBuffer(row.email) ? row.email.toString() : row.email).toBe('a****@example.com');
      expect(row.age).toBeNull();
      expect(Buffer.isBuffer(row.ssn) ? row.ssn.toString() : row.ssn).toBe('*******6789');
    } finally {
      await c.end();
    }
  });

  it('prepared statements executed again without a new Describe are still masked', async () => {
    const c = await client(gw);
    try {
      const q = { name: 'by-id', text: 'select email, id from users where id = $1' };
      const masked = { 1: 'a****@example.com', 2: 'b**@example.com' } as const;
      for (const id of [1, 2, 1] as const) {
        const r = await c.query({ ...q, values: [id] });
        // The row comes back, masked (not refused, not empty).
        expect(r.rows).toEqual([{ email: masked[id], id }]);
      }
    } finally {
      await c.end();
    }
  });

  it('a statement prepared and described once, then only bound and executed, is masked (raw protocol)', async () => {
    const raw = await rawLogin({ host: gw.host, port: gw.port, user: 'alice', connection: 'app', token: await gw.token() });
    try {
      raw.socket.write(
        Buffer.concat([
          msg('P', cstr('s1'), cstr('select email, id from users where id = $1'), int16(0)),
          msg('D', Buffer.from('S'), cstr('s1')),
          msg('S'),
        ]),
      );
      await raw.until('Z');
      const seen: string[] = [];
      for (const [id, format] of [
        ['1', 0],
        ['2', 1],
        ['1', 1],
      ] as const) {
        // Bind (result format text or binary) + Execute + Sync: no Describe at all.
        const bind = msg('B', cstr(''), cstr('s1'), int16(0), int16(1), int32(id.length), Buffer.from(id), int16(1), int16(format));
        raw.socket.write(Buffer.concat([bind, msg('E', cstr(''), int32(0)), msg('S')]));
        const got = await raw.until('Z');
        expect(got.map((m) => m.type).filter((t) => t === 'T')).toEqual([]); // the injected Describe's reply is not passed on
        for (const m of got.filter((x) => x.type === 'D')) seen.push(m.body.toString('latin1'));
      }
      expect(seen).toHaveLength(3);
      expect(seen.join()).not.toMatch(/alice@|bob@/);
      expect(seen.join()).toContain('a****@example.com');
      expect(seen.join()).toContain('b**@example.com');
    } finally {
      raw.socket.destroy();
    }
  });

  it('cursors FETCHed later are masked, expressions included', async () => {
    const r = await psqlOut(
      'begin;\ndeclare c cursor for select lower(email), email, id from users order by id;\nfetch 2 from c;\ncommit;\n',
    );
    expect(r.stdout).not.toMatch(/alice@|bob@/);
    expect(r.stdout).toContain('[redacted]|a****@example.com|1');
  });

  it('SQL PREPARE / EXECUTE is masked', async () => {
    const r = await psqlOut('prepare p as select upper(email), email from users where id = 1;\nexecute p;\n');
    expect(r.stdout).toContain('[redacted]|a****@example.com');
  });

  it('COPY TO STDOUT in text, CSV (with options) and binary', async () => {
    const text = await psqlOut('copy (select id, email, bio from users order by id) to stdout;\n');
    expect(text.stdout).not.toMatch(/alice@|bob@example/);
    expect(text.stdout).toContain('1\ta****@example.com\tlikes tea');
    const csv = await psqlOut("copy users (id, email, ssn) to stdout with (format csv, header, delimiter ';', quote '''');\n");
    expect(csv.stdout.split('\n')[0]).toBe('id;email;ssn');
    expect(csv.stdout).toContain('1;a****@example.com;*******6789');
    const nul = await psqlOut("copy (select id, secret from users order by id) to stdout with (format csv, null 'NIL');\n");
    expect(nul.stdout).toContain('1,NIL');
    const bin = await psqlOut('copy (select id, email from users order by id) to stdout with (format binary);\n', ['-A']);
    expect(bin.stdout).not.toMatch(/alice@|bob@/);
    expect(bin.stdout).toContain('PGCOPY');
  });

  it('errors and notices that would echo masked values are scrubbed', async () => {
    const r = await psqlOut("select email::int from users;\ninsert into users (id, email) values (9, 'alice@example.com');\nselect 1;\n");
    expect(r.stderr).not.toContain('alice@example.com');
    // The whole message is hidden (the value could be quoted in any form); the SQLSTATE stays.
    expect(r.stderr).toContain('ERROR:  jitgate: message hidden, the statement reads masked data');
    expect(r.stderr).toMatch(/duplicate key value violates unique constraint "users_email_key"/);
    expect(r.stdout.trim()).toBe('1');
  });

  it('a notice raised by a trigger during a write to a masked table is hidden', async () => {
    const r = await psqlOut("begin;\nupdate users set bio = 'trigger-test' where id = 1;\nrollback;\n");
    expect(r.stderr).toContain('NOTICE:  jitgate: message hidden, the statement reads masked data');
    expect(r.stderr).not.toContain('alice@example.com');
  });

  const DETECTED: Array<[string, string]> = [
    ['email', 'write to jane.doe@corp.example'],
    ['card', 'card 4111-1111-1111-1111 on file'],
    ['iban', 'pay GB82 WEST 1234 5698 7654 32 now'],
    ['ssn', 'ssn 123-45-6789'],
    ['phone', 'call +1 415-555-0134'],
    ['ip', 'from 192.168.10.20 and 2001:db8::1'],
    ['jwt', 'bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
    ['cloud_key', 'aws AKIAIOSFODNN7EXAMPLE'],
    ['private_key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----'],
  ];
  it.each(DETECTED)('detector %s masks what it finds in a clear value', async (detector, text) => {
    const r = (await rows('select $1::text as v', [text]))[0]!;
    expect(r.v).toContain(`[${detector}]`);
  });

  it('content detectors mask findings in clear columns, errors and notifications', async () => {
    const r = await rows('select bio from users where id = 2');
    expect(r[0]!.bio).toBe('mail me at [email]');
    const n = await rows('select body from notes where id = 2');
    expect(n[0]!.body).toBe('server [ip] key [cloud_key]');
    // Types that cannot hold the replacement text become NULL; dates and numbers are not free text.
    const t = (await rows("select '10.1.2.3'::inet as ip, timestamp '2026-11-28 04:21:34' as at, 4111111111111111::int8 as n"))[0]!;
    expect(t.ip).toBeNull();
    expect(t.at).toBeInstanceOf(Date);
    expect(t.n).toBe('4111111111111111');
    // bio is not a masked column, but the address in it is found by the email detector.
    const e = await psqlOut('select bio::int from users where id = 2;\n');
    expect(e.stderr).toContain('invalid input syntax for type integer: "mail me at [email]"');
    expect(e.stderr).not.toContain('bob.personal@gmail.com');
    const c = await client(gw);
    try {
      const got = new Promise<string>((resolve) => c.on('notification', (m) => resolve(m.payload ?? '')));
      await c.query('listen ch');
      await c.query("notify ch, 'reach me at carol@example.org'");
      expect(await got).toBe('reach me at [email]');
    } finally {
      await c.end();
    }
  });

  it('a masked result says so once, and the record names the masked columns and rules', async () => {
    const r = await psqlOut('select id, email from users where id = 1;\nselect id, email from users where id = 2;\n');
    expect(r.stderr.match(/NOTICE: +jitgate: masked columns: email \(rule pii, masked_column\)/g)?.length).toBe(1);
  });
});

describe('decisions on the record', () => {
  it('the session recording names masked columns with rule and reason, holds only masked values, and keeps refusals', async () => {
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'alice',
      database: 'app',
      password: await gw.token(),
      application_name: 'mask-record',
    });
    await c.connect();
    try {
      await c.query('select id, email, lower(email) as low from users order by id');
      await c.query('insert into notes select id, email from users').catch(() => undefined);
    } finally {
      await c.end();
    }
    const s = await settledSession(gw, { applicationName: 'mask-record' });
    const read = await gw.gateway.recording.read(s.id);
    const events = read!.result.events;
    const text = JSON.stringify(events);
    expect(text).not.toContain('alice@example.com');
    const result = events.find((e) => Array.isArray((e.data as { masked?: unknown }).masked));
    expect((result!.data as { masked: unknown }).masked).toEqual([
      { column: 1, rule: 'pii', reason: 'masked_column' },
      { column: 2, rule: 'pii', reason: 'masked_expression' },
    ]);
    const refused = events.find((e) => e.type === 'statement' && (e.data as { decision?: { effect: string } }).decision?.effect === 'deny');
    expect(refused!.data).toMatchObject({ decision: { effect: 'deny', reasons: ['masking_copy'], rule: 'masking' } });
  });
});
