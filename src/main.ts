/**
 * The composition root: builds every part from a validated configuration and wires them together.
 * Nothing else in the gateway constructs services.
 */
import { X509Certificate } from 'node:crypto';
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
import { registerAccessRoutes, type AccessRoutes } from './api/access-routes.js';
import { registerPolicyRoutes } from './api/policy-routes.js';
import { registerTlsRoutes } from './api/tls-routes.js';
import { registerRecordingRoutes, type RecordingRoutes } from './api/recording-routes.js';
import { publishReviewEvents, registerReviewRoutes, type ReviewRoutes } from './api/review-routes.js';
import { registerConsoleApi, type ConsoleApi } from './api/console-api.js';
import { registerStatsRoutes } from './api/stats-routes.js';
import type { LiveHub } from './api/live-routes.js';
import type { AuditLog } from './audit/log.js';
import { startHttpServer, type HttpServerHandle } from './api/http.js';
import { Router } from './api/router.js';
import type { GatewayConfig } from './config/types.js';
import { systemClock, type Clock } from './core/clock.js';
import { GatewayError } from './core/errors.js';
import type { BackendTarget, Protocol, SessionEndReason } from './core/types.js';
import { resolveSecretRef } from './credentials/refs.js';
import { SecretStore } from './credentials/secret-store.js';
import { SessionCredentials } from './credentials/session-credentials.js';
import { CredentialRotation } from './credentials/rotation/service.js';
import { registerCredentialRoutes } from './api/credential-routes.js';
import { IdentityRepository } from './identity/repository.js';
import type { IdentityService } from './identity/service.js';
import { failedLogins, type FailedLoginInfo, type FailedLogins } from './identity/failed-logins.js';
import type { LoginThrottleOptions } from './identity/login-throttle.js';
import { startIdentity } from './api/identity-wire.js';
import { createLogger, type Logger } from './obs/log.js';
import { WebhookNotifier, type WebhookTarget } from './notify/webhooks.js';
import { BackendHealth } from './obs/backend-health.js';
import { createMetrics, type Metrics } from './obs/metrics.js';
import { ProtocolRegistry, type ProtocolListener } from './core/protocol-engine.js';
import { postgresEngine } from './protocols/postgres/engine.js';
import { mysqlEngine } from './protocols/mysql/engine.js';
import { redisEngine } from './protocols/redis/engine.js';
import { RedisReplyMasker } from './protocols/redis/masking.js';
import type { RecordingService } from './recording/service.js';
import { startRecording, type RecordingModule } from './recording/wire.js';
import { startAudit, type AuditModule } from './audit/wire.js';
import { auditAccessEvents } from './access/audit.js';
import { PolicyTester } from './session/explain.js';
import { SessionService, type OpenSessionInput } from './session/service.js';
import { auditReviewEvents } from './review/audit.js';
import { notifyReviewEvents } from './review/notify.js';
import { ReviewRepository } from './review/repository.js';
import { ReviewService } from './review/service.js';
import { AGENT_DEFAULTS } from './config/agents.js';
import { AgentQuotas } from './mcp/quota.js';
import { startMcp, type McpModule } from './mcp/wire.js';
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
  const now = options.now ?? (options.clock ? () => options.clock!.now() : Date.now);
  const store = openSqliteStore(config.store.path);
  // With only `now` injected, timers still run in real time, offset to that clock's notion of now.
  const clock: Clock =
    options.clock ?? (options.now ? { now, at: (at, fn) => systemClock.at(Date.now() + (at - now()), fn) } : systemClock);
  let protocols: ProtocolRegistry | undefined;
  let credentials: SessionCredentials | undefined;
  let rotation: CredentialRotation | undefined;
  let http: HttpServerHandle | undefined;
  let access: AccessService | undefined;
  let notifier: WebhookNotifier | undefined;
  let accessRoutes: AccessRoutes | undefined;
  let recording: RecordingModule | undefined;
  let audit: AuditModule | undefined;
  let recordingRoutes: RecordingRoutes | undefined;
  let consoleApi: ConsoleApi | undefined;
  let reviews: ReviewService | undefined;
  let sessionService: SessionService | undefined;
  let reviewRoutes: ReviewRoutes | undefined;
  let mcp: McpModule | undefined;
  let masking: MaskingModule | undefined;
  let loginFailures: FailedLogins | undefined;
  let draining = false;
  // Listeners drain first, then HTTP stops, then the store they write to closes.
  const shutdown = async () => {
    draining = true;
    accessRoutes?.stop();
    recordingRoutes?.stop();
    consoleApi?.stop();
    reviewRoutes?.stop();
    // No rotation starts from here on; one in progress finishes (its backend logins are short).
    await rotation?.stop();
    // Agents' data sessions are clients of the listener: they end before it drains.
    await mcp?.close();
    await protocols?.close(config.shutdown.drainTimeoutMs);
    // Ended sessions are still closing their recordings (final digest to the audit log).
    await recording?.stop();
    // Session end rows the store could not take yet get a last try (the next start reconciles the rest).
    sessionService?.close();
    // Ended sessions are still dropping their roles; the store must outlive that.
    await credentials?.close();
    await masking?.close();
    // Throttled failed logins not yet summarised go to the audit log before the store closes.
    loginFailures?.close();
    await http?.close();
    access?.close();
    // Sessions are gone by now (each withdrew what it held); this only stops timers.
    reviews?.close();
    notifier?.close();
    // Everything that appends has stopped: sign the audit log's head last.
    audit?.stop();
    store.close();
  };
  try {
    // Sessions an earlier process left open ended with it; recording recovery below restores their
    // real end time and counters from their recordings.
    const orphans = store.closeOrphanSessions(now(), 'gateway_crashed');
    if (orphans > 0) log.warn({ sessions: orphans }, 'closed sessions left open by an earlier gateway process');

    const targets = await resolveTargets(config, store, options.env ?? process.env);
    credentials = new SessionCredentials({
      connections: config.connections,
      targets,
      database: store.database,
      clock,
      log,
      liveSessions: () => new Set(store.listSessions({ active: true }).map((s) => s.id)),
    });
    const sessionCredentials = credentials;
    const certificate = await ensureCertificate(config.dataDir, { cert: config.tls.cert, key: config.tls.key });
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
    const tokens = new TokenAuthority(store);
    const accessRepo = new AccessRepository(store.database);
    const accessService = (access = new AccessService({
      repo: accessRepo,
      store,
      policies: config.policies,
      connections: config.connections.map((c) => c.name),
      clock,
      log,
      tokenTtlMs: config.auth.tokenTtlMs,
      tokenUse: (name) => config.connections.find((c) => c.name === name)?.tokenUse ?? config.auth.tokenUse,
    }));
    accessService.start();
    // The audit log: recordings, reviews, access, logins and tokens all append to it.
    const auditModule = (audit = startAudit({ config, db: store.database, clock, log }));
    auditAccessEvents(accessService.events, auditModule.log, log);
    // The gateway's own backend passwords: rotated on schedule or on request, in place in `targets`.
    const credentialRotation = (rotation = new CredentialRotation({
      connections: config.connections,
      targets,
      secrets: new SecretStore(store, { env: options.env ?? process.env }),
      database: store.database,
      clock,
      log,
      audit: auditModule.log,
      registry: metrics.registry,
    }));
    credentialRotation.start();
    const recorder = (recording = startRecording({
      config,
      db: store.database,
      audit: auditModule.log,
      clock,
      log,
      grants: accessService,
      sessions: { reconcile: (id, endedAt, reason, counters) => store.reconcileSession(id, endedAt, reason, counters) },
    }));
    // Deliveries not yet done are kept in the store and sent again after a restart.
    notifier = new WebhookNotifier({
      webhooks: await resolveWebhooks(config, store, options.env ?? process.env),
      clock,
      log,
      outbox: new SqliteDeliveryOutbox(store.database),
    });
    notifier.attach(accessService.events);
    notifier.resume();
    // Statements held for approval: stored, audited, notified; what an earlier process left pending is closed.
    const reviewRepo = new ReviewRepository(store.database);
    const reviewService = (reviews = new ReviewService({ repo: reviewRepo, clock, log }));
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
    reviewService.start();
    const verifier = new GrantAwareVerifier(tokens, accessRepo, now);
    // The statement parser (WebAssembly) loads once; guardrails refuse what it cannot analyse.
    await loadPostgresParser();
    const maskingEnv = options.env ?? process.env;
    masking = await startMasking({
      config: config.masking,
      targets,
      dataDir: config.dataDir,
      resolveSecret: (ref) => resolveSecretRef(ref, { secretStore: new SecretStore(store, { env: maskingEnv }), env: maskingEnv }),
    });
    const maskingModule = masking;
    // Agents' quotas: the statement rate binds every session of a matching identity, whatever client it uses.
    const quotas = new AgentQuotas((config.agents ?? AGENT_DEFAULTS).limits, now);
    const sessions = (sessionService = new SessionService(store, metrics, log, now, {
      grants: accessService,
      clock,
      guardrails: config.guardrails,
      statementGate: (user, groups) => quotas.statementGate(user, groups),
      ...(maskingModule ? { masking: (s: Parameters<MaskingModule['forSession']>[0]) => maskingModule.forSession(s) } : {}),
      reviews: { rules: config.reviews ?? [], service: reviewService },
    }));
    /** A failed client login on any listener: counted, stored, throttled, audited or summarised (identity/failed-logins.ts). */
    const failures = (loginFailures = failedLogins({
      clock,
      log,
      audit: auditModule.log,
      count: (protocol, reason) => metrics.authFailuresTotal.inc({ protocol, reason }),
      store: (row) => store.recordAuthFailure(row),
      ...(options.loginThrottle ? { throttle: options.loginThrottle } : {}),
    }));
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
    const openSessionFor = (protocol: Protocol) => (info: Omit<OpenSessionInput, 'protocol'>) => {
      // Signed in: its address and user name start afresh in the failed-login throttle.
      failures.succeeded(info.clientAddress, info.user);
      // A single-session token is claimed here and revoked when its session ends (access/session-tokens.ts).
      return sessionTokens.open({ ...info, protocol }, () =>
        backendHealth.observe(
          recorder.service.open({ ...info, protocol }, () => sessions.open({ ...info, protocol })),
          info.connection,
        ),
      );
    };
    const acquireBackend = (r: { sessionId: string; user: string; connection: string; tokenId: string }) =>
      sessionCredentials.createFor(r.connection, {
        sessionId: r.sessionId,
        user: r.user,
        validUntil: accessService.grantForToken(r.tokenId)?.expiresAt ?? accessEnd(store, r.user, r.connection, r.tokenId, now()),
      });
    // One registration per protocol: the engine and what only that protocol needs.
    const registry = (protocols = new ProtocolRegistry([
      postgresEngine({ authMethods: config.auth.postgres.methods }),
      mysqlEngine(),
      redisEngine({
        // Key and hash-field masking and detectors, for the groups the session's grant carries.
        maskerFor: (s) => {
          const policy = maskingModule?.redisPolicy(s.connection, accessService.grantForToken(s.tokenId)?.groups ?? []);
          return policy ? new RedisReplyMasker(policy) : null;
        },
      }),
    ]));
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
        log,
      }),
      (protocol, address) => log.info({ address }, `${protocol} listener up`),
    );
    // Kills and ended grants reach whichever listener holds the session.
    const killAnywhere = (id: string, reason: SessionEndReason, message: string) => registry.kill(id, reason, message);
    sessions.setTerminator(killAnywhere);
    recorder.service.setKiller(killAnywhere);

    // API routes are added by the services that own them (identity, access, ...).
    const router = new Router();
    const env = options.env ?? process.env;
    const identity = await startIdentity({
      config: config.identities,
      db: store.database,
      router,
      clock,
      log,
      resolveSecret: (ref) => resolveSecretRef(ref, { secretStore: new SecretStore(store, { env }), env }),
    });
    accessService.setAdminCheck((who) => identity.service.isAdmin(who));
    reviewService.setAdminCheck((who) => identity.service.isAdmin(who));
    reviewRoutes = registerReviewRoutes(router, reviewService);
    accessRoutes = registerAccessRoutes(router, {
      access: accessService,
      connections: config.connections,
      connectInstructions: (protocol, session) => registry.connectInstructions(protocol, session),
    });
    recordingRoutes = registerRecordingRoutes(router, {
      recording: recorder.service,
      audit: auditModule.log,
      // Through the access service, which holds the identity module's admin check.
      isAdmin: (who) => accessService.isAdmin(who),
      auditors: auditModule.config.auditors,
      now,
    });
    // Browser sign-in and CSRF, roles, audit and admin reads, live events, OpenAPI, the web console.
    const api = (consoleApi = registerConsoleApi(router, {
      config,
      identity: identity.service,
      access: accessService,
      audit: auditModule.log,
      signer: auditModule.signer,
      auditors: auditModule.config.auditors,
      secretNames: () => new SecretStore(store, { env }).list(),
      postgres: () => registry.address('postgres'),
      tlsRequired: config.tls.required,
      httpAddress: () => http?.address,
      log,
      now,
    }));

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
    mcp = startMcp({
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

    http = await startHttpServer({
      fallback: async (req, res) => (await router.handle(req, res)) || api.serveConsole(req, res),
      host: config.listeners.http.host,
      port: config.listeners.http.port,
      metrics,
      metricsAccess:
        config.metrics.auth === 'none'
          ? { auth: 'none' }
          : {
              auth: 'token',
              token:
                config.metrics.token === undefined
                  ? undefined
                  : await resolveSecretRef(config.metrics.token, { secretStore: new SecretStore(store, { env }), env }),
            },
      logger: log,
      ready: () => {
        const reasons: string[] = [];
        if (draining) reasons.push('draining');
        if (!store.ping()) reasons.push('store_unreachable');
        reasons.push(...registry.notReady());
        // A backend that is down is reported, not a reason to be unready: the other connections serve.
        return { ok: reasons.length === 0, reasons, details: { backends: backendHealth.snapshot() } };
      },
    });
    await identity.listening(http.address);
    // Held clients are told where to approve: the console's page of the review.
    reviewService.setConsoleBase(config.listeners.http.publicUrl ?? http.address);
    publishReviewEvents(reviewService, api.live);

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
          await shutdown();
          log.info('gateway stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/**
 * Fallback end of a session's access when its token has no grant: the token's own expiry. Bounds
 * how long a per-session backend role can log in (normally the grant's end is used).
 */
function accessEnd(store: Store, user: string, connection: string, tokenId: string, now: number): number {
  const token = store.activeTokens(user, connection, now).find((t) => t.id === tokenId);
  if (!token) throw new GatewayError('auth_failed', 'the access token expired while connecting');
  return token.expiresAt;
}

/** Webhook secrets are references like backend passwords; resolved once at startup. */
async function resolveWebhooks(config: GatewayConfig, store: Store, env: NodeJS.ProcessEnv): Promise<WebhookTarget[]> {
  const secretStore = new SecretStore(store, { env });
  return Promise.all(
    config.notifications.webhooks.map(async ({ secret, ...w }) => ({
      ...w,
      ...(secret !== undefined ? { secret: await resolveSecretRef(secret, { secretStore, env }) } : {}),
    })),
  );
}

async function resolveTargets(config: GatewayConfig, store: Store, env: NodeJS.ProcessEnv): Promise<Map<string, BackendTarget>> {
  const secretStore = new SecretStore(store, { env });
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
      password: c.password === undefined ? undefined : await resolveSecretRef(c.password, { secretStore, env }),
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
