/**
 * The `guardrails:` section: deny rules over parsed statements (see policy/guardrails.ts).
 *
 *   guardrails:
 *     - name: no-destructive            # required, shown to the user when a statement is refused
 *       connections: ["prod-*"]         # names or globs (default: every connection)
 *       groups: [engineering]           # whom it applies to (default "*": everyone)
 *       except: [dba]                   # exempt groups
 *       deny:
 *         kinds: [ddl, truncate, grant, revoke]
 *         tables: [payroll, "hr.*"]     # unqualified names also match schema-qualified ones
 *         functions: [pg_read_file, lo_export, "dblink*"]
 *         unboundedWrites: true         # UPDATE/DELETE without WHERE, CTEs included
 *         multiStatement: true
 *         readOnly: false
 *         settings: [role, session_authorization]   # settings SET/RESET/set_config/ALTER ... SET may not change
 *         copy: [program, file]                     # COPY ends refused (stdin, stdout stay allowed unless listed)
 *         commands: [flushall, config, "client|kill"]   # Redis connections: commands/subcommands
 *         categories: [dangerous, scripting]            # Redis ACL categories
 *         keys: ["secret:*"]                            # Redis key globs (case-sensitive)
 *       allow:                          # code jitgate cannot see, refused by default where a rule checks SQL
 *         functions: ["app.*"]          # user functions, procedures (CALL) and operators that may run
 *         do: false                     # DO blocks
 *         code: false                   # everything opaque (the rule trusts code it cannot see)
 *       reason: "ask the DBA on call"   # optional, appended to the message
 */
import { z } from 'zod';
import type { GuardrailRule } from '../policy/guardrails.js';
import type { StatementKind } from '../sql/postgres.js';
import { Bad, bool, describeValue, leaf, text } from './leaf.js';

const KINDS: readonly StatementKind[] = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'copy',
  'ddl',
  'grant',
  'revoke',
  'set',
  'show',
  'transaction',
  'call',
  'do',
  'listen',
  'notify',
  'unlisten',
  'explain',
  'prepare',
  'execute',
  'deallocate',
  'lock',
  'truncate',
  'maintenance',
  'other',
];

export const stringList = (what: string) =>
  leaf(`a list of ${what}`, (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) return undefined;
    for (const [i, x] of list.entries()) {
      if (typeof x !== 'string' || x.trim() === '') return new Bad(`item ${i}: expected a non-empty string, got ${describeValue(x)}`);
    }
    return [...new Set((list as string[]).map((x) => x.toLowerCase()))];
  });

/** Redis keys are case-sensitive: unlike names above, key globs keep their case. */
const keyList = () =>
  leaf('a list of key globs', (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) return undefined;
    for (const [i, x] of list.entries()) {
      if (typeof x !== 'string' || x === '') return new Bad(`item ${i}: expected a non-empty string, got ${describeValue(x)}`);
    }
    return [...new Set(list as string[])];
  });

const COPY_ENDS = ['program', 'file', 'stdin', 'stdout'] as const;

const copyList = () =>
  leaf('a list of COPY ends', (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) return undefined;
    for (const [i, x] of list.entries()) {
      if (typeof x !== 'string' || !(COPY_ENDS as readonly string[]).includes(x.toLowerCase())) {
        return new Bad(`item ${i}: expected one of ${COPY_ENDS.join(', ')}, got ${describeValue(x)}`);
      }
    }
    return [...new Set((list as string[]).map((x) => x.toLowerCase()))];
  });

export const kindList = () =>
  leaf('a list of statement kinds', (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) return undefined;
    for (const [i, x] of list.entries()) {
      if (!KINDS.includes(x as StatementKind)) return new Bad(`item ${i}: expected one of ${KINDS.join(', ')}, got ${describeValue(x)}`);
    }
    return [...new Set(list as StatementKind[])];
  });

export const guardrailSchema = z.strictObject({
  name: text('a rule name'),
  connections: stringList('connection names or globs').optional(),
  groups: stringList('group names').optional(),
  except: stringList('group names').optional(),
  deny: z.strictObject({
    kinds: kindList().optional(),
    tables: stringList('table names or globs').optional(),
    functions: stringList('function names or globs').optional(),
    unboundedWrites: bool().optional(),
    multiStatement: bool().optional(),
    readOnly: bool().optional(),
    // Redis connections (policy/redis-guardrails.ts): commands, ACL categories, key globs (case kept).
    commands: stringList('Redis command names or globs').optional(),
    categories: stringList('Redis ACL categories').optional(),
    keys: keyList().optional(),
    // PostgreSQL: settings that may not be changed (SET ROLE is `role`), COPY ends refused.
    settings: stringList('setting names or globs').optional(),
    copy: copyList().optional(),
  }),
  allow: z
    .strictObject({
      functions: stringList('function names or globs').optional(),
      do: bool().optional(),
      code: bool().optional(),
    })
    .optional(),
  reason: text('a reason').optional(),
});

export type GuardrailFile = z.output<typeof guardrailSchema>;

export function buildGuardrail(g: GuardrailFile): GuardrailRule {
  return {
    name: g.name,
    connections: g.connections ?? ['*'],
    groups: g.groups ?? ['*'],
    except: g.except ?? [],
    deny: {
      kinds: g.deny.kinds ?? [],
      tables: g.deny.tables ?? [],
      functions: g.deny.functions ?? [],
      unboundedWrites: g.deny.unboundedWrites ?? false,
      multiStatement: g.deny.multiStatement ?? false,
      readOnly: g.deny.readOnly ?? false,
      ...(g.deny.commands ? { commands: g.deny.commands } : {}),
      ...(g.deny.categories ? { categories: g.deny.categories.map((c) => c.replace(/^@/, '')) } : {}),
      ...(g.deny.keys ? { keys: g.deny.keys } : {}),
      ...(g.deny.settings ? { settings: g.deny.settings } : {}),
      ...(g.deny.copy ? { copy: g.deny.copy } : {}),
    },
    ...(g.allow ? { allow: { functions: g.allow.functions ?? [], do: g.allow.do ?? false, code: g.allow.code ?? false } } : {}),
    ...(g.reason ? { reason: g.reason } : {}),
  };
}
