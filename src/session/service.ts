/**
 * Opens one SessionPipeline per data session: the place where identity, store, metrics and (in
 * later work) policy, masking and recording meet. Protocol engines only see the pipeline.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { Decision, Grant, Protocol, SessionCounters, SessionEndReason, SessionPipeline, Statement } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { Store } from '../store/store.js';
import { decideStatement, rulesFor, type GuardrailRule } from '../policy/guardrails.js';
import { analysePostgresCached } from '../sql/postgres.js';
import { requireActiveGrant, watchGrant, type GrantWatch, type SessionGrants, type SessionTerminator } from './grant-watch.js';

export interface OpenSessionInput {
  protocol: Protocol;
  user: string;
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  tokenId: string;
}

const ALLOW: Decision = Object.freeze({ effect: 'allow', reasons: [] }) as Decision;
const FUNCTION_CALL_REFUSED: Decision = Object.freeze({
  effect: 'deny',
  reasons: ['function_call_protocol'],
  message: 'jitgate: the function call protocol cannot be checked against guardrails and is refused on this connection',
}) as Decision;

export interface SessionServiceOptions {
  /**
   * Grant enforcement (the gateway always passes it): a session starts only on an active grant and
   * ends with it. Without it (unit tests of other parts) sessions are not tied to grants.
   */
  grants?: SessionGrants;
  /** Schedules grant expiry (default: the system clock). */
  clock?: Clock;
  /** Deny rules over parsed statements; the ones matching a session's connection and groups apply. */
  guardrails?: readonly GuardrailRule[];
}

export class SessionService {
  private terminator: SessionTerminator | undefined;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly options: SessionServiceOptions = {},
  ) {}

  /** How to end a live session (the protocol listener's kill); set once the listener exists. */
  setTerminator(terminator: SessionTerminator): void {
    this.terminator = terminator;
  }

  open(input: OpenSessionInput): SessionPipeline {
    const id = randomUUID();
    const grants = this.options.grants;
    let grant: Grant | undefined;
    try {
      grant = grants && requireActiveGrant(grants, input, this.now());
    } catch (err) {
      this.log.warn({ user: input.user, connection: input.connection, tokenId: input.tokenId, why: (err as Error).message }, 'session refused: no active grant');
      throw err;
    }
    try {
      this.store.startSession({
        id,
        user: input.user,
        connection: input.connection,
        protocol: input.protocol,
        clientAddress: input.clientAddress,
        applicationName: input.applicationName,
        startedAt: this.now(),
      });
    } catch (err) {
      // Fail closed: a session the gateway cannot account for does not start.
      this.log.error({ err, user: input.user, connection: input.connection }, 'cannot record session start');
      throw new GatewayError('store_unavailable', 'jitgate cannot record this session right now; try again later');
    }
    const labels = { protocol: input.protocol, connection: input.connection };
    this.metrics.sessionsTotal.inc(labels);
    this.metrics.sessionsActive.inc(labels);
    const statements = this.metrics.statementsTotal.labels(labels);
    this.log.info({ session: id, user: input.user, connection: input.connection, client: input.clientAddress }, 'session started');

    let watch: GrantWatch | undefined;
    if (grants && grant) {
      watch = watchGrant({ sessionId: id, grant, grants, clock: this.options.clock ?? systemClock, log: this.log, terminate: () => this.terminator });
    }

    const rules = rulesFor(this.options.guardrails ?? [], input.connection, grant?.groups ?? []);
    let ended = false;
    return {
      id,
      decide: (statement: Statement) => {
        statements.inc();
        const over = watch?.endedMessage;
        if (over !== undefined) return { effect: 'deny', reasons: ['grant_ended'], message: over };
        if (rules.length === 0) return ALLOW;
        // The fast-path function call protocol names a function by OID only: nothing to check it by.
        if (statement.source === 'function-call') return FUNCTION_CALL_REFUSED;
        return decideStatement(rules, analysePostgresCached(statement.text));
      },
      end: (reason: SessionEndReason, counters: SessionCounters) => {
        if (ended) return;
        ended = true;
        watch?.stop();
        this.metrics.sessionsActive.dec(labels);
        this.metrics.bytesTotal.inc({ ...labels, direction: 'client_to_backend' }, counters.bytesFromClient);
        this.metrics.bytesTotal.inc({ ...labels, direction: 'backend_to_client' }, counters.bytesToClient);
        try {
          this.store.endSession(id, this.now(), reason, counters);
        } catch (err) {
          this.log.error({ err, session: id }, 'cannot record session end');
        }
        this.log.info({ session: id, reason, ...counters }, 'session ended');
      },
    };
  }
}
