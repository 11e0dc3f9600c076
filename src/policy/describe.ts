/**
 * The rules that govern one connection, in words people read: who gets access and how, what is
 * refused, what is held for approval, what is masked. For the console's Connections page and any
 * other reader that should not have to know the configuration's shape. Pure.
 */
import { globMatch, type MaskingConfig, type MaskingColumnRule } from '../masking/policy.js';
import type { MaskStrategy } from '../masking/strategies.js';
import { policyCoversConnection, type PolicyRule } from './access.js';
import type { GuardrailRule, RuleScope } from './guardrails.js';
import type { ReviewRule } from './review-rules.js';

export interface RuleInWords {
  /** The rule's name in the configuration. */
  name: string;
  /** Who it applies to: "everyone", "groups dba, sre", "everyone except admins". */
  who: string;
  /** What it does, one phrase per criterion. */
  what: string[];
  /** The rule's own explanation, if it has one. */
  reason: string | null;
  /** Whether it applies to the reader's sessions on this connection. */
  appliesToYou: boolean;
}

export interface ConnectionRules {
  policies: RuleInWords[];
  guardrails: RuleInWords[];
  reviews: RuleInWords[];
  masking: RuleInWords[];
}

export interface RuleSources {
  policies: readonly PolicyRule[];
  guardrails?: readonly GuardrailRule[] | undefined;
  reviews?: readonly ReviewRule[] | undefined;
  masking?: MaskingConfig | undefined;
}

/** Every rule of `sources` that covers `connection`, described, marked for a reader in `groups`. */
export function describeConnectionRules(
  sources: RuleSources,
  connection: string,
  reader: { user: string; groups: readonly string[] },
): ConnectionRules {
  const covers = (r: { connections: string[] }) => r.connections.some((c) => globMatch(c, connection));
  const scoped = (r: RuleScope) => ({ who: whoText(r.groups, [], r.except), appliesToYou: inScope(r.groups, [], r.except, reader) });
  return {
    policies: sources.policies
      .filter((p) => p.access && policyCoversConnection(p, connection))
      .map((p) => ({
        name: p.name,
        who: whoText(p.groups, p.users, []),
        what: accessWords(p),
        reason: null,
        appliesToYou: inScope(p.groups, p.users, [], reader),
      })),
    guardrails: (sources.guardrails ?? [])
      .filter(covers)
      .map((g) => ({ name: g.name, ...scoped(g), what: refusesWords(g.deny), reason: g.reason ?? null })),
    reviews: (sources.reviews ?? [])
      .filter(covers)
      .map((r) => ({ name: r.name, ...scoped(r), what: holdsWords(r), reason: r.reason ?? null })),
    masking: [
      ...(sources.masking?.rules ?? []).filter(covers).map((m) => ({
        name: m.name,
        ...scoped(m),
        what: [
          ...m.columns.map((c) => maskWords('column', c)),
          ...(m.keys ?? []).map((c) => maskWords('key', c)),
          ...(m.fields ?? []).map((c) => maskWords('hash field', c)),
        ],
        reason: null,
      })),
      ...(sources.masking?.detectors ?? []).filter(covers).map((d) => ({
        name: 'content detectors',
        who: whoText(['*'], [], d.except),
        what: [`values that look like ${d.detectors.map(detectorName).join(', ')} are masked wherever they appear`],
        reason: null,
        appliesToYou: inScope(['*'], [], d.except, reader),
      })),
    ],
  };
}

function inScope(
  groups: readonly string[],
  users: readonly string[],
  except: readonly string[],
  reader: { user: string; groups: readonly string[] },
): boolean {
  if (except.some((g) => reader.groups.includes(g))) return false;
  return groups.includes('*') || groups.some((g) => reader.groups.includes(g)) || users.includes(reader.user);
}

