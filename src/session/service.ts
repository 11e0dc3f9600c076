/**
 * Opens one SessionPipeline per data session: the place where identity, store, metrics and (in
 * later work) policy, masking and recording meet. Protocol engines only see the pipeline.
 */
import { randomUUID } from 'node:crypto';
import { GatewayError } from '../core/errors.js';
import type { Decision, Protocol, SessionCounters, SessionEndReason, SessionPipeline, Statement } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { Store } from '../store/store.js';

export interface OpenSessionInput {
  protocol: Protocol;
  user: string;
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  tokenId: string;
}

const ALLOW: Decision = Object.freeze({ effect: 'allow', reasons: [] }) as Decision;

export class SessionService {
  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  open(input: OpenSessionInput): SessionPipeline {
    const id = randomUUID();
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

    let ended = false;
    return {
      id,
      decide: (_statement: Statement) => {
        statements.inc();
        return ALLOW;
      },
      end: (reason: SessionEndReason, counters: SessionCounters) => {
        if (ended) return;
        ended = true;
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
