/**
 * The validated, defaults-applied configuration the rest of the gateway sees. The YAML schema
 * (./schema.ts) produces this; secret references stay references until a consumer resolves them.
 */
import type { BackendTlsMode, Protocol } from '../core/types.js';
import type { PolicyRule } from '../policy/access.js';
import type { AuditConfig, RecordingConfig } from './recording.js';
import type { GuardrailRule } from '../policy/guardrails.js';
import type { MaskingConfig } from '../masking/policy.js';
import type { AgentsConfig } from './agents.js';
import type { ReviewRule } from '../policy/review-rules.js';

/** `env:NAME`, `file:PATH` or `secret:NAME` (the gateway's encrypted secret store). */
export type SecretRef = string;

export interface ListenerConfig {
  host: string;
  port: number;
}

export interface ConnectionConfig {
  name: string;
  type: Protocol;
  host: string;
  port: number;
  database: string;
  /** Backend user the gateway logs in as. */
  user: string;
  /** Reference to the backend password; absent for trust auth. */
  password?: SecretRef;
  tls: { mode: BackendTlsMode; ca?: string; servername?: string };
  connectTimeoutMs: number;
  /** How sessions log in to the backend; absent means static (the stored user above). */
  credentials?: ConnectionCredentialsConfig;
  /** `credentials.rotate`: the gateway changes its own backend password this often. */
  rotation?: { everyMs: number };
  /** MySQL: LOAD DATA LOCAL INFILE allowed (default: refused). */
  localInfile?: boolean;
  /** Sessions per access token on this connection (default: auth.tokenUse). */
  tokenUse?: TokenUse;
}

/** `session`: a token opens one data session and is revoked when it ends; `grant`: logins until its TTL. */
export type TokenUse = 'session' | 'grant';

/**
 * `static`: every session uses the stored credential. `ephemeral`: the stored user (which needs
 * CREATEROLE) makes a role per session, `<rolePrefix><short session id>`, member of `roles`,
 * valid until the session's access ends, and drops it when the session ends.
 */
export type ConnectionCredentialsConfig =
  | { mode: 'static' }
  | { mode: 'ephemeral'; roles: string[]; rolePrefix: string; /** Redis: the session user's ACL rules. */ acl?: string[] };

/** One OpenID Connect issuer whose users and service accounts the gateway accepts. */
export interface OidcIssuerConfig {
  /** Short name used by `jitgate login --issuer NAME` and in logs. */
  name: string;
  /** Issuer URL exactly as in the discovery document (`<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  /** The gateway's OAuth client at the IdP (logins); also the default audience. */
  clientId: string;
  /** Reference to the client secret; absent for a public client (PKCE only). */
  clientSecret?: SecretRef;
  /** `aud` that bearer access tokens (users' and service accounts') must carry. */
  audience: string;
  /** Claim holding the user's groups. */
  groupsClaim: string;
  /** Claim naming the user; absent: preferred_username, then email, then sub. */
  userClaim?: string;
  /** Claim value -> jitgate groups. Values not listed pass through unchanged. */
  groupMap: Record<string, string[]>;
  /** Client-credentials clients accepted as service accounts: client_id -> name and groups. */
  serviceAccounts: Record<string, { name: string; groups: string[] }>;
  /** Scopes requested at login. */
  scopes: string[];
  /** Least time between two JWKS downloads triggered by a token with an unknown key id. */
  jwksCooldownMs: number;
}

/** A user of the built-in development identity provider (embedded default, or `identities.dev`). */
export interface DevIdpUser {
  user: string;
  password: string;
  displayName: string;
  email: string;
  groups: string[];
}

/**
 * The built-in development identity provider: the embedded default, or `identities: { dev: true }`,
 * which `config check` refuses unless `development: true`, so a real deployment never runs a
 * password-in-memory IdP.
 */
export interface DevIdpConfig {
  users: DevIdpUser[];
  /** A client-credentials client for trying agents and automation. */
  agent: { clientId: string; clientSecret: string; name: string; groups: string[] };
}

/** One SAML 2.0 identity provider (`identities.saml`): SP-initiated Web Browser SSO. */
export interface SamlProviderConfig {
  /** Short name: `jitgate login --issuer NAME`, the console's sign-in button, /api/auth/saml/NAME/... */
  name: string;
  /** The IdP's metadata: an https:// (or loopback http://) URL, or an absolute file path. */
  metadata: { url: string } | { file: string };
  /** The gateway's entity ID at this IdP; absent: `<publicUrl>/api/auth/saml/NAME/metadata`. */
  entityId?: string;
  /** Attribute naming the user; absent: the assertion's NameID. */
  userAttribute?: string;
  /** Attribute holding the user's groups. */
  groupsAttribute: string;
  /** Attribute value -> jitgate groups. Values not listed pass through unchanged (as for OIDC). */
  groupMap: Record<string, string[]>;
  /** Which signature the gateway requires: on the assertion, on the whole response, or both. */
  requireSigned: 'assertion' | 'response' | 'both';
  /** Tolerated clock difference with the IdP for NotBefore / NotOnOrAfter. */
  clockSkewMs: number;
  /** How long a SAML sign-in lasts before the user goes back through the IdP (SAML has no refresh token). */
  signInTtlMs: number;
}

