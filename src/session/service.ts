/**
 * Opens one SessionPipeline per data session: the place where identity, store, metrics and (in
 * later work) policy, masking and recording meet. Protocol engines only see the pipeline.
 */
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import { pendingDecision } from '../core/pending-decision.js';
import type {
  Decision,
  Grant,
  MaskingScope,
  PendingDecision,
  Protocol,
  SessionCounters,
  SessionEndReason,
  SessionInfo,
  SessionMasking,
  SessionPipeline,
  Statement,
} from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { StoreRetryQueue } from '../store/retry-queue.js';
import type { Store } from '../store/store.js';
import { rulesFor, type GuardrailRule } from '../policy/guardrails.js';
import type { ReviewService } from '../review/service.js';
import type { ReviewRule } from '../policy/review-rules.js';
import { decideInOrder, type DecisionSteps, type Verdict } from './decision.js';
import { requireActiveGrant, watchGrant, type GrantWatch, type SessionGrants, type SessionTerminator } from './grant-watch.js';

export interface OpenSessionInput {
  protocol: Protocol;
  user: string;
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  tokenId: string;
  /**
   * Protections the protocol engine applies to every statement of the session, with or without
   * rules (PostgreSQL: the gateway's credential, other people's sessions); a Decision refuses.
   * Decided here so that such refusals are recorded and audited like any other.
   */
  protect?: (statement: Statement) => Decision | undefined;
  /** The protocol's masker for the session, from the masking that applies to it (SessionInfo.masker). */
  masker?: SessionInfo['masker'];
}

const REVIEW_UNAVAILABLE: Decision = Object.freeze({
  effect: 'deny',
  reasons: ['review_unavailable'],
  message: 'jitgate: this statement needs approval, but the review could not be recorded right now; it was not run',
}) as Decision;

/** A startup setting a review rule would hold: a login cannot wait for approvers. */
function refusedAtLogin(rule: string): Decision {
  return {
    effect: 'deny',
    reasons: ['review_at_login'],
    message: `jitgate: this setting needs approval (review rule "${rule}"), which a login cannot wait for; SET it in the session instead`,
  };
}

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
  /** Review rules (statements held for approval) and the service that holds them; guardrails win. */
  reviews?: { rules: readonly ReviewRule[]; service: ReviewService };
  /** The masking that applies to a session (undefined when no masking rule or detector does). */
  masking?: (session: { connection: string; groups: readonly string[] }) => MaskingScope | undefined;
  /** A per-session statement rate gate (agents' quotas); undefined for sessions no rate applies to. */
  statementGate?: (user: string, groups: readonly string[]) => (() => Decision | undefined) | undefined;
  /** The gateway instance serving the sessions (instances/registry.ts); written on each session row. */
  instanceId?: string;
  /** How to end a live session whose grant ended (the protocol listeners' kill). */
  terminate?: SessionTerminator;
}

