/**
 * `jitgate policy test`: what the gateway would do with one statement of one person on one
 * connection, without running it. The answer comes from the data path's own code: the decision
 * order (./decision.ts), the session's masking (whose catalog is read from the backend, which runs
 * nothing of the statement), guardrails, protections and review rules. A statement a review rule
 * matches is only reported as held: no review is created.
 *
 * Not covered, because they depend on a live session: the grant (the tool assumes an active one),
 * agents' statement rate, and state earlier statements of a session built up (prepared statements,
 * cursors, session settings).
 */
import type { GatewayConfig } from '../config/types.js';
import { isGroupName } from '../config/identities.js';
import type { Decision, Protocol, Statement, StatementMaskExplanation } from '../core/types.js';
import { maskingFor } from '../masking/policy.js';
import type { Logger } from '../obs/log.js';
import { rulesFor } from '../policy/guardrails.js';
import { protectPostgresStatement } from '../policy/pg-session-protection.js';
import { describeCommand } from '../policy/redis-commands.js';
import { RedisReplyMasker, redisMaskingPolicy, type RedisMaskingPolicy } from '../protocols/redis/masking.js';
import { RespError, splitInline } from '../protocols/redis/resp.js';
import { decideInOrder, type Verdict } from './decision.js';
import type { MaskingModule, PolicyMasker } from './masking-wire.js';

/** Where the groups the test used came from. */
export type GroupsSource = { kind: 'stated' } | { kind: 'sign-in'; at: number; issuer: string } | { kind: 'directory'; issuer: string };

export interface PolicyTestInput {
  connection: string;
  user: string;
  /** The person's groups; absent: those of their last sign-in (or the development directory). */
  groups?: readonly string[];
  /** SQL, or for Redis a command line split as redis-cli splits it. */
  statement: string;
}

export interface PolicyTestRefusal {
  /** Which part refuses: masking, a guardrail, or a protection every session gets. */
  by: 'masking' | 'guardrail' | 'protection';
  rule: string | null;
  reasons: string[];
  /** What the client would be told. */
  message: string;
}

export interface PolicyTestHold {
  rule: string;
  reasons: string[];
  /** What the rule found, for people. */
  what: string;
  /** Groups whose members may approve (never the author). */
  approvers: string[];
  approvals: number;
  timeoutMs: number;
  reason: string | null;
}

export interface PolicyTestMasking {
  /** Masking rules that apply to this person on this connection. */
  rules: string[];
  /** Content detectors that apply (a safety net, not masking: see `notes`). */
  detectors: string[];
  /** PostgreSQL: per statement of the text, each output column and the lineage behind its mask. */
  statements?: StatementMaskExplanation[];
  /** Redis: the keys the command touches that a rule masks. */
  keys?: Array<{ key: string; rule: string; strategy: string }>;
  /** Redis: hash fields (globs) whose values are masked in any hash. */
  fields?: Array<{ pattern: string; rule: string; strategy: string }>;
}

export interface PolicyTestResult {
  connection: string;
  protocol: Protocol;
  user: string;
  groups: string[];
  groupsFrom: GroupsSource;
  statement: string;
  /** Redis: the command's arguments as they would be sent. */
  argv?: string[];
  outcome: 'allowed' | 'refused' | 'held';
  refused?: PolicyTestRefusal;
  held?: PolicyTestHold;
  /** null: no masking rule or detector applies to this person on this connection. */
  masking: PolicyTestMasking | null;
  /** What the answer does not cover, and what people should know reading it. */
  notes: string[];
}

export class PolicyTestError extends Error {
  constructor(
    readonly code: 'unknown_connection' | 'unknown_groups' | 'bad_request',
    message: string,
  ) {
    super(message);
    this.name = 'PolicyTestError';
  }
}

export interface PolicyTesterOptions {
  config: Pick<GatewayConfig, 'connections' | 'guardrails' | 'reviews' | 'identities' | 'masking'>;
  /** The gateway's masking (undefined when no rule or detector is configured). */
  masking?: Pick<MaskingModule, 'scope' | 'policyMasker'>;
  /** The user's most recent sign-in on record (groups, when, which issuer). */
  lastSignIn: (user: string) => { groups: string[]; at: number; issuer: string } | undefined;
  log: Logger;
}