function whoText(groups: readonly string[], users: readonly string[], except: readonly string[]): string {
  const parts: string[] = [];
  if (groups.includes('*')) parts.push('everyone');
  else if (groups.length > 0) parts.push(`${groups.length === 1 ? 'group' : 'groups'} ${groups.join(', ')}`);
  if (users.length > 0) parts.push(`${users.length === 1 ? 'user' : 'users'} ${users.join(', ')}`);
  const base = parts.length > 0 ? parts.join(' and ') : 'nobody';
  return except.length > 0 ? `${base} except ${except.join(', ')}` : base;
}

function durationWords(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return plural(ms / 86_400_000, 'day');
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return plural(ms / 3_600_000, 'hour');
  if (ms >= 60_000 && ms % 60_000 === 0) return plural(ms / 60_000, 'minute');
  return plural(Math.round(ms / 1000), 'second');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function accessWords(p: PolicyRule): string[] {
  const a = p.access!;
  const out = [
    a.approval === 'auto'
      ? 'access is granted at once, without an approver'
      : `access needs ${plural(a.approvals, 'approval')} from ${a.approvers.join(', ')}; a request waits ${durationWords(a.pendingExpiryMs)} at most`,
    `grants last up to ${durationWords(a.maxDurationMs)}`,
    a.requireReason ? 'a request must say why' : 'a reason is optional',
  ];
  if (a.breakGlass) out.push('break-glass (self-approved emergency access, with a reason) is allowed');
  if (a.escalate) out.push(`after ${durationWords(a.escalate.afterMs)} undecided, ${a.escalate.to.join(', ')} may approve too`);
  return out;
}

function criteriaWords(c: Partial<GuardrailRule['deny'] & ReviewRule['match']>): string[] {
  const out: string[] = [];
  if (c.readOnly) out.push('anything but reads (the connection is read-only)');
  if (c.writes) out.push('any statement that changes data, schema, privileges or settings');
  if (c.kinds?.length) out.push(`${c.kinds.map((k) => k.toUpperCase()).join(', ')} statements`);
  if (c.tables?.length) out.push(`statements on ${c.tables.join(', ')}`);
  if (c.functions?.length) out.push(`calls of ${c.functions.join(', ')}`);
  if (c.unboundedWrites) out.push('UPDATE or DELETE without a WHERE clause');
  if (c.multiStatement) out.push('several statements in one query');
  if (c.settings?.length) out.push(`changes to the settings ${c.settings.join(', ')}`);
  if (c.copy?.length) out.push(`COPY to or from ${c.copy.join(', ')}`);
  if (c.commands?.length) out.push(`the commands ${c.commands.map((x) => x.toUpperCase()).join(', ')}`);
  if (c.categories?.length) out.push(`commands in the categories ${c.categories.join(', ')}`);
  if (c.keys?.length) out.push(`commands on keys ${c.keys.join(', ')}`);
  return out;
}

function refusesWords(deny: GuardrailRule['deny']): string[] {
  const what = criteriaWords(deny);
  return what.length === 0 ? ['statements that cannot be parsed'] : what.map((w) => `refuses ${w}`);
}

function holdsWords(r: ReviewRule): string[] {
  const a = r.approval;
  return [
    ...criteriaWords(r.match).map((w) => `holds ${w}`),
    `until ${plural(a.approvals, 'approval')} from ${a.approvers.join(', ')} (refused if undecided after ${durationWords(a.timeoutMs)})`,
  ];
}

function strategyWords(s: MaskStrategy): string {
  switch (s.kind) {
    case 'redact':
      return 'hidden';
    case 'partial':
      return `all but the last ${s.keepLast} characters hidden`;
    case 'hash':
      return 'replaced by a stable hash';
    case 'null':
      return 'replaced by NULL';
    case 'email':
      return 'shown as a masked email address';
    case 'phone':
      return 'shown as a masked phone number';
    case 'card':
      return 'shown as a masked card number';
  }
}

function maskWords(what: string, c: MaskingColumnRule): string {
  return `${what} ${c.pattern}: ${strategyWords(c.strategy)}`;
}

function detectorName(d: string): string {
  return d.replace(/_/g, ' ');
}
