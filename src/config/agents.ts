/**
 * The `agents:` section: how AI agents and other service accounts use the MCP endpoint, and the
 * quotas that hold them (first matching limit in file order applies).
 *
 *   agents:
 *     maxRows: 100            # rows an MCP query returns at most (the rest is not read)
 *     holdWait: 5s            # how long an MCP call waits for a held statement before returning its review id
 *     limits:
 *       - groups: [agents]    # whom it applies to (default "*": every service account)
 *         statementsPerMinute: 30
 *         rowsPerHour: 5000
 *         maxRows: 50
 *
 * What an agent may run, what is held for a human and what is masked are ordinary guardrails,
 * reviews and masking rules matched on the agent's groups.
 */
import { z } from 'zod';
import { duration, intBetween, nameList } from './leaf.js';

export interface AgentLimit {
  /** Groups it applies to ('*' = every service account). */
  groups: string[];
  statementsPerMinute?: number;
  rowsPerHour?: number;
  maxRows?: number;
}

export interface AgentsConfig {
  maxRows: number;
  holdWaitMs: number;
  limits: AgentLimit[];
}

export const AGENT_DEFAULTS: AgentsConfig = { maxRows: 100, holdWaitMs: 5_000, limits: [] };

export const agentsSchema = z.strictObject({
  maxRows: intBetween(1, 100_000).optional(),
  holdWait: duration(0, 120_000).optional(),
  limits: z
    .array(
      z.strictObject({
        groups: nameList('group names').optional(),
        statementsPerMinute: intBetween(1, 1_000_000).optional(),
        rowsPerHour: intBetween(1, 1_000_000_000).optional(),
        maxRows: intBetween(1, 100_000).optional(),
      }),
    )
    .optional(),
});

export function buildAgents(file: z.output<typeof agentsSchema> | undefined): AgentsConfig {
  return {
    maxRows: file?.maxRows ?? AGENT_DEFAULTS.maxRows,
    holdWaitMs: file?.holdWait ?? AGENT_DEFAULTS.holdWaitMs,
    limits: (file?.limits ?? []).map((l) => ({
      groups: l.groups ?? ['*'],
      ...(l.statementsPerMinute !== undefined ? { statementsPerMinute: l.statementsPerMinute } : {}),
      ...(l.rowsPerHour !== undefined ? { rowsPerHour: l.rowsPerHour } : {}),
      ...(l.maxRows !== undefined ? { maxRows: l.maxRows } : {}),
    })),
  };
}