export class SessionService {
  /** Session end rows the store could not take right away (retried until it can). */
  private readonly endWrites: StoreRetryQueue;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly options: SessionServiceOptions = {},
  ) {
    // Batched (one commit per chunk of ended sessions) and retried while the store cannot write.
    this.endWrites = new StoreRetryQueue({
      clock: options.clock ?? systemClock,
      log,
      what: 'session end rows',
      transaction: (writes) => store.batch(writes),
    });
  }

  /** Session end rows still waiting for the store. */
  get pendingEndWrites(): number {
    return this.endWrites.size;
  }

  /** Writes what is still queued for the store, once more (at shutdown). */
  close(): Promise<void> {
    return this.endWrites.close();
  }

  /**
   * The session's masker: the protocol builds it from the masking that applies to the session.
   * Fail closed: a session masking applies to does not start without one (a protocol that cannot
   * mask, a masker that cannot be built).
   */
  private maskingFor(input: OpenSessionInput, groups: readonly string[]): SessionMasking | undefined {
    const scope = this.options.masking?.({ connection: input.connection, groups });
    if (!scope) return undefined;
    try {
      if (!input.masker) throw new Error(`the ${input.protocol} listener cannot mask results`);
      return input.masker(scope);
    } catch (err) {
      this.log.error({ err, user: input.user, connection: input.connection }, 'session refused: cannot build its masking');
      throw new GatewayError('internal', 'jitgate cannot mask results on this connection right now; the session was refused');
    }
  }

  async open(input: OpenSessionInput): Promise<SessionPipeline> {
    const id = randomUUID();
    const grants = this.options.grants;
    let grant: Grant | undefined;
    try {
      grant = grants && (await requireActiveGrant(grants, input, this.now));
    } catch (err) {
      this.log.warn(
        { user: input.user, connection: input.connection, tokenId: input.tokenId, why: (err as Error).message },
        'session refused: no active grant',
      );
      throw err;
    }
    const masking = this.maskingFor(input, grant?.groups ?? []);
    try {
      await this.store.startSession({
        id,
        user: input.user,
        connection: input.connection,
        protocol: input.protocol,
        clientAddress: input.clientAddress,
        applicationName: input.applicationName,
        startedAt: this.now(),
        instanceId: this.options.instanceId ?? null,
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
      watch = watchGrant({
        sessionId: id,
        grant,
        grants,
        clock: this.options.clock ?? systemClock,
        log: this.log,
        terminate: () => this.options.terminate,
      });
    }

    const gate = this.options.statementGate?.(input.user, grant?.groups ?? []);
    const rules = rulesFor(this.options.guardrails ?? [], input.connection, grant?.groups ?? []);
    const reviews = this.options.reviews;
    const reviewRules = reviews ? rulesFor(reviews.rules, input.connection, grant?.groups ?? []) : [];
    const steps: DecisionSteps = {
      grantEnded: () => watch?.endedMessage,
      ...(gate ? { gate } : {}),
      ...(masking ? { masking } : {}),
      rules: { protocol: input.protocol, guardrails: rules, reviews: reviewRules, ...(input.protect ? { protect: input.protect } : {}) },
    };
    /** A review rule's match becomes a hold: stored, announced, waited on. */
    const act = (statement: Statement, verdict: Verdict): Decision | PendingDecision => {
      if (verdict.kind === 'decision') return verdict.decision;
      if (statement.atLogin) return refusedAtLogin(verdict.match.rule.name);
      // The session ended while masking read its catalog: nobody is left to wait for a review.
      if (ended) return { effect: 'deny', reasons: ['session_ended'], code: 'cancelled', message: 'jitgate: the session ended' };
      try {
        return reviews!.service.hold({
          sessionId: id,
          user: input.user,
          groups: grant?.groups ?? [],
          connection: input.connection,
          statement,
          match: verdict.match,
        });
      } catch (err) {
        // Fail closed: a statement that needs review but cannot be held for one does not run.
        this.log.error({ err, session: id }, 'cannot hold statement for review');
        return REVIEW_UNAVAILABLE;
      }
    };
    let ended = false;
    return {
      id,
      decide: (statement: Statement) => {
        statements.inc();
        const verdict = decideInOrder(steps, statement);
        if (!(verdict instanceof Promise)) return act(statement, verdict);
        // Masking first validates its catalog: the statement waits for that, and may then be held
        // for a person, which the returned decision announces when it happens.
        const later = pendingDecision(
          verdict.then((v) => {
            const decision = act(statement, v);
            if (decision instanceof Promise) decision.onHold(later.held);
            return decision;
          }),
        );
        return later.pending;
      },
      end: (reason: SessionEndReason, counters: SessionCounters) => {
        if (ended) return;
        ended = true;
        watch?.stop();
        // Whatever the session had held for approval is withdrawn: nobody waits for it any more.
        reviews?.service.endSession(id);
        this.metrics.sessionsActive.dec(labels);
        this.metrics.bytesTotal.inc({ ...labels, direction: 'client_to_backend' }, counters.bytesFromClient);
        this.metrics.bytesTotal.inc({ ...labels, direction: 'backend_to_client' }, counters.bytesToClient);
        // A store that cannot take the end row now (full, read-only) gets it later: a session must
        // not stay "active" forever. The end time and counters are the ones of this moment.
        const endedAt = this.now();
        const final = { bytesFromClient: counters.bytesFromClient, bytesToClient: counters.bytesToClient, statements: counters.statements };
        this.endWrites.run(`end of session ${id}`, () => this.store.endSession(id, endedAt, reason, final));
        this.log.info({ session: id, reason, ...counters }, 'session ended');
      },
    };
  }
}
