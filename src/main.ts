/**
 * The composition root: builds every part from a validated configuration and wires them together.
 * Nothing else in the gateway constructs services.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { AccessRepository } from './access/repository.js';
import { AccessService } from './access/service.js';
import { TokenAuthority } from './access/tokens.js';
import { SessionTokens } from './access/session-tokens.js';
import { SqliteDeliveryOutbox } from './notify/outbox.js';
import { ApprovalMetrics, watchAccessDecisions } from './access/approval-metrics.js';
import { watchReviewDecisions } from './review/metrics.js';
import { GrantAwareVerifier } from './access/verifier.js';
import { registerAccessRoutes } from './api/access-routes.js';
import { registerPolicyRoutes } from './api/policy-routes.js';
import { registerTlsRoutes } from './api/tls-routes.js';
import { registerRecordingRoutes } from './api/recording-routes.js';
import { publishReviewEvents, registerReviewRoutes } from './api/review-routes.js';
import { registerConsoleApi } from './api/console-api.js';
import { registerStatsRoutes } from './api/stats-routes.js';
import type { LiveHub } from './api/live-routes.js';
import type { AuditLog } from './audit/log.js';
import { startHttpServer } from './api/http.js';
import { Router } from './api/router.js';
import type { GatewayConfig } from './config/types.js';
import { clockReading, systemClock, type Clock } from './core/clock.js';
import { GatewayError } from './core/errors.js';
import { ShutdownSequence } from './core/shutdown.js';
import type { BackendTarget, Identity, Protocol, SessionEndReason } from './core/types.js';
import { resolveSecretRef } from './credentials/refs.js';
import { SecretStore } from './credentials/secret-store.js';
import { SharedKeys } from './credentials/shared-keys.js';
import { SessionCredentials } from './credentials/session-credentials.js';
import { CredentialRotation } from './credentials/rotation/service.js';
import { registerCredentialRoutes } from './api/credential-routes.js';
import { IdentityRepository } from './identity/repository.js';
import type { IdentityService } from './identity/service.js';
import { failedLogins, type FailedLoginInfo } from './identity/failed-logins.js';
import type { LoginThrottleOptions } from './identity/login-throttle.js';
import { publicOriginOf, startIdentity } from './api/identity-wire.js';
import { createLogger, type Logger } from './obs/log.js';
import { WebhookNotifier, type WebhookTarget } from './notify/webhooks.js';
import { BackendHealth } from './obs/backend-health.js';
import { createMetrics, type Metrics } from './obs/metrics.js';
import { ProtocolRegistry, type ProtocolListener } from './core/protocol-engine.js';
import { postgresEngine } from './protocols/postgres/engine.js';
import { mysqlEngine } from './protocols/mysql/engine.js';
import { redisEngine } from './protocols/redis/engine.js';
import type { RecordingService } from './recording/service.js';
import { startRecording } from './recording/wire.js';
import { openRecordingStorage } from './recording/storage.js';
import { startAudit } from './audit/wire.js';
import { auditAccessEvents } from './access/audit.js';
import { PolicyTester } from './session/explain.js';
import { CancelKeys } from './instances/cancel-keys.js';
import { allOf } from './access/events.js';
import { StoreCatchUp } from './instances/catch-up.js';
import { EventsFromOthers } from './instances/others-events.js';
import { SharedUsage } from './instances/usage.js';
import { SessionKills } from './instances/kills.js';
import { InstanceRegistry } from './instances/registry.js';
import { SessionService, type OpenSessionInput } from './session/service.js';
import { auditReviewEvents } from './review/audit.js';
import { notifyReviewEvents } from './review/notify.js';
import { ReviewRepository } from './review/repository.js';
import { ReviewService } from './review/service.js';
import { AGENT_DEFAULTS } from './config/agents.js';
import { recordingSettings } from './config/recording.js';
import { AgentQuotas } from './mcp/quota.js';
import { startMcp } from './mcp/wire.js';
import { loadPostgresParser } from './sql/postgres.js';
import { startMasking, type MaskingModule } from './session/masking-wire.js';
import { openSqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';
import { ensureCertificate } from './tls/certificate.js';

export interface Gateway {
  /** Bound `host:port` of the HTTP server and of each protocol listener that runs. */
  addresses: { http: string } & Partial<Record<Protocol, string>>;
  store: Store;
  metrics: Metrics;
  router: Router;
  /** Access requests, approvals, grants (every data session rests on one). */
  access: AccessService;
  /** Who callers are (OIDC, gateway sessions, API keys); also the HTTP API's authenticator. */
  identity: IdentityService;
  /** The protocol listeners that run (those with a `listeners.<protocol>` setting). */
  listeners: ReadonlyMap<Protocol, ProtocolListener>;
  /** Backend credentials per connection (static or per-session roles) and their janitor. */
  credentials: SessionCredentials;
  /** Rotation of the gateway's own backend passwords (`jitgate credentials rotate` and the schedule). */
  rotation: CredentialRotation;
  /** Session recordings (replay, live tails, kill, retention, legal holds). */
  recording: RecordingService;
  /** The hash-chained audit log; other parts append security events here. */
  audit: AuditLog;
  /** Statements held in live sessions for approval (reviews: rules). */
  reviews: ReviewService;
  /** Live updates for browsers (GET /api/events): modules publish here, e.g. statement reviews. */
  live: LiveHub;
  /** Graceful shutdown: drains sessions (up to the configured timeout), then closes everything. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  /** Drives timers such as the ephemeral-role janitor (default: the system clock, reading `now`). */
  clock?: Clock;
  /** Failed-login throttling (thresholds, backoff); tests shorten the backoff. */
  loginThrottle?: Partial<LoginThrottleOptions>;
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger({ level: config.log.level });
  const env = options.env ?? process.env;
  // One clock for everything that reads the time or sets timers. With only `now` injected, timers
  // still run in real time, offset to that clock's notion of now.
  const clock: Clock = options.clock ?? (options.now ? clockReading(options.now) : systemClock);
  const now = () => clock.now();
  // Each part adds its stop to a step as it is built, so a start that fails halfway stops what exists.
  const shutdown = new ShutdownSequence([
    // Live HTTP streams (events, tails) end first.
    'streams',
    // No rotation starts from here on; one in progress finishes (its backend logins are short).
    'rotation',
    // Agents' data sessions are clients of the listeners: they end before the listeners drain.
    'agents',
    // Sessions drain, up to the configured timeout; HTTP still answers /readyz (draining).
    'listeners',
    // Revocations, decisions and kills made through other instances still reach draining sessions.
    'catch-up',
    // Ended sessions are still closing their recordings (final digest to the audit log).
    'recordings',
    // Session end rows the store could not take yet get a last try (the next start reconciles the rest).
    'session-ends',
    // Ended sessions are still dropping their roles; the store must outlive that.
    'credentials',
    'masking',
    // Throttled failed logins not yet summarised go to the audit log before the store closes.
    'login-failures',
    'http',
    'access',
    // Sessions are gone by now (each withdrew what it held); this only stops timers.
    'reviews',
    'webhooks',
    // Everything that appends has stopped: sign the audit log's head last.
    'audit',
    // This instance's row goes last: until then others see it alive and leave its sessions alone.
    'instance',
    'store',
  ] as const);
  const store = openSqliteStore(config.store.path);
  shutdown.add('store', () => store.close());
  try {
    // The one secret store: backend passwords, webhook and OIDC secrets, rotation, the console's list.
    const secrets = new SecretStore(store, { env, now });
    const resolveSecret = (ref: string) => resolveSecretRef(ref, { secretStore: secrets, env });
    const targets = await resolveTargets(config, resolveSecret);
    // Keys every instance on the store must agree on: in the store under the master key when there is one.
    const keys = SharedKeys.open(secrets);
    const certificate = await ensureCertificate(config.dataDir, { cert: config.tls.cert, key: config.tls.key }, new Date(), keys);
    if (certificate.generated) log.info({ cert: certificate.certPath }, 'generated a self-signed TLS certificate');
    const secureContext = tls.createSecureContext({ cert: certificate.cert, key: certificate.key });
    const certificateDer = new X509Certificate(certificate.cert).raw;

    const metrics = createMetrics();
    // Each backend's health from the logins that reach it or not: /readyz details and metrics.
    const backendHealth = new BackendHealth({
      backends: [...targets.values()].map((t) => ({ connection: t.connection, protocol: t.protocol, host: t.host, port: t.port })),
      metrics,
      now,
    });
    // API routes are added by the services that own them (identity, access, ...).
    const router = new Router();
    // The HTTP listener binds last, once every route exists; what shows its address reads it here.
    const httpBound: { address?: string } = {};
    // Where browsers and identity providers come back to; in development, the HTTP listener once bound.
    const publicOrigin = publicOriginOf(config, () => httpBound.address);
    // Who callers are. Built before access and reviews, which ask it who is an administrator.
    const identity = await startIdentity({
      config: config.identities,
      db: store.database,
      router,
      clock,
      log,
      resolveSecret,
      publicOrigin,
    });
    const isAdmin = (who: Identity) => identity.service.isAdmin(who);
    // Unknown users get fake SCRAM salts from this secret: the same on every instance and after a restart.
    const fakeSaltSecret = await keys.key('scram-fake-salt', {
      file: join(config.dataDir, 'scram-fake-salt.key'),
      create: () => randomBytes(32).toString('hex'),
    });
    const tokens = new TokenAuthority(store, { serverSecret: Buffer.from(fakeSaltSecret.value, 'hex') });
    const accessRepo = await AccessRepository.open(store.sql);
    const accessService = new AccessService({
      repo: accessRepo,
      store,
      policies: config.policies,
      connections: config.connections.map((c) => c.name),
      clock,
      log,
      isAdmin,
      tokenTtlMs: config.auth.tokenTtlMs,
      tokenUse: (name) => config.connections.find((c) => c.name === name)?.tokenUse ?? config.auth.tokenUse,
    });
    shutdown.add('access', () => accessService.close());
    await accessService.start();
    // The audit log: recordings, reviews, access, logins and tokens all append to it.
    const auditModule = await startAudit({ config, sql: store.sql, clock, log, keys });
    shutdown.add('audit', () => auditModule.stop());
    auditAccessEvents(accessService.events, auditModule.log, log);
    // The gateway's own backend passwords: rotated on schedule or on request, in place in `targets`.
    const credentialRotation = new CredentialRotation({
      connections: config.connections,
      targets,
      secrets,
      database: store.database,
      clock,
      log,
      audit: auditModule.log,
      registry: metrics.registry,
    });
    shutdown.add('rotation', () => credentialRotation.stop());
    await credentialRotation.start();
    // Deliveries not yet done are kept in the store and sent again after a restart.
    const notifier = new WebhookNotifier({
      webhooks: await resolveWebhooks(config, resolveSecret),
      clock,
      log,
      outbox: new SqliteDeliveryOutbox(store.database),
    });
    shutdown.add('webhooks', () => notifier.close());
    notifier.attach(accessService.events);
    notifier.resume();
    // Statements held for approval: stored, audited, notified; what a gone process left pending is closed below.
    const reviewRepo = new ReviewRepository(store.database);
    const reviewService = new ReviewService({
      repo: reviewRepo,
      clock,
      log,
      isAdmin,
      // Held clients are told where to approve: the console's page of the review.
      consoleBase: () => httpBound.address && (config.listeners.http.publicUrl ?? httpBound.address),
    });
    shutdown.add('reviews', () => reviewService.close());
    auditReviewEvents(reviewService.events, auditModule.log, log);
    notifyReviewEvents(reviewService.events, notifier);
    // Whether approvals are a bottleneck: waiting items (read at scrape time), time to decision, expiries.
    const approvalMetrics = new ApprovalMetrics({
      registry: metrics.registry,
      pendingRequests: () => accessRepo.pendingByConnection(),
      heldStatements: () => reviewRepo.pendingByConnection(),
    });
    watchAccessDecisions(accessService.events, approvalMetrics);
    watchReviewDecisions(reviewService.events, approvalMetrics);
    const verifier = new GrantAwareVerifier(tokens, accessRepo, now);
    // The statement parser (WebAssembly) loads once; guardrails refuse what it cannot analyse.
    await loadPostgresParser();
    const maskingModule = await startMasking({
      config: config.masking,
      targets,
      dataDir: config.dataDir,
      resolveSecret,
      keys,
    });
    shutdown.add('masking', () => maskingModule?.close());
    // The protocol engines, not listening yet: sessions and recordings below end live sessions
    // through them, and they start listening once sessions can open.
    // One registration per protocol: the engine and what only that protocol needs.
    const registry = new ProtocolRegistry([postgresEngine({ authMethods: config.auth.postgres.methods }), mysqlEngine(), redisEngine()]);
    shutdown.add('listeners', () => registry.close(config.shutdown.drainTimeoutMs));
    // Kills and ended grants reach whichever listener holds the session.
    const killAnywhere = (id: string, reason: SessionEndReason, message: string) => registry.kill(id, reason, message);
    const recorder = startRecording({
      config,
      db: store.database,
      audit: auditModule.log,
      clock,
      log,
      storage: await openRecordingStorage(recordingSettings(config), {
        audit: auditModule.log,
        log: log.child({ component: 'recording' }),
        resolveSecret,
        registry: metrics.registry,
      }),
      grants: accessService,
      sessions: { reconcile: (id, endedAt, reason, counters) => store.reconcileSession(id, endedAt, reason, counters) },
      kill: killAnywhere,
    });
    shutdown.add('recordings', () => recorder.stop());
    // This process as one instance on the store: closes only what dead instances left, never a live
    // instance's. Lost ones (found now or later) are audited and their recordings recovered, so it
    // comes after the audit log and the recorder.
    const openSessions = async () => new Set((await store.listSessions({ active: true })).map((s) => s.id));
    const instance = new InstanceRegistry({
      repo: store.instances,
      clock,
      log,
      audit: auditModule.log,
      recover: async (lost) => {
        void recorder.service
          .recoverOrphans({ instances: [lost.instance.id] }, lost.reason)
          .catch((err: unknown) =>
            log.error({ err, instance: lost.instance.id }, 'cannot recover the recordings of a lost gateway instance'),
          );
        reviewService.closeOrphans(await openSessions());
        await store.instances.forgetRequestsOf(lost.instance.id);
      },
      // Its sessions were closed in the store and their recordings recovered by another instance.
      declaredLost: () =>
        registry.killAll('instance_lost', 'jitgate: this gateway instance was out of touch and its sessions were closed; reconnect'),
    });
    await instance.start();
    shutdown.add('instance', () => instance.close());
    // What other instances change in the store and this one acts on: revoked grants, decided
    // reviews, kills of sessions served here. (Stopped before the services it calls close.)
    const sessionKills = new SessionKills({
      repo: store.instances,
      self: instance.id,
      clock,
      log,
      killHere: (id, by, reason) => recorder.service.kill(id, by, reason),
    });
    const cancelKeys = new CancelKeys({
      repo: store.instances,
      self: instance.id,
      clock,
      log,
      cancelHere: (protocol, pid, secret) => registry.cancelQuery(protocol, pid, secret),
    });
    // Requests, grants and reviews made through other instances, for this one's console streams.
    const eventsFromOthers = await EventsFromOthers.open(auditModule.log, {
      request: (id) => accessRepo.getRequest(id),
      grant: (id) => accessRepo.getGrant(id),
      review: (id) => reviewRepo.get(id),
    });
    // Agents' quotas and sign-in limits count what every instance let through.
    const usage = new SharedUsage({ repo: store.instances, self: instance.id, clock });
    const catchUp = new StoreCatchUp({
      log,
      readers: [
        usage,
        eventsFromOthers,
        { name: 'revocations', catchUp: () => accessService.catchUpRevocations() },
        { name: 'reviews', catchUp: () => reviewService.catchUpDecisions() },
        { name: 'kills', catchUp: () => sessionKills.catchUp() },
        { name: 'cancels', catchUp: () => cancelKeys.catchUp() },
      ],
    });
    catchUp.start();
    shutdown.add('catch-up', () => {
      catchUp.stop();
      eventsFromOthers.stop();
    });
    // The sessions it closed that no instance owned get their real end back from their recordings,
    // and what those sessions held for approval is closed (a live instance's is left alone).
    await recorder.service.recoverOrphans({ unowned: true });
    reviewService.closeOrphans(await openSessions());
    // Backend credentials per session. After the instance: the janitor's first sweep drops the
    // per-session roles of sessions a gone process left, which must be closed by then.
    const sessionCredentials = new SessionCredentials({
      connections: config.connections,
      targets,
      database: store.database,
      clock,
      log,
      liveSessions: openSessions,
    });
    shutdown.add('credentials', () => sessionCredentials.close());
    // Agents' quotas: the statement rate binds every session of a matching identity, whatever client it uses.
    const quotas = new AgentQuotas((config.agents ?? AGENT_DEFAULTS).limits, now, usage);
    const sessions = new SessionService(store, metrics, log, now, {
      grants: accessService,
      clock,
      guardrails: config.guardrails,
      instanceId: instance.id,
      statementGate: (user, groups) => quotas.statementGate(user, groups),
      // What masking applies to a session; its protocol's listener builds the masker from it.
      ...(maskingModule ? { masking: (s: Parameters<MaskingModule['scope']>[0]) => maskingModule.scope(s) } : {}),
      reviews: { rules: config.reviews ?? [], service: reviewService },
      terminate: killAnywhere,
    });
    shutdown.add('session-ends', () => sessions.close());
    /** A failed client login on any listener: counted, stored, throttled, audited or summarised (identity/failed-logins.ts). */
    const failures = failedLogins({
      clock,
      log,
      audit: auditModule.log,
      count: (protocol, reason) => metrics.authFailuresTotal.inc({ protocol, reason }),
      store: (row) => store.recordAuthFailure(row),
      ...(options.loginThrottle ? { throttle: options.loginThrottle } : {}),
    });
    shutdown.add('login-failures', () => failures.close());
    const authFailed = (protocol: Protocol, info: FailedLoginInfo) => failures.failed(protocol, info);
    const sessionTokens = new SessionTokens({
      repo: accessRepo,
      revokeToken: (id, at) => store.revokeToken(id, at),
      audit: auditModule.log,
      clock,
      log,
    });
    // What every protocol listener is given: its own connections, sessions through the recorder
    // and the session service, and the session's backend credential, valid until its access ends.
    const targetFor = (protocol: Protocol) => (name: string) => (targets.get(name)?.protocol === protocol ? targets.get(name) : undefined);
    const openSessionFor = (protocol: Protocol) => async (info: Omit<OpenSessionInput, 'protocol'>) => {
      // Signed in: its address and user name start afresh in the failed-login throttle.
      failures.succeeded(info.clientAddress, info.user);
      // A single-session token is claimed here and revoked when its session ends (access/session-tokens.ts).
      return sessionTokens.open({ ...info, protocol }, async () =>
        backendHealth.observe(
          await recorder.service.open({ ...info, protocol }, () => sessions.open({ ...info, protocol })),
          info.connection,
        ),
      );
    };
    const acquireBackend = async (r: { sessionId: string; user: string; connection: string; tokenId: string }) =>
      sessionCredentials.createFor(r.connection, {
        sessionId: r.sessionId,
        user: r.user,
        validUntil:
          (await accessService.grantForToken(r.tokenId))?.expiresAt ?? (await accessEnd(store, r.user, r.connection, r.tokenId, now())),
      });
    await registry.start(
      config.listeners,
      (protocol, at) => ({
        host: at.host,
        port: at.port,
        tls: { context: secureContext, certificateDer },
        tlsRequired: config.tls.required,
        verifier,
        connections: config.connections,
        resolveTarget: targetFor(protocol),
        openSession: openSessionFor(protocol),
        acquireBackend,
        onAuthFailure: (info) => authFailed(protocol, info),
        onBackendConnect: (connection, seconds) => {
          backendHealth.connected(connection);
          metrics.backendConnectSeconds.observe({ protocol, connection }, seconds);
        },
        cancelKeys: cancelKeys.of(protocol),
        log,
      }),
      (protocol, address) => log.info({ address }, `${protocol} listener up`),
    );
    // Routes of the services above, then the console and the agents' endpoint on the same router.
    const reviewRoutes = registerReviewRoutes(router, reviewService);
    shutdown.add('streams', () => reviewRoutes.stop());
    const accessRoutes = registerAccessRoutes(router, {
      access: accessService,
      connections: config.connections,
      connectInstructions: (protocol, session) => registry.connectInstructions(protocol, session),
    });
    shutdown.add('streams', () => accessRoutes.stop());
    const recordingRoutes = registerRecordingRoutes(router, {
      recording: recorder.service,
      audit: auditModule.log,
      // Through the access service, which holds the identity module's admin check.
      isAdmin: (who) => accessService.isAdmin(who),
      auditors: auditModule.config.auditors,
      now,
      kill: (session, by, reason) => sessionKills.kill(session, by, reason),
    });
    shutdown.add('streams', () => recordingRoutes.stop());
    // Browser sign-in and CSRF, roles, audit and admin reads, live events, OpenAPI, the web console.
    const api = registerConsoleApi(router, {
      config,
      identity: identity.service,
      access: accessService,
      audit: auditModule.log,
      signer: auditModule.signer,
      auditors: auditModule.config.auditors,
      secretNames: () => secrets.list(),
      postgres: () => registry.address('postgres'),
      tlsRequired: config.tls.required,
      publicOrigin,
      log,
      now,
      accessEvents: allOf(accessService.events, eventsFromOthers.access),
      signInsElsewhere: usage,
    });
    shutdown.add('streams', () => api.stop());

    // The console's Overview: activity per connection, refusals and holds by rule, time to approval.
    registerStatsRoutes(router, {
      access: accessRepo,
      reviews: reviewRepo,
      recording: recorder.service,
      audit: auditModule.log,
      roles: api.roles,
      now,
    });

    registerCredentialRoutes(router, { rotation: credentialRotation, roles: api.roles });

    // Policy review: `jitgate policy test` (the data path's own decision code) and the masking report.
    const identities = new IdentityRepository(store.database);
    registerPolicyRoutes(router, {
      tester: new PolicyTester({
        config,
        ...(maskingModule ? { masking: maskingModule } : {}),
        lastSignIn: (user) => {
          const last = identities.lastFamilyOf(user);
          return last && { groups: last.groups, at: last.refreshedAt, issuer: last.issuer };
        },
        log,
      }),
      recording: recorder.service,
      roles: api.roles,
      now,
    });

    // The listeners' certificate, for clients that verify it (`jitgate ca`).
    registerTlsRoutes(router, { certificate: certificate.cert, generated: certificate.generated });

    // AI agents: MCP at /mcp, their SQL through the PostgreSQL listener above like any client.
    const gatewayCertificate = certificate.cert;
    const mcp = startMcp({
      config,
      quotas,
      router,
      identity: identity.service,
      access: accessService,
      store,
      reviews: reviewService,
      endpoint: (protocol) => {
        const at = registry.address(protocol);
        return at && { host: loopbackFor(at.host), port: at.port, certificate: gatewayCertificate };
      },
      log,
    });
    shutdown.add('agents', () => mcp.close());

    const http = await startHttpServer({
      fallback: async (req, res) => (await router.handle(req, res)) || api.serveConsole(req, res),
      host: config.listeners.http.host,
      port: config.listeners.http.port,
      metrics,
      metricsAccess:
        config.metrics.auth === 'none'
          ? { auth: 'none' }
          : {
              auth: 'token',
              token: config.metrics.token === undefined ? undefined : await resolveSecret(config.metrics.token),
            },
      logger: log,
      ready: async () => {
        const reasons: string[] = [];
        if (shutdown.started) reasons.push('draining');
        if (!(await store.ping())) reasons.push('store_unreachable');
        // Blind to what other instances change (revocations among them): no new sessions here.
        const failing = catchUp.failing;
        if (failing.length > 0) reasons.push('catch_up_failing');
        reasons.push(...registry.notReady());
        // A backend that is down is reported, not a reason to be unready: the other connections serve.
        return {
          ok: reasons.length === 0,
          reasons,
          details: {
            instance: instance.id,
            catchUp: { failing },
            backends: backendHealth.snapshot(),
            // Reported, not a reason to be unready: every instance would leave the balancer over an
            // object store outage that loses nothing (recordings wait on the disk, retried).
            ...(recorder.uploads ? { recordingUploads: recorder.uploads.status() } : {}),
          },
        };
      },
    });
    shutdown.add('http', () => http.close());
    httpBound.address = http.address;
    await identity.listening(http.address);
    publishReviewEvents(reviewService, api.live, allOf(reviewService.events, eventsFromOthers.reviews));

    let closing: Promise<void> | undefined;
    return {
      addresses: { http: http.address, ...registry.addresses() },
      store,
      metrics,
      router,
      access: accessService,
      identity: identity.service,
      listeners: registry.listeners(),
      credentials: sessionCredentials,
      rotation: credentialRotation,
      recording: recorder.service,
      audit: auditModule.log,
      live: api.live,
      reviews: reviewService,
      close: () => {
        closing ??= (async () => {
          log.info('gateway shutting down');
          await shutdown.run();
          log.info('gateway stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}

/**
 * Fallback end of a session's access when its token has no grant: the token's own expiry. Bounds
 * how long a per-session backend role can log in (normally the grant's end is used).
 */
async function accessEnd(store: Store, user: string, connection: string, tokenId: string, now: number): Promise<number> {
  const token = (await store.activeTokens(user, connection, now)).find((t) => t.id === tokenId);
  if (!token) throw new GatewayError('auth_failed', 'the access token expired while connecting');
  return token.expiresAt;
}

/** Webhook secrets are references like backend passwords; resolved once at startup. */
async function resolveWebhooks(config: GatewayConfig, resolveSecret: (ref: string) => Promise<string>): Promise<WebhookTarget[]> {
  return Promise.all(
    config.notifications.webhooks.map(async ({ secret, ...w }) => ({
      ...w,
      ...(secret !== undefined ? { secret: await resolveSecret(secret) } : {}),
    })),
  );
}

async function resolveTargets(config: GatewayConfig, resolveSecret: (ref: string) => Promise<string>): Promise<Map<string, BackendTarget>> {
  const targets = new Map<string, BackendTarget>();
  for (const c of config.connections) {
    if (c.type !== 'postgres' && c.type !== 'mysql' && c.type !== 'redis') continue;
    targets.set(c.name, {
      connection: c.name,
      protocol: c.type,
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password === undefined ? undefined : await resolveSecret(c.password),
      tls: { ...c.tls, ca: c.tls.ca === undefined ? undefined : await readCa(c.name, c.tls.ca) },
      connectTimeoutMs: c.connectTimeoutMs,
    });
  }
  return targets;
}

async function readCa(connection: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`connection "${connection}": cannot read tls.ca ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
      cause: err,
    });
  }
}

/** Where the gateway reaches its own listener: a wildcard bind address is reached on loopback. */
function loopbackFor(host: string): string {
  return host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
}