export const DETECTORS_NOTE =
  'content detectors are a safety net, not masking: they replace values they recognise in any text the client is sent, ' +
  'but a slice, an encoding or a computation of a value (substr, hex, GETRANGE, BITOP) is not recognised; ' +
  'protect sensitive columns and keys with a masking rule';

const MAX_STATEMENT_CHARS = 64 * 1024;

export class PolicyTester {
  constructor(private readonly o: PolicyTesterOptions) {}

  async test(input: PolicyTestInput): Promise<PolicyTestResult> {
    if (input.statement.trim() === '') throw new PolicyTestError('bad_request', 'give the statement to test');
    if (input.statement.length > MAX_STATEMENT_CHARS)
      throw new PolicyTestError('bad_request', `the statement is longer than ${MAX_STATEMENT_CHARS} characters`);
    const connection = this.o.config.connections.find((c) => c.name === input.connection);
    if (!connection) {
      const names = this.o.config.connections.map((c) => c.name);
      throw new PolicyTestError(
        'unknown_connection',
        `unknown connection ${JSON.stringify(input.connection)}${names.length ? ` (configured: ${names.join(', ')})` : ''}`,
      );
    }
    const protocol = connection.type;
    const { groups, groupsFrom } = this.groupsOf(input.user, input.groups);
    const statement = statementOf(protocol, input.statement);
    const notes: string[] = [
      "the grant is assumed active and agents' statement rates are not applied; the statement is judged as the first of a new session",
    ];

    // The masker a session would get; the Redis one decides in the same order as the SQL ones.
    const scope = this.o.masking?.scope({ connection: connection.name, groups });
    const masking = scope && this.o.masking!.policyMasker(protocol, scope);
    if (masking) {
      try {
        await masking.prepare();
      } catch (err) {
        // The session itself would not start: masking fails closed without its catalog.
        this.o.log.warn({ err, connection: connection.name }, 'policy test: masking cannot read the catalog');
        return {
          ...this.head(input, connection.name, protocol, groups, groupsFrom, statement),
          outcome: 'refused',
          refused: {
            by: 'masking',
            rule: 'masking',
            reasons: ['masking_unprovable'],
            message: "jitgate: masking cannot read the backend's catalog right now, so sessions on this connection are refused",
          },
          masking: null,
          notes,
        };
      }
    }
    const verdict: Verdict = await decideInOrder(
      {
        ...(masking ? { masking } : {}),
        rules: {
          protocol,
          guardrails: rulesFor(this.o.config.guardrails ?? [], connection.name, groups),
          reviews: rulesFor(this.o.config.reviews ?? [], connection.name, groups),
          ...(protocol === 'postgres'
            ? {
                // As the PostgreSQL listener protects a session; a per-session role is its own.
                protect: (s: Statement) =>
                  protectPostgresStatement(s, { ownBackendPid: 0, sharedRole: connection.credentials?.mode !== 'ephemeral' }),
              }
            : {}),
        },
      },
      statement,
    );
    const redisPolicy = protocol === 'redis' && scope ? redisMaskingPolicy(scope) : undefined;
    const decision: Decision | undefined = verdict.kind === 'decision' ? verdict.decision : undefined;

    const result: PolicyTestResult = {
      ...this.head(input, connection.name, protocol, groups, groupsFrom, statement),
      outcome: verdict.kind === 'review' ? 'held' : decision!.effect === 'allow' ? 'allowed' : 'refused',
      masking: null,
      notes,
    };
    if (verdict.kind === 'review') {
      const { rule, reasons, what } = verdict.match;
      result.held = {
        rule: rule.name,
        reasons: [...reasons],
        what,
        approvers: [...rule.approval.approvers],
        approvals: rule.approval.approvals,
        timeoutMs: rule.approval.timeoutMs,
        reason: rule.reason ?? null,
      };
    } else if (decision && decision.effect !== 'allow') {
      result.refused = refusalOf(decision);
    }
    result.masking = this.maskingOf(masking, redisPolicy, statement, maskingFor(this.o.config.masking, connection.name, groups), notes);
    return result;
  }

