/**
 * Where a session's backend credential comes from. The listener asks for one after the client has
 * authenticated and gives it back when the session ends; what "give back" means depends on the
 * connection's `credentials.mode`.
 */
import type { BackendLease, BackendTarget } from '../core/types.js';

export interface SessionCredentialRequest {
  sessionId: string;
  /** The jitgate user the session belongs to (recorded on the backend for the DBA). */
  user: string;
  /** Epoch ms when the session's access ends; an ephemeral role cannot log in after it. */
  validUntil: number;
}

export interface BackendCredentials {
  /** The credential this session connects with. Throws a GatewayError to refuse the session. */
  createFor(request: SessionCredentialRequest): Promise<BackendLease>;
}

/** `credentials.mode: static`: every session uses the stored credential; nothing to give back. */
export class StaticCredentials implements BackendCredentials {
  constructor(private readonly target: BackendTarget) {}

  createFor(): Promise<BackendLease> {
    return Promise.resolve({ target: this.target, release: () => undefined });
  }
}
