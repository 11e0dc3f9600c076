/**
 * The validated, defaults-applied configuration the rest of the gateway sees. The YAML schema
 * (./schema.ts) produces this; secret references stay references until a consumer resolves them.
 */
import type { BackendTlsMode, Protocol } from '../core/types.js';

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
}

export interface GatewayConfig {
  /** Path of the file it came from, or '<embedded default>'. */
  source: string;
  /** Development mode relaxes "TLS required" on client listeners. */
  development: boolean;
  dataDir: string;
  listeners: {
    http: ListenerConfig;
    postgres?: ListenerConfig;
  };
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
  };
  store: { type: 'sqlite'; path: string };
  connections: ConnectionConfig[];
  /** Filled by the identity issue (OIDC issuers, service accounts). Kept as validated raw objects. */
  identities: Record<string, unknown>;
  /** Filled by the policy issues. */
  policies: unknown[];
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  shutdown: { drainTimeoutMs: number };
}
