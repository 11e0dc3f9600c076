/** The access API's JSON shapes as the CLI reads them (see src/api/access-routes.ts), and how they print. */
import { formatDuration } from '../../core/duration.js';
import { formatElapsed, formatTime } from '../format.js';

export interface RequestJson {
  id: string;
  user: string;
  connection: string;
  reason: string;
  durationMs: number;
  breakGlass: boolean;
  state: 'pending' | 'granted' | 'denied' | 'withdrawn' | 'expired';
  policy: string;
  approverGroups: string[];
  approvalsRequired: number;
  approvals: Array<{ approver: string; comment: string | null; at: string; breakGlass: boolean }>;
  reasons: string[];
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  grantId: string | null;
}

export interface GrantJson {
  id: string;
  user: string;
  connection: string;
  reason: string;
  requestId: string | null;
  approvedBy: string[];
  breakGlass: boolean;
  policy: string | null;
  issuedBy: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

export interface DecisionJson {
  request: RequestJson;
  grant?: GrantJson | null;
  reasons: string[];
  message: string;
}

export interface TokenJson {
  token: string;
  tokenId: string;
  expiresAt: string;
  ttlMs: number;
  user: string;
  connection: string;
  grant: GrantJson;
  postgres?: { host: string; port: number; database: string; sslmode: string };
}

export const short = (id: string) => id.slice(0, 8);

export const time = (iso: string) => formatTime(Date.parse(iso));

/** "2026-01-01 10:00:00 (in 59m)" */
export function until(iso: string, now: number): string {
  const left = Date.parse(iso) - now;
  return `${time(iso)} (${left > 0 ? `in ${formatElapsed(left)}` : `${formatElapsed(-left)} ago`})`;
}

export function describeGrant(g: GrantJson, now: number): string {
  const by = g.breakGlass
    ? 'BREAK-GLASS (no approval)'
    : g.approvedBy.length
      ? `approved by ${g.approvedBy.join(', ')}`
      : g.issuedBy
        ? `issued by ${g.issuedBy}`
        : `granted by policy ${g.policy ?? '?'}`;
  return `grant ${short(g.id)} on ${g.connection} until ${until(g.expiresAt, now)}, ${by}`;
}

export function approvalsOf(r: RequestJson): string {
  return `${r.approvals.length}/${r.approvalsRequired}`;
}

export const dur = (ms: number) => formatDuration(ms);