  private head(
    input: PolicyTestInput,
    connection: string,
    protocol: Protocol,
    groups: string[],
    groupsFrom: GroupsSource,
    statement: Statement,
  ) {
    return {
      connection,
      protocol,
      user: input.user,
      groups,
      groupsFrom,
      statement: input.statement,
      ...(statement.argv ? { argv: [...statement.argv] } : {}),
    };
  }

  private maskingOf(
    masking: PolicyMasker | undefined,
    redis: RedisMaskingPolicy | undefined,
    statement: Statement,
    applies: { rules: Array<{ name: string }>; detectors: string[] },
    notes: string[],
  ): PolicyTestMasking | null {
    if (redis) {
      const masker = new RedisReplyMasker(redis);
      const keys = describeCommand(statement.argv ?? []).keys.flatMap((key) => {
        const rule = masker.keyRule(key);
        return rule ? [{ key, rule: rule.rule, strategy: rule.strategy.kind }] : [];
      });
      if (redis.detectors.length > 0) notes.push(DETECTORS_NOTE);
      return {
        rules: [...new Set([...redis.keys, ...redis.fields].map((r) => r.rule))],
        detectors: [...redis.detectors],
        keys,
        fields: redis.fields.map((f) => ({ pattern: f.pattern, rule: f.rule, strategy: f.strategy.kind })),
      };
    }
    if (!masking) return null;
    const rules = applies.rules.map((r) => r.name);
    const detectors = [...applies.detectors];
    if (detectors.length > 0) notes.push(DETECTORS_NOTE);
    const statements = masking.explain?.(statement.text);
    if (!masking.explain) {
      notes.push(
        "MySQL result columns are masked by the table and column the server reports as each one's origin; expressions over masked columns are redacted",
      );
    } else if (!statements) {
      notes.push('the statement could not be parsed, so every column of its results would be masked');
    } else if (statements.some((s) => s.columns === 'unknown')) {
      notes.push(
        "lineage cannot predict some result's columns: each is masked by the origin the server reports, or like everything the statement reads",
      );
    }
    return { rules, detectors, ...(statements ? { statements } : {}) };
  }

  private groupsOf(user: string, stated: readonly string[] | undefined): { groups: string[]; groupsFrom: GroupsSource } {
    if (stated !== undefined) {
      const bad = stated.find((g) => !isGroupName(g));
      if (bad !== undefined) throw new PolicyTestError('bad_request', `${JSON.stringify(bad)} is not a group name`);
      return { groups: [...new Set(stated)], groupsFrom: { kind: 'stated' } };
    }
    const last = this.o.lastSignIn(user);
    if (last) return { groups: [...last.groups], groupsFrom: { kind: 'sign-in', at: last.at, issuer: last.issuer } };
    const listed = this.o.config.identities.devIdp?.users.find((u) => u.user === user);
    if (listed) return { groups: [...listed.groups], groupsFrom: { kind: 'directory', issuer: 'development identity provider' } };
    throw new PolicyTestError(
      'unknown_groups',
      `the gateway has no sign-in on record for ${JSON.stringify(user)}, so their groups (which scope masking, guardrails and reviews) are unknown: ` +
        'state them with --groups GROUP[,GROUP...] (API: "groups": [...])',
    );
  }
}

/** The statement as the data path would see it: SQL text, or a Redis command's arguments. */
function statementOf(protocol: Protocol, text: string): Statement {
  if (protocol !== 'redis') return { source: 'simple', text };
  let args: string[];
  try {
    // Bytes as latin1 characters in and out, as the relay reads inline commands.
    args = splitInline(Buffer.from(text, 'utf8').toString('latin1')).map((a) => Buffer.from(a, 'latin1').toString('utf8'));
  } catch (err) {
    if (err instanceof RespError) throw new PolicyTestError('bad_request', 'unbalanced quotes in the command');
    throw err;
  }
  if (args.length === 0) throw new PolicyTestError('bad_request', 'give the command to test');
  return { source: 'command', text: args.join(' '), argv: args };
}

function refusalOf(d: Decision): PolicyTestRefusal {
  const masking = d.reasons.some((r) => r.startsWith('masking_'));
  return {
    by: masking ? 'masking' : d.rule !== undefined ? 'guardrail' : 'protection',
    rule: d.rule ?? null,
    reasons: [...d.reasons],
    message: d.message ?? 'jitgate: statement refused',
  };
}
