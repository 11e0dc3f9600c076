/**
 * The only errors that reach a client. Each carries a stable code; protocol engines turn the code into
 * their own error format (a SQLSTATE for PostgreSQL). Anything else thrown inside the gateway is logged
 * and replaced by a generic message, so internals never leak to a client.
 */
export type GatewayErrorCode =
  | 'protocol_violation' // malformed or out-of-order message
  | 'unsupported_protocol' // protocol version or feature we do not speak
  | 'auth_failed' // wrong, expired or unknown token
  | 'auth_method_rejected' // e.g. cleartext without TLS, TLS required
  | 'too_many_logins' // failed logins from this address or for this user name are being throttled
  | 'grant_inactive' // the token is valid but the access grant behind it expired, was revoked or is missing
  | 'unknown_connection' // database name names no configured connection
  | 'backend_unavailable' // could not connect or authenticate to the backend
  | 'credential_unavailable' // the backend would not make this session's own database user (ephemeral credentials)
  | 'backend_lost' // backend died mid-session
  | 'denied' // refused by policy
  | 'shutting_down' // gateway is draining
  | 'store_unavailable' // the state store cannot record the session (fail closed)
  | 'killed' // session ended by an administrator
  | 'internal'; // anything unexpected; message is generic

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  /** Extra detail safe to show to the client (never a secret). */
  readonly detail?: string;
  /**
   * What went wrong underneath, for the gateway's log only (a socket or TLS library's message can
   * name hosts, addresses and certificates the client has no business seeing).
   */
  readonly logDetail?: string;

  constructor(code: GatewayErrorCode, message: string, detail?: string, options: { logDetail?: string } = {}) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
    this.detail = detail;
    if (options.logDetail !== undefined) this.logDetail = options.logDetail;
  }
}

/** Reduce any thrown value to something safe to show a client. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('internal', 'internal gateway error');
}
