/**
 * The `reviews:` section: statements held in the session until people approve them (see
 * policy/review-rules.ts for matching, review/service.ts for the workflow).
 *
 *   reviews:
 *     - name: prod-writes               # required, shown to the user and the approvers
 *       connections: ["prod-*"]         # names or globs (default: every connection)
 *       groups: [engineering]           # whose statements (default "*": everyone)
 *       except: [dba]                   # exempt groups
 *       match:                          # any one criterion holds the statement
 *         writes: true                  # anything not read-only (writes, DDL, grants, settings)
 *         kinds: [ddl, truncate]
 *         tables: [payroll, "hr.*"]
 *         functions: [pg_terminate_backend]
 *         unboundedWrites: true         # UPDATE/DELETE without WHERE
 *         multiStatement: true
 *       approval:
 *         approvers: [dba]              # required: groups whose members approve (never the author)
 *         approvals: 1                  # distinct approvals needed (default 1)
 *         timeout: 10m                  # undecided after this long: refused (default 10m)
 *       reason: "production writes are reviewed"   # optional, shown with the hold
 */
import { z } from 'zod';
import type { ReviewRule } from '../policy/review-rules.js';
import { kindList, stringList } from './guardrails.js';
import { bool, duration, leaf, text } from './leaf.js';

export const REVIEW_DEFAULTS = { approvals: 1, timeoutMs: 10 * 60_000 };

const approvals = () =>
  leaf('an integer from 1 to 10', (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 10 ? v : undefined));

const approverGroups = () =>
  leaf('a non-empty list of approver group names', (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0) return undefined;
    if (!list.every((x) => typeof x === 'string' && x.trim() !== '')) return undefined;
    return [...new Set(list as string[])];
  });

const matchSchema = z
  .strictObject({
    writes: bool().optional(),
    kinds: kindList().optional(),
    tables: stringList('table names or globs').optional(),
    functions: stringList('function names or globs').optional(),
    unboundedWrites: bool().optional(),
    multiStatement: bool().optional(),
  })
  .superRefine((m, ctx) => {
    const any = m.writes || m.unboundedWrites || m.multiStatement || m.kinds?.length || m.tables?.length || m.functions?.length;
    if (!any) {
      ctx.addIssue({
        code: 'custom',
        message: 'a review rule must match something: writes, kinds, tables, functions, unboundedWrites or multiStatement',
      });
    }
  });

export const reviewSchema = z.strictObject({
  name: text('a rule name'),
  connections: stringList('connection names or globs').optional(),
  groups: stringList('group names').optional(),
  except: stringList('group names').optional(),
  match: matchSchema,
  approval: z.strictObject({
    approvers: approverGroups(),
    approvals: approvals().optional(),
    timeout: duration(1_000, 7 * 86_400_000).optional(),
    escalate: z.strictObject({ after: duration(1_000, 7 * 86_400_000), to: approverGroups() }).optional(),
  }),
  reason: text('a reason').optional(),
});

export type ReviewFile = z.output<typeof reviewSchema>;

export function buildReview(r: ReviewFile): ReviewRule {
  return {
    name: r.name,
    connections: r.connections ?? ['*'],
    groups: r.groups ?? ['*'],
    except: r.except ?? [],
    match: {
      kinds: r.match.kinds ?? [],
      writes: r.match.writes ?? false,
      tables: r.match.tables ?? [],
      functions: r.match.functions ?? [],
      unboundedWrites: r.match.unboundedWrites ?? false,
      multiStatement: r.match.multiStatement ?? false,
    },
    approval: {
      approvers: r.approval.approvers,
      approvals: r.approval.approvals ?? REVIEW_DEFAULTS.approvals,
      timeoutMs: r.approval.timeout ?? REVIEW_DEFAULTS.timeoutMs,
      ...(r.approval.escalate ? { escalate: { afterMs: r.approval.escalate.after, to: r.approval.escalate.to } } : {}),
    },
    ...(r.reason ? { reason: r.reason } : {}),
  };
}
