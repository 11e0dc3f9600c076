/**
 * The one failed-login path of the data listeners (PostgreSQL, MySQL, Redis): every failure is
 * counted (metrics) and stored; it is throttled per source address and user name (./login-throttle.ts),
 * answered late and as "too many failed logins" once throttled; and audited one entry each until
 * throttling starts, then summarised (`login.failed.repeated`) once per window. Logging follows the
 * audit: a throttled failure is not logged one by one either.
 */
import type { AuditAppender } from '../audit/log.js';
import type { Clock } from '../core/clock.js';
import { echo } from '../core/printable.js';
import type { Logger } from '../obs/log.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

export interface FailedLoginInfo {
  user: string;
  connection: string;
  /** `address:port` as the listener saw it. */
  clientAddress: string;
  reason: string;
}

export interface FailedLogins {
  /** Records a failure; resolves after its backoff, to the refusal to send when throttled. */
  failed(protocol: string, info: FailedLoginInfo): Promise<string | undefined>;
  /** A login that succeeded (its source and user start afresh). */
  succeeded(clientAddress: string, user: string): void;
  /** Writes the open summaries. */
  close(): void;
}

export interface FailedLoginsOptions {
  clock: Clock;
  log: Logger;
  audit: AuditAppender;
  /** Counted for every failure, throttled or not. */
  count: (protocol: string, reason: string) => void;
  /** Stored for every failure (the state store's auth_failures). */
  store: (info: FailedLoginInfo & { at: number }) => Promise<void>;
  throttle?: Partial<LoginThrottleOptions>;
}

/** The address part of `address:port` (IPv6 too: `::1:5432` is `::1`). */
export function sourceOf(clientAddress: string): string {
  const i = clientAddress.lastIndexOf(':');
  return i > 0 ? clientAddress.slice(0, i) : clientAddress;
}

export function failedLogins(o: FailedLoginsOptions): FailedLogins {
  const throttle = new LoginThrottle(
    o.clock,
    (s) => {
      o.log.warn({ ...s }, 'repeated failed logins (throttled)');
      o.audit
        .append({ type: 'login.failed.repeated', actor: 'gateway', subject: s.clientAddress, data: { ...s } })
        .catch((err: unknown) => o.log.error({ err }, 'cannot audit failed logins'));
    },
    o.throttle,
  );
  return {
    async failed(protocol, info) {
      o.count(protocol, info.reason);
      try {
        await o.store({ at: o.clock.now(), ...info });
      } catch (err) {
        o.log.error({ err }, 'cannot record failed login');
      }
      const verdict = throttle.failed({ protocol, ...info, clientAddress: sourceOf(info.clientAddress) });
      if (verdict.auditEach) {
        o.log.warn({ ...info, protocol }, 'client authentication failed');
        try {
          await o.audit.append({
            type: 'login.failed',
            actor: info.user,
            data: { protocol, connection: info.connection, clientAddress: info.clientAddress, reason: info.reason },
          });
        } catch (err) {
          o.log.error({ err }, 'cannot audit failed login');
        }
      }
      if (!verdict.throttled) return undefined;
      // Real time: the backoff paces the wire, whatever clock the gateway's own timers follow.
      if (verdict.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, verdict.delayMs).unref());
      return `jitgate: too many failed logins from ${echo(sourceOf(info.clientAddress))} or for user "${echo(info.user)}": further failures are answered slowly (a valid token still signs in)`;
    },
    succeeded(clientAddress, user) {
      throttle.succeeded(sourceOf(clientAddress), user);
    },
    close: () => throttle.close(),
  };
}
