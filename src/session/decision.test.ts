/**
 * The gateway's decision order as a table: rules + identity + statement in, verdict out. The same
 * function decides on the data path (SessionService) and in `jitgate policy test`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Decision, Statement } from '../core/types.js';
import { buildCatalog } from '../masking/lineage.js';
import { MaskingSession } from '../masking/session.js';
import { rulesFor, type GuardrailRule } from '../policy/guardrails.js';
import type { ReviewRule } from '../policy/review-rules.js';
import { loadPostgresParser } from '../sql/postgres.js';
import { decideInOrder, type DecisionSteps, type Verdict } from './decision.js';

beforeAll(() => loadPostgresParser());

const guardrail = (
  name: string,
  deny: Partial<GuardrailRule['deny']>,
  scope: Partial<Pick<GuardrailRule, 'connections' | 'groups' | 'except'>> = {},
): GuardrailRule => ({
  name,
  connections: scope.connections ?? ['*'],
  groups: scope.groups ?? ['*'],
  except: scope.except ?? [],
  deny: { kinds: [], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: false, ...deny },
});

const review = (
  name: string,
  match: Partial<ReviewRule['match']>,
  scope: Partial<Pick<ReviewRule, 'connections' | 'groups' | 'except'>> = {},
): ReviewRule => ({
  name,
  connections: scope.connections ?? ['*'],
  groups: scope.groups ?? ['*'],
  except: scope.except ?? [],
  match: { kinds: [], writes: false, tables: [], functions: [], unboundedWrites: false, multiStatement: false, ...match },
  approval: { approvers: ['dba'], approvals: 2, timeoutMs: 600_000 },
});

const GUARDRAILS = [
  guardrail('no-ddl', { kinds: ['ddl', 'truncate'] }, { except: ['dba'] }),
  guardrail('careful', { unboundedWrites: true }, { connections: ['prod-*'] }),
  guardrail('redis-safe', { commands: ['flushall', 'config'] }),
];
const REVIEWS = [review('prod-writes', { writes: true }, { connections: ['prod-*'], except: ['dba'] })];

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
      ],
    },
  ],
  [],
  { pureFunctions: ['lower', 'count'] },
);

async function maskingFor(groups: readonly string[]): Promise<MaskingSession | undefined> {
  // Masking's own exemptions (rule `except`), decided as maskingFor does.
  if (groups.includes('dba') || groups.includes('ops')) return undefined;
  const m = new MaskingSession({
    rules: [{ name: 'pii', columns: [{ pattern: 'users.email', strategy: { kind: 'email' } }] }],
    detectors: [],
    hashKey: Buffer.alloc(32),
    loadCatalog: () => Promise.resolve(catalog),
  });
  await m.prepare();
  return m;
}

type Expected = ['allow'] | ['deny', string, string | undefined] | ['review', string, string];

async function verdictOf(connection: string, groups: string[], statement: Statement, extra: Partial<DecisionSteps> = {}): Promise<Verdict> {
  const masking = await maskingFor(groups);
  const steps: DecisionSteps = {
    ...(masking ? { masking } : {}),
    rules: {
      protocol: statement.source === 'command' ? 'redis' : 'postgres',
      guardrails: rulesFor(GUARDRAILS, connection, groups),
      reviews: rulesFor(REVIEWS, connection, groups),
    },
    ...extra,
  };
  return decideInOrder(steps, statement);
}

const sql = (text: string): Statement => ({ source: 'simple', text });
const redis = (...argv: string[]): Statement => ({ source: 'command', text: argv.join(' '), argv });

function summary(v: Verdict): Expected {
  if (v.kind === 'review') return ['review', v.match.rule.name, v.match.reasons[0]!];
  const d = v.decision;
  return d.effect === 'allow' ? ['allow'] : ['deny', d.reasons[0]!, d.rule];
}

describe('decideInOrder (connection, groups, statement -> verdict)', () => {
  const table: Array<[string, string[], Statement, Expected]> = [
    ['dev', ['eng'], sql('select id from users'), ['allow']],
    ['dev', ['eng'], sql('drop table users'), ['deny', 'kind_denied', 'no-ddl']],
    ['dev', ['dba'], sql('drop table users'), ['allow']],
    ['prod-eu', ['eng'], sql('delete from users'), ['deny', 'unbounded_write', 'careful']],
    // A guardrail refusal wins over a review: what is forbidden is not put to approvers.
    ['prod-eu', ['eng'], sql('truncate users'), ['deny', 'kind_denied', 'no-ddl']],
    ['prod-eu', ['eng'], sql('update users set id = 2 where id = 1'), ['review', 'prod-writes', 'write_statement']],
    ['dev', ['eng'], sql('update users set id = 2 where id = 1'), ['allow']],
    ['prod-eu', ['dba'], sql('update users set id = 2 where id = 1'), ['allow']],
    // Masking is decided before guardrails and reviews: a copy of masked data is refused as such.
    [
      'prod-eu',
      ['eng'],
      sql('insert into users (id, email) select id, email from users where id = 1'),
      ['deny', 'masking_copy', 'masking'],
    ],
    [
      'prod-eu',
      ['ops'],
      sql('insert into users (id, email) select id, email from users where id = 1'),
      ['review', 'prod-writes', 'write_statement'],
    ],
    ['dev', ['eng'], sql('do $$ begin perform 1; end $$'), ['deny', 'masking_unprovable', 'masking']],
    ['dev', ['eng'], redis('FLUSHALL'), ['deny', 'command_denied', 'redis-safe']],
    ['prod-eu', ['eng'], redis('SET', 'k', 'v'), ['review', 'prod-writes', 'write_statement']],
    ['dev', ['eng'], redis('GET', 'k'), ['allow']],
  ];
  it.each(table)('%s as %j: %o', async (connection, groups, statement, expected) => {
    expect(summary(await verdictOf(connection, groups, statement))).toEqual(expected);
  });

  it('refuses first when the grant has ended, then when the rate gate says so', async () => {
    const limited: Decision = { effect: 'deny', reasons: ['rate_limited'], message: 'slow down' };
    const ended = await verdictOf('dev', ['eng'], sql('drop table users'), { grantEnded: () => 'your access ended', gate: () => limited });
    expect(summary(ended)).toEqual(['deny', 'grant_ended', undefined]);
    const gated = await verdictOf('dev', ['eng'], sql('drop table users'), { grantEnded: () => undefined, gate: () => limited });
    expect(summary(gated)).toEqual(['deny', 'rate_limited', undefined]);
  });

  it('applies built-in protections after guardrails and before reviews', async () => {
    const protect = (s: Statement): Decision | undefined =>
      s.text.includes('pg_authid') ? { effect: 'deny', reasons: ['credential_protected'], message: 'no' } : undefined;
    const steps = (connection: string, groups: string[]): DecisionSteps => ({
      rules: {
        protocol: 'postgres',
        guardrails: rulesFor(GUARDRAILS, connection, groups),
        reviews: rulesFor(REVIEWS, connection, groups),
        protect,
      },
    });
    // No rule applies: the protection alone decides.
    expect(summary(await decideInOrder(steps('dev', ['dba']), sql('select * from pg_authid')))).toEqual([
      'deny',
      'credential_protected',
      undefined,
    ]);
    // A review rule would hold it: the protection refuses it first.
    expect(summary(await decideInOrder(steps('prod-eu', ['eng']), sql('update pg_authid set rolname = rolname where false')))).toEqual([
      'deny',
      'credential_protected',
      undefined,
    ]);
    // A guardrail's refusal is reported before the protection's.
    expect(summary(await decideInOrder(steps('dev', ['eng']), sql('drop table pg_authid')))).toEqual(['deny', 'kind_denied', 'no-ddl']);
  });

  it('never holds anything itself: a review is only named', async () => {
    const v = await verdictOf('prod-eu', ['eng'], sql('update users set id = 2 where id = 1'));
    expect(v.kind).toBe('review');
    if (v.kind === 'review') expect(v.match.rule.approval).toEqual({ approvers: ['dba'], approvals: 2, timeoutMs: 600_000 });
  });
});
