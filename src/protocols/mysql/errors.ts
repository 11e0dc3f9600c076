import { GatewayError, type GatewayErrorCode } from '../../core/errors.js';
import type { DecisionCode } from '../../core/types.js';

/**
 * The error number and SQLSTATE a MySQL client sees for each gateway error code, chosen from the
 * server's own so that clients (and people) recognise them: 1045 access denied, 1049 unknown
 * database, 1142 command denied, 1053 server shutdown, 1927 connection killed, 1105 unknown error.
 */
export const MYSQL_ERROR: Record<GatewayErrorCode, { errno: number; sqlState: string }> = {
  protocol_violation: { errno: 1156, sqlState: '08S01' },
  unsupported_protocol: { errno: 1235, sqlState: '42000' },
  auth_failed: { errno: 1045, sqlState: '28000' },
  auth_method_rejected: { errno: 3159, sqlState: 'HY000' },
  // ER_HOST_IS_BLOCKED: the server's own answer to a host with too many connection errors.
  too_many_logins: { errno: 1129, sqlState: 'HY000' },
  grant_inactive: { errno: 1045, sqlState: '28000' },
  unknown_connection: { errno: 1049, sqlState: '42000' },
  backend_unavailable: { errno: 1105, sqlState: 'HY000' },
  credential_unavailable: { errno: 1045, sqlState: '28000' },
  backend_lost: { errno: 1105, sqlState: 'HY000' },
  denied: { errno: 1142, sqlState: '42000' },
  shutting_down: { errno: 1053, sqlState: '08S01' },
  store_unavailable: { errno: 1105, sqlState: 'HY000' },
  killed: { errno: 1927, sqlState: '70100' },
  internal: { errno: 1105, sqlState: 'HY000' },
};

/** A statement refused by the gateway (guardrail, review denial, grant ended). */
export const REFUSED = { errno: 1142, sqlState: '42000' } as const;
/**
 * Each statement refusal that is not a policy one (Decision.code; a policy refusal is REFUSED), as
 * the server's own error. `cancelled`: ER_QUERY_INTERRUPTED, as for a query the server interrupted.
 */
export const DECISION_ERROR: Record<DecisionCode, { errno: number; sqlState: string; message: (message: string) => string }> = {
  cancelled: { errno: 1317, sqlState: '70100', message: (m) => `Query execution was interrupted (${m})` },
};
/** A command the gateway does not relay (replication, shutdown...): "access denied; you need privileges". */
export const COMMAND_REFUSED = { errno: 1227, sqlState: '42000' } as const;

/**
 * Server errors a backend gave the gateway's login that the client should see as the server's
 * own: the backend is full (1040 Too many connections, 1203/1226 per-user limits), not a fault of
 * jitgate or of masking.
 */
const PASSED_LOGIN_ERRORS = new Set([1040, 1203, 1226]);

export class BackendLoginRefused extends GatewayError {
  constructor(
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super('backend_unavailable', message);
    this.name = 'BackendLoginRefused';
  }
}

/** The backend's own login error when a client should see it as is, else undefined. */
export function passedLoginError(errno: number, sqlState: string, message: string): BackendLoginRefused | undefined {
  return PASSED_LOGIN_ERRORS.has(errno) ? new BackendLoginRefused(errno, sqlState, message) : undefined;
}
