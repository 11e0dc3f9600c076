/** Types for ./pg-harness.mjs (plain JS so the benchmark runs it without a build). */
import type { ClientConfig, QueryResult, QueryResultRow } from 'pg';
import type { SpawnOptions } from 'node:child_process';

export interface PgCredential {
  user: string;
  password: string;
}

/** One role per backend auth method, as written into the harness's pg_hba.conf (TCP, 127.0.0.1). */
export interface PgUsers {
  /** `host ... scram-sha-256` */
  scram: PgCredential;
  /** `host ... md5`, with an md5-hashed stored password (so the server really asks for md5). */
  md5: PgCredential;
  /** `host ... password` (cleartext). */
  plain: PgCredential;
  /** `host ... trust`: any or no password is accepted. */
  trust: PgCredential;
  /** `hostssl ... scram-sha-256`; a non-TLS connection is rejected. */
  tls: PgCredential;
}

export type PgUserKey = keyof PgUsers;

export declare const PG_USERS: Readonly<PgUsers>;

export interface StartPostgresOptions {
  /** Fail (with the server log) if the server does not accept connections within this. Default 30 000. */
  startTimeoutMs?: number;
  /** Extra/overriding postgresql.conf settings. */
  conf?: Record<string, string | number | boolean>;
  /** Replace the harness's pg_hba.conf entirely. */
  hba?: string;
  /** Pin the postmaster (and so every backend) to these CPUs with taskset, e.g. "0". */
  cpuAffinity?: string | number;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface PgServer {
  /** Always 127.0.0.1. */
  readonly host: string;
  /** Ephemeral TCP port, kept across restart(). */
  readonly port: number;
  /** Superuser role name ("postgres") and its SCRAM password. */
  readonly superuser: string;
  readonly password: string;
  /** PEM of the self-signed server certificate, which is its own CA (CN=localhost, SAN localhost + 127.0.0.1). */
  readonly caPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Temp directory holding everything below; removed by cleanup(). */
  readonly dir: string;
  readonly dataDir: string;
  /** Unix socket directory (superuser has trust auth there). */
  readonly socketDir: string;
  readonly logPath: string;
  /** The database the harness creates ("app", owned by scram_user, with table `items`). */
  readonly database: string;
  readonly users: Readonly<PgUsers>;
  /** Postmaster pid while running. */
  readonly pid: number | null;
  readonly running: boolean;
  /** Wall time startPostgres() took, in ms. */
  readonly startupMs: number;

  /** Connection settings for `pg` over TCP to database "app" as a harness user (or the superuser). */
  clientConfig(
    who?: PgUserKey | 'superuser',
    overrides?: ClientConfig,
  ): ClientConfig & { host: string; port: number; user: string; password: string; database: string };
  /** Run SQL as the superuser (over the unix socket), on database "app" unless told otherwise. */
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[], opts?: { database?: string }): Promise<QueryResult<R>>;
  /** The server log so far. */
  logText(): string;
  /** fast = SIGINT (roll back, disconnect), immediate = SIGQUIT (crash-like), smart = SIGTERM. Default fast. */
  stop(opts?: { mode?: StopMode }): Promise<void>;
  /** Start again on the same port and data directory (bounded like the first start). */
  start(): Promise<void>;
  restart(opts?: { mode?: StopMode }): Promise<void>;
  /**
   * SIGKILL client backends matching the filter (all client backends when empty) and return their pids.
   * The postmaster then resets every session and runs crash recovery (a "backend died" fault).
   */
  kill9Backend(filter?: { user?: string; applicationName?: string; pid?: number }): Promise<number[]>;
  /** Stop (immediate) if running and remove the temp directory (kept when JITGATE_KEEP_PG is set). */
  cleanup(): Promise<void>;
}

export declare function startPostgres(opts?: StartPostgresOptions): Promise<PgServer>;

/** Directory of the PostgreSQL server binaries ('' when on PATH); throws when they are missing. */
export declare function pgBinDir(): string;
/** Absolute path of a PostgreSQL binary (initdb, postgres, pgbench...), falling back to the bare name. */
export declare function pgBin(name: string): string;
/** The unprivileged OS user server processes run as when we are root, else null. */
export declare function serverOsUser(): { name: string; uid: number; gid: number } | null;
/** spawn() options that run the child as serverOsUser() (unchanged when not root). */
export declare function asServerUser<T extends SpawnOptions>(options?: T): T;
export declare function chownToServerUser(path: string): void;
export declare function runChecked(
  cmd: string,
  args: string[],
  opts?: { asServer?: boolean; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): string;
/** An ephemeral port free on 127.0.0.1 right now. */
export declare function freePort(): Promise<number>;
/** Base directory for server directories (JITGATE_PG_TMPDIR, else a roomy /dev/shm, else os.tmpdir()). */
export declare function harnessTmpDir(): string;
