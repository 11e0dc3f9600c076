/**
 * Reviewing policies end to end, with a real PostgreSQL behind the gateway: `jitgate policy test`
 * (CLI and API) reports what the data path would do with a statement without running it — a
 * refused DROP naming its guardrail, a held UPDATE with its approvers, the masked columns of a
 * SELECT with rule, reason and lineage, a masking_copy refusal — and `jitgate masking report`
 * counts what masking did in a real psql session, from its recording.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import type { MaskingReport } from '../src/recording/masking-report.js';
import type { PolicyTestResult } from '../src/session/explain.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { startAccessGateway, type AccessGateway, type Person } from './support/access.js';
import { MASKING_SETUP, MASKING_YAML } from './support/masking.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { cli, settledSession } from './support/recording.js';

let server: PgServer;
let env: AccessGateway;
let work: string;

const RULES_YAML = `
guardrails:
  - name: no-ddl
    connections: [app]
    except: [dba]
    deny: { kinds: [ddl, truncate] }
    reason: schema changes go through migrations
reviews:
  - name: app-updates
    connections: [app]
    except: [dba]
    match: { kinds: [update] }
    approval: { approvers: [approvers, dba], approvals: 2, timeout: 10m }
    reason: updates are reviewed
${MASKING_YAML}`;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(MASKING_SETUP);
  env = await startAccessGateway(server, { clock: new ManualClock(Date.now()), extraYaml: RULES_YAML });
  work = mkdtempSync(join(tmpdir(), 'jitgate-policy-review-'));
});

afterAll(async () => {
  await env?.gw.close();
  await server?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function as(who: Person): NodeJS.ProcessEnv {
  return { JITGATE_URL: env.gw.httpUrl, JITGATE_TOKEN: env.bearer(who), XDG_CONFIG_HOME: join(work, 'config') };
}

async function policyTest(statement: string, groups = 'engineering', who: Person = 'dave') {
  const text = await cli(['policy', 'test', '--connection', 'app', '--user', 'alice', '--groups', groups, statement], as(who));
  const json = await cli(['policy', 'test', '--connection', 'app', '--user', 'alice', '--groups', groups, '--json', statement], as(who));
  expect(text.code, text.err).toBe(0);
  expect(json.code, json.err).toBe(0);
  return { text: text.out, result: JSON.parse(json.out) as PolicyTestResult };
}

describe('jitgate policy test', () => {
  it('reports a refused DROP with the guardrail, its reason code and the message the client would get; nothing runs', async () => {
    const { text, result } = await policyTest('DROP TABLE users');
    expect(result.outcome).toBe('refused');
    expect(result.refused).toMatchObject({ by: 'guardrail', rule: 'no-ddl', reasons: ['kind_denied'] });
    expect(result.refused!.message).toMatch(/guardrail "no-ddl".*schema changes go through migrations/);
    expect(text).toContain('REFUSED by guardrail "no-ddl" (kind_denied)');
    expect(text).toContain('the client would get: jitgate: statement refused by guardrail "no-ddl"');
    expect(result.groupsFrom).toEqual({ kind: 'stated' });
    // The table is still there, and an exempt group would be allowed.
    expect((await server.query('select count(*)::int as n from only users')).rows[0]).toEqual({ n: 2 });
    expect((await policyTest('DROP TABLE users', 'dba')).result.outcome).toBe('allowed');
  });

  it('reports a held UPDATE with the rule, approvers and approvals needed, and creates no review', async () => {
    const reviews = () =>
      (env.gw.gateway.store as SqliteStore).database.prepare('select count(*) as n from statement_reviews').get() as { n: number };
    const before = reviews().n;
    const { text, result } = await policyTest("update users set bio = 'x' where id = 1");
    expect(result.outcome).toBe('held');
    expect(result.held).toMatchObject({
      rule: 'app-updates',
      reasons: ['kind_matched'],
      approvers: ['approvers', 'dba'],
      approvals: 2,
      timeoutMs: 600_000,
      reason: 'updates are reviewed',
    });
    expect(text).toContain('HELD for review by rule "app-updates" (kind_matched)');
    expect(text).toContain('approvers: members of approvers, dba; 2 approvals needed');
    expect(reviews().n).toBe(before);
    expect((await server.query('select bio from users where id = 1')).rows[0]).toEqual({ bio: 'likes tea' });
  });

  it('names the masked output columns of a SELECT with rule, reason and source columns', async () => {
    const { text, result } = await policyTest(
      'select id, email, lower(card) as c, shout from users u join contacts k using (id) where ssn is not null',
    );
    expect(result.outcome).toBe('allowed');
    expect(result.masking?.rules).toEqual(['pii']);
    const columns = result.masking!.statements![0]!.columns;
    expect(columns).toEqual([
      expect.objectContaining({ name: 'id', maskedBy: [] }),
      expect.objectContaining({
        name: 'email',
        sources: ['public.users.email'],
        mask: { rule: 'pii', reason: 'masked_column', strategy: 'email' },
      }),
      expect.objectContaining({ name: 'c', derived: true, mask: { rule: 'pii', reason: 'masked_expression', strategy: 'redact' } }),
      expect.objectContaining({ name: 'shout', maskedBy: [] }),
    ]);
    expect(result.masking!.statements![0]!.reads).toEqual(expect.arrayContaining([{ source: 'public.users.ssn', rule: 'pii' }]));
    expect(text).toMatch(/2\. email: MASKED by rule "pii" \(masked_column, email\); from public\.users\.email/);
    expect(text).toMatch(/3\. c: MASKED by rule "pii" \(masked_expression, redact\); computed from public\.users\.card/);
    expect(text).toMatch(/1\. id: clear/);
    // Detectors are on for this connection: the answer says they are a safety net, not masking.
    expect(text).toMatch(/content detectors are a safety net, not masking/);
  });

  it('reports a copy of masked data as a masking_copy refusal', async () => {
    const { text, result } = await policyTest('insert into notes (id, body) select id, email from users');
    expect(result.outcome).toBe('refused');
    expect(result.refused).toMatchObject({ by: 'masking', rule: 'masking', reasons: ['masking_copy'] });
    expect(text).toMatch(/REFUSED by masking \(masking_copy\)/);
    expect((await server.query('select count(*)::int as n from notes')).rows[0]).toEqual({ n: 2 });
  });

  it('takes the groups of the last sign-in, and otherwise asks for --groups', async () => {
    const unknown = await cli(['policy', 'test', '--connection', 'app', '--user', 'nobody', 'select 1'], as('dave'));
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no sign-in on record for "nobody".*state them with --groups/);
    // A sign-in on record: its groups are used, and the answer says where they came from.
    env.gw.gateway.identity.sessions.issue({ issuer: 'corp', subject: 'erin-1', user: 'erin', groups: ['dba', 'oncall'] });
    const signedIn = await cli(['policy', 'test', '--connection', 'app', '--user', 'erin', 'DROP TABLE users'], as('dave'));
    expect(signedIn.code, signedIn.err).toBe(0);
    expect(signedIn.out).toMatch(/groups dba,oncall \(from their sign-in at .* via corp\)/);
    expect(signedIn.out).toContain('ALLOWED');
    const none = await cli(
      ['policy', 'test', '--connection', 'app', '--user', 'nobody', '--no-groups', '--json', 'DROP TABLE users'],
      as('dave'),
    );
    expect(none.code, none.err).toBe(0);
    expect(JSON.parse(none.out)).toMatchObject({
      groups: [],
      groupsFrom: { kind: 'stated' },
      outcome: 'refused',
      refused: { rule: 'no-ddl' },
    });
  });

  it('is for admins, approvers and auditors; unknown connections are named', async () => {
    const body = { connection: 'app', user: 'alice', groups: ['engineering'], statement: 'select 1' };
    expect((await env.api('carol', 'POST', '/api/policy/test', body)).status).toBe(200);
    expect((await env.api('mallory', 'POST', '/api/policy/test', body)).status).toBe(403);
    const missing = await env.api<{ message: string }>('dave', 'POST', '/api/policy/test', { ...body, connection: 'nope' });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toMatch(/unknown connection "nope" \(configured: app,/);
  });
});

describe('jitgate masking report', () => {
  it('counts masked results and rows per rule and column, masking refusals, and detector-only columns, from a real psql session', async () => {
    const r = await psql(env.gw.dsn({}), await env.gw.token(), ['-v', 'ON_ERROR_STOP=0', '-At'], {
      input: [
        'select id, email from users order by id;',
        'select id, email from users where id = 1;',
        'insert into notes (id, body) select id, email from users where id = 1;',
        'insert into notes (id, body) select id, email from users where id = 2;',
        'select body from notes where id = 2;',
        '',
      ].join('\n'),
    });
    expect(r.stdout).toContain('a****@example.com');
    // Two rows of users and one of users_archive (it inherits users), then one row.
    await settledSession(env.gw, { user: 'alice' });

    const run = await cli(['masking', 'report', '--since', '1h', '--json'], as('dave'));
    expect(run.code, run.err).toBe(0);
    const report = JSON.parse(run.out) as MaskingReport;
    expect(report.columns).toEqual(
      expect.arrayContaining([{ connection: 'app', rule: 'pii', reason: 'masked_column', column: 'email', results: 2, rows: 4 }]),
    );
    // The two refused INSERTs differ only in a literal: one statement shape, counted twice.
    expect(report.refusals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          connection: 'app',
          reason: 'masking_copy',
          statement: 'insert into notes (id, body) select id, email from users where id = ?',
          count: 2,
        }),
      ]),
    );
    expect(report.detectorOnly).toEqual(
      expect.arrayContaining([expect.objectContaining({ connection: 'app', column: 'body', detectors: ['cloud_key', 'ip'], rows: 1 })]),
    );

    const text = await cli(['masking', 'report', '--since', '1h'], as('dave'));
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/pii\s+masked_column\s+app\s+email\s+2\s+4/);
    expect(text.out).toMatch(/2\s+masking_copy\s+app\s+.*insert into notes \(id, body\) select id, email from users where id = \?/);
    expect(text.out).toMatch(/content detectors are a safety net, not masking/);
    // Auditors and admins only.
    expect((await env.api('mallory', 'GET', '/api/masking/report')).status).toBe(403);
  });
});
