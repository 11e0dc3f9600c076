/**
 * The core schema of the state store (sessions, tokens, secrets, instances and what passes between
 * them), one text per engine. Append only: never edit a migration that has shipped; add a new one.
 * PostgreSQL keeps times and counters in BIGINT (epoch ms overflow INTEGER) and quotes "user",
 * which it reserves.
 */
import type { SqlMigration } from './sql.js';

export const CORE_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: 'initial',
    sqlite: `
      CREATE TABLE sessions (
        id                TEXT PRIMARY KEY,
        user              TEXT NOT NULL,
        connection        TEXT NOT NULL,
        protocol          TEXT NOT NULL,
        client_address    TEXT NOT NULL,
        application_name  TEXT,
        started_at        INTEGER NOT NULL,
        ended_at          INTEGER,
        end_reason        TEXT,
        bytes_from_client INTEGER NOT NULL DEFAULT 0,
        bytes_to_client   INTEGER NOT NULL DEFAULT 0,
        statements        INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX sessions_started ON sessions (started_at DESC);
      CREATE INDEX sessions_live ON sessions (ended_at) WHERE ended_at IS NULL;

      CREATE TABLE scram_salts (
        user       TEXT NOT NULL,
        connection TEXT NOT NULL,
        salt       BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user, connection)
      ) STRICT;

      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        user        TEXT NOT NULL,
        connection  TEXT NOT NULL,
        salt        BLOB NOT NULL,
        iterations  INTEGER NOT NULL,
        stored_key  BLOB NOT NULL,
        server_key  BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        revoked_at  INTEGER
      ) STRICT;
      CREATE INDEX tokens_lookup ON tokens (user, connection, expires_at);

      CREATE TABLE auth_failures (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        at             INTEGER NOT NULL,
        user           TEXT NOT NULL,
        connection     TEXT NOT NULL,
        client_address TEXT NOT NULL,
        reason         TEXT NOT NULL
      ) STRICT;
      CREATE INDEX auth_failures_at ON auth_failures (at DESC);

      CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        iv         BLOB NOT NULL,
        tag        BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
    postgres: `
      CREATE TABLE sessions (
        id                TEXT PRIMARY KEY,
        "user"            TEXT NOT NULL,
        connection        TEXT NOT NULL,
        protocol          TEXT NOT NULL,
        client_address    TEXT NOT NULL,
        application_name  TEXT,
        started_at        BIGINT NOT NULL,
        ended_at          BIGINT,
        end_reason        TEXT,
        bytes_from_client BIGINT NOT NULL DEFAULT 0,
        bytes_to_client   BIGINT NOT NULL DEFAULT 0,
        statements        BIGINT NOT NULL DEFAULT 0,
        -- SQLite's rowid: the order rows went in, to break ties between equal times.
        seq               BIGINT GENERATED ALWAYS AS IDENTITY
      );
      CREATE INDEX sessions_started ON sessions (started_at DESC);
      CREATE INDEX sessions_live ON sessions (ended_at) WHERE ended_at IS NULL;

      CREATE TABLE scram_salts (
        "user"     TEXT NOT NULL,
        connection TEXT NOT NULL,
        salt       BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY ("user", connection)
      );

      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        "user"      TEXT NOT NULL,
        connection  TEXT NOT NULL,
        salt        BYTEA NOT NULL,
        iterations  INTEGER NOT NULL,
        stored_key  BYTEA NOT NULL,
        server_key  BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        revoked_at  BIGINT,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY
      );
      CREATE INDEX tokens_lookup ON tokens ("user", connection, expires_at);

      CREATE TABLE auth_failures (
        id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at             BIGINT NOT NULL,
        "user"         TEXT NOT NULL,
        connection     TEXT NOT NULL,
        client_address TEXT NOT NULL,
        reason         TEXT NOT NULL
      );
      CREATE INDEX auth_failures_at ON auth_failures (at DESC);

      CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        iv         BYTEA NOT NULL,
        tag        BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        updated_at BIGINT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'gateway instances',
    // Which instance serves a session, so each closes only its own orphans (null: from before).
    sqlite: `
      ALTER TABLE sessions ADD COLUMN instance_id TEXT;
      CREATE INDEX sessions_instance_live ON sessions (instance_id) WHERE ended_at IS NULL;
      CREATE TABLE instances (
        id            TEXT PRIMARY KEY,
        hostname      TEXT NOT NULL,
        pid           INTEGER NOT NULL,
        pid_namespace TEXT,
        started_at    INTEGER NOT NULL,
        heartbeat_at  INTEGER NOT NULL,
        lost_at       INTEGER,
        lost_by       TEXT
      ) STRICT;
    `,
    postgres: `
      ALTER TABLE sessions ADD COLUMN instance_id TEXT;
      CREATE INDEX sessions_instance_live ON sessions (instance_id) WHERE ended_at IS NULL;
      CREATE TABLE instances (
        id            TEXT PRIMARY KEY,
        hostname      TEXT NOT NULL,
        pid           BIGINT NOT NULL,
        pid_namespace TEXT,
        started_at    BIGINT NOT NULL,
        heartbeat_at  BIGINT NOT NULL,
        lost_at       BIGINT,
        lost_by       TEXT
      );
    `,
  },
  {
    version: 3,
    name: 'session kills between instances',
    // A kill asked of one instance for a session another serves, until that one carries it out.
    sqlite: `
      CREATE TABLE session_kill_requests (
        session_id   TEXT PRIMARY KEY,
        instance_id  TEXT NOT NULL,
        by_user      TEXT NOT NULL,
        reason       TEXT NOT NULL,
        requested_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX session_kill_requests_instance ON session_kill_requests (instance_id);
    `,
    postgres: `
      CREATE TABLE session_kill_requests (
        session_id   TEXT PRIMARY KEY,
        instance_id  TEXT NOT NULL,
        by_user      TEXT NOT NULL,
        reason       TEXT NOT NULL,
        requested_at BIGINT NOT NULL
      );
      CREATE INDEX session_kill_requests_instance ON session_kill_requests (instance_id);
    `,
  },
  {
    version: 4,
    name: 'cancel keys between instances',
    // Which instance serves the session a cancel key was handed out for, and the cancels that
    // reached another instance. The secret is checked by the serving instance only, as PostgreSQL does.
    sqlite: `
      CREATE TABLE cancel_keys (
        protocol    TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        instance_id TEXT NOT NULL,
        session_id  TEXT NOT NULL,
        PRIMARY KEY (protocol, pid)
      ) STRICT;
      CREATE TABLE cancel_requests (
        id           INTEGER PRIMARY KEY,
        protocol     TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        secret       INTEGER NOT NULL,
        instance_id  TEXT NOT NULL,
        requested_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX cancel_requests_instance ON cancel_requests (instance_id);
    `,
    postgres: `
      CREATE TABLE cancel_keys (
        protocol    TEXT NOT NULL,
        pid         BIGINT NOT NULL,
        instance_id TEXT NOT NULL,
        session_id  TEXT NOT NULL,
        PRIMARY KEY (protocol, pid)
      );
      CREATE TABLE cancel_requests (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        protocol     TEXT NOT NULL,
        pid          BIGINT NOT NULL,
        secret       BIGINT NOT NULL,
        instance_id  TEXT NOT NULL,
        requested_at BIGINT NOT NULL
      );
      CREATE INDEX cancel_requests_instance ON cancel_requests (instance_id);
    `,
  },
  {
    version: 5,
    name: 'usage counted across instances',
    // What each instance counted per user or address in short time buckets (agents' statements and
    // rows, sign-in attempts), so that limits count across instances. Old buckets are dropped.
    sqlite: `
      CREATE TABLE usage_counts (
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        bucket      INTEGER NOT NULL,
        instance_id TEXT NOT NULL,
        count       INTEGER NOT NULL,
        PRIMARY KEY (kind, key, bucket, instance_id)
      ) STRICT;
      CREATE INDEX usage_counts_bucket ON usage_counts (bucket);
    `,
    postgres: `
      CREATE TABLE usage_counts (
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        bucket      BIGINT NOT NULL,
        instance_id TEXT NOT NULL,
        count       BIGINT NOT NULL,
        PRIMARY KEY (kind, key, bucket, instance_id)
      );
      CREATE INDEX usage_counts_bucket ON usage_counts (bucket);
    `,
  },
];
