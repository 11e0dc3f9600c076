/**
 * Calls to the gateway's API from the console. The session lives in an HttpOnly cookie the script
 * never sees; state-changing calls echo the CSRF cookie in X-CSRF-Token. An expired session is
 * renewed once from the refresh cookie; if that fails the caller is sent to sign in.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class SignedOut extends Error {}

let onSignedOut: () => void = () => undefined;
export function setSignedOutHandler(fn: () => void): void {
  onSignedOut = fn;
}

function csrfToken(): string {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === '__Host-jitgate_csrf' || name === 'jitgate_csrf') return decodeURIComponent(rest.join('='));
  }
  return '';
}

async function send(path: string, method: string, body: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['x-csrf-token'] = csrfToken();
    if (body !== undefined) headers['content-type'] = 'application/json';
  }
  return fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

let refreshing: Promise<boolean> | undefined;
async function refresh(): Promise<boolean> {
  refreshing ??= send('/api/auth/browser/refresh', 'POST', undefined)
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = undefined;
    });
  return refreshing;
}

export async function api<T>(path: string, options: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = options.method ?? 'GET';
  let res = await send(path, method, options.body);
  if (res.status === 401 && (await refresh())) res = await send(path, method, options.body);
  if (res.status === 401) {
    onSignedOut();
    throw new SignedOut('signed out');
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json ?? {}) as { error?: string; message?: string };
    throw new ApiError(res.status, e.error ?? `http_${res.status}`, e.message ?? `${method} ${path} failed with HTTP ${res.status}`);
  }
  return json as T;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---- shapes of the API's answers (what the console reads) -------------------------------------

export interface Me {
  user: string;
  groups: string[];
  kind: string;
  via: string;
  roles: Array<'requester' | 'approver' | 'auditor' | 'admin'>;
  listeners: { postgres: { host: string; port: number; sslmode: string } | null };
}

export interface ConnectionAccess {
  name: string;
  type: string;
  access:
    { state: 'none' } | { state: 'pending'; requestId: string; expiresAt: string } | { state: 'granted'; grantId: string; until: string };
  policy?: { name: string; approval: string; approvers: string[]; maxDurationMs: number; breakGlass: boolean };
}

export interface AccessRequest {
  id: string;
  user: string;
  groups: string[];
  connection: string;
  reason: string;
  durationMs: number;
  breakGlass: boolean;
  state: string;
  policy: string | null;
  approverGroups: string[];
  approvalsRequired: number;
  approvals: Array<{ approver: string; comment: string | null; at: string }>;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  /** Set once it waited past its policy's `escalate.after`: more groups may approve since. */
  escalatedAt?: string | null;
}

/** A statement review (held statement); read defensively, fields beyond these are shown as given. */
export interface Review {
  id: string;
  state: string;
  user?: string;
  connection?: string;
  sessionId?: string;
  session?: string;
  statement?: string;
  sql?: string;
  text?: string;
  reason?: string;
  ruleReason?: string | null;
  reasons?: string[];
  what?: string;
  approverGroups?: string[];
  approvalsRequired?: number;
  approvals?: Array<{ approver: string; comment: string | null; at: string }>;
  canApprove?: boolean;
  rule?: string;
  policy?: string;
  createdAt?: string;
  decidedAt?: string | null;
  decidedBy?: string | null;
  comment?: string | null;
  decision?: { by?: string; comment?: string | null; at?: string } | null;
}

export interface SessionSummary {
  id: string;
  user: string;
  connection: string;
  protocol: string;
  clientAddress: string;
  applicationName: string | null;
  startedAt: string;
  endedAt: string | null;
  endReason: string | null;
  status: 'live' | 'ended';
  attached: boolean;
  /** The gateway instance serving the session (null: from before instances). */
  instance: string | null;
  statements: number;
  recording: { state: string; events: number; hold: unknown } | null;
}

export interface RecordedEvent {
  seq: number;
  at: number;
  type: string;
  data: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  at: string;
  type: string;
  actor: string;
  subject: string | null;
  data: Record<string, unknown>;
  hash: string;
}

export interface AuditReport {
  ok: boolean;
  entries: number;
  lastSeq: number | null;
  checkpoints: number;
  lastSignedSeq: number | null;
  keyTrusted: boolean;
  broken?: { seq: number; why: string };
  checkedAt: string;
}