export interface IdentitiesConfig {
  oidc: OidcIssuerConfig[];
  /** SAML 2.0 identity providers (absent: none); their names share one namespace with the OIDC issuers. */
  saml?: SamlProviderConfig[];
  /** Members of these groups administer the gateway (API keys, revoking anything). */
  admins: { groups: string[] };
  /** Gateway sessions issued after an OIDC login. */
  session: {
    /** Lifetime of one session token (`jgs_`); the CLI refreshes it silently. */
    ttlMs: number;
    /** How long one login lasts at most: refresh tokens (`jgr_`) stop working this long after it. */
    refreshTtlMs: number;
  };
  devIdp?: DevIdpConfig;
}

export interface GatewayConfig {
  /** Path of the file it came from, or '<embedded default>'. */
  source: string;
  /** Development mode relaxes "TLS required" on client listeners. */
  development: boolean;
  dataDir: string;
  listeners: {
    /** publicUrl: the gateway's origin as browsers and IdPs reach it (redirect URIs, links). */
    http: ListenerConfig & { publicUrl?: string };
    postgres?: ListenerConfig;
    /** MySQL/MariaDB clients (protocol 10); on when configured or when a mysql connection exists. */
    mysql?: ListenerConfig;
    /** Redis clients (RESP2/RESP3, TLS or plain on one port); on when configured or when a redis connection exists. */
    redis?: ListenerConfig;
  };
  /** Who may read /metrics: anyone, or a bearer of the token (refused when none is configured). */
  metrics: { auth: 'none' | 'token'; token?: SecretRef };
  tls: {
    /** PEM file paths; when absent a self-signed pair is generated under dataDir on first start. */
    cert?: string;
    key?: string;
    /** Refuse clients that do not use TLS (always true outside development mode). */
    required: boolean;
  };
  auth: {
    /** Client authentication methods on native listeners, in preference order. */
    postgres: { methods: Array<'scram-sha-256' | 'cleartext'> };
    /** Default lifetime of minted access tokens. */
    tokenTtlMs: number;
    /** Default sessions per access token (a connection may override it). */
    tokenUse: TokenUse;
  };
  store: { type: 'sqlite'; path: string };
  connections: ConnectionConfig[];
  /** Who may connect: OIDC issuers, service accounts, admins, gateway sessions (./identities.ts). */
  identities: IdentitiesConfig;
  /** Session recording (./recording.ts); absent in configurations built in code = the defaults. */
  recording?: RecordingConfig;
  /** Audit log: auditors, checkpoint signing (./recording.ts); absent = the defaults. */
  audit?: AuditConfig;
  /** Access policies (first match in file order decides a request; see policy/access.ts). */
  policies: PolicyRule[];
  /** Deny rules over parsed statements (./guardrails.ts); absent = none. */
  guardrails?: GuardrailRule[];
  /** Result masking rules and content detectors (./masking.ts); absent = nothing is masked. */
  masking?: MaskingConfig;
  /** Statements held in the session until people approve them (./reviews.ts); absent = none. */
  reviews?: ReviewRule[];
  /** MCP endpoint defaults and agents' quotas (./agents.ts); absent in configs built in code = the defaults. */
  agents?: AgentsConfig;
  /** Where request, approval, denial, revocation and break-glass events are sent. */
  notifications: { webhooks: WebhookConfig[] };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  shutdown: { drainTimeoutMs: number };
}

/** `review`: a statement is held for approval; `review_decision`: a held statement was approved, denied, timed out or withdrawn. */
export type NotificationEventKind =
  'request' | 'approval' | 'denial' | 'revocation' | 'break_glass' | 'expiry' | 'review' | 'review_decision' | 'escalation';

export interface WebhookConfig {
  name: string;
  url: string;
  /** HMAC-SHA256 key reference; without it deliveries are unsigned (e.g. a Slack incoming webhook). */
  secret?: SecretRef;
  /** `json`: the event as JSON; `slack`: `{"text": ...}` for Slack-compatible incoming webhooks. */
  format: 'json' | 'slack';
  events: NotificationEventKind[];
  timeoutMs: number;
  /** Delivery attempts in all (the first plus retries with exponential backoff). */
  maxAttempts: number;
  initialBackoffMs: number;
}
