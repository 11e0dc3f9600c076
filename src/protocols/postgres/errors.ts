import type { GatewayErrorCode } from '../../core/errors.js';
import type { DecisionCode } from '../../core/types.js';

/** The SQLSTATE a PostgreSQL client sees for each gateway error code. */
export const SQLSTATE: Record<GatewayErrorCode, string> = {
  protocol_violation: '08P01',
  unsupported_protocol: '0A000',
  auth_failed: '28P01',
  auth_method_rejected: '28000',
  too_many_logins: '28000',
  grant_inactive: '28000',
  unknown_connection: '3D000',
  backend_unavailable: '08006',
  credential_unavailable: '28000',
  backend_lost: '08006',
  denied: '42501',
  shutting_down: '57P01',
  store_unavailable: '57P03',
  killed: '57P01',
  internal: 'XX000',
};

/**
 * The SQLSTATE of each statement refusal that is not a policy one (Decision.code; a policy refusal
 * is `SQLSTATE.denied`). `cancelled`: query_canceled, what PostgreSQL itself answers a cancelled
 * statement.
 */
export const DECISION_SQLSTATE: Record<DecisionCode, string> = {
  cancelled: '57014',
};
