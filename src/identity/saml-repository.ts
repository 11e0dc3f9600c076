/**
 * The SAML sign-in tables in the gateway's SQLite store (migrateModule 'identity-saml'):
 *
 *   saml_requests   one AuthnRequest the gateway sent: its ID (the Response's InResponseTo must name
 *                   it, once), the jitgate login it belongs to, where the browser goes afterwards and
 *                   the PKCE challenge the final exchange must answer. After the IdP's response is
 *                   accepted it holds the identity and the hash of a one-time code for that exchange.
 *   saml_assertions IDs of accepted assertions until they expire: the same assertion twice is a replay.
 *   saml_subjects   the newest identity each provider asserted for a subject; a refresh of any of
 *                   that subject's sign-ins takes its groups from here (./saml-logins.ts).
 */
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../store/sqlite.js';

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'saml sign-in',
    sql: `
      CREATE TABLE saml_requests (
        request_id      TEXT PRIMARY KEY,
        provider        TEXT NOT NULL,
        login_id        TEXT NOT NULL UNIQUE,
        redirect_uri    TEXT NOT NULL,
        code_challenge  TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        answered_at     INTEGER,
        code_hash       BLOB UNIQUE,
        identity        TEXT,
        code_expires_at INTEGER,
        redeemed_at     INTEGER
      ) STRICT;
      CREATE INDEX saml_requests_expiry ON saml_requests (expires_at);

      CREATE TABLE saml_assertions (
        provider     TEXT NOT NULL,
        assertion_id TEXT NOT NULL,
        expires_at   INTEGER NOT NULL,
        PRIMARY KEY (provider, assertion_id)
      ) STRICT;
      CREATE INDEX saml_assertions_expiry ON saml_assertions (expires_at);

      CREATE TABLE saml_subjects (
        provider    TEXT NOT NULL,
        subject     TEXT NOT NULL,
        user        TEXT NOT NULL,
        groups      TEXT NOT NULL,
        asserted_at INTEGER NOT NULL,
        PRIMARY KEY (provider, subject)
      ) STRICT;
    `,
  },
];

export interface SamlRequestRow {
  requestId: string;
  provider: string;
  loginId: string;
  redirectUri: string;
  codeChallenge: string;
  createdAt: number;
  expiresAt: number;
}

export interface SamlIdentityRow {
  subject: string;
  user: string;
  groups: string[];
  /** When the sign-in must end at the latest (the provider's signInTtl). */
  loginExpiresAt: number;
}

type RequestDbRow = {
  request_id: string;
  provider: string;
  login_id: string;
  redirect_uri: string;
  code_challenge: string;
  created_at: number;
  expires_at: number;
  identity: string | null;
};

const toRequest = (r: RequestDbRow): SamlRequestRow => ({
  requestId: r.request_id,
  provider: r.provider,
  loginId: r.login_id,
  redirectUri: r.redirect_uri,
  codeChallenge: r.code_challenge,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export class SamlRepository {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'identity-saml', MIGRATIONS);
    this.s = {
      insertRequest: db.prepare(
        `INSERT INTO saml_requests (request_id, provider, login_id, redirect_uri, code_challenge, created_at, expires_at)
         VALUES (@requestId, @provider, @loginId, @redirectUri, @codeChallenge, @createdAt, @expiresAt)`,
      ),
      getRequest: db.prepare(`SELECT * FROM saml_requests WHERE request_id = ?`),
      answer: db.prepare(`UPDATE saml_requests SET answered_at = ? WHERE request_id = ? AND answered_at IS NULL AND expires_at > ?`),
      setResult: db.prepare(`UPDATE saml_requests SET code_hash = ?, identity = ?, code_expires_at = ? WHERE request_id = ?`),
      redeem: db.prepare(
        `UPDATE saml_requests SET redeemed_at = @now
         WHERE login_id = @loginId AND code_hash = @codeHash AND redeemed_at IS NULL AND code_expires_at > @now
         RETURNING *`,
      ),
      pending: db.prepare(`SELECT count(*) AS n FROM saml_requests WHERE expires_at > ? AND answered_at IS NULL`),
      purgeRequests: db.prepare(`DELETE FROM saml_requests WHERE expires_at < ?`),
      rememberAssertion: db.prepare(`INSERT OR IGNORE INTO saml_assertions (provider, assertion_id, expires_at) VALUES (?, ?, ?)`),
      purgeAssertions: db.prepare(`DELETE FROM saml_assertions WHERE expires_at < ?`),
      setSubject: db.prepare(
        `INSERT INTO saml_subjects (provider, subject, user, groups, asserted_at) VALUES (@provider, @subject, @user, @groups, @at)
         ON CONFLICT (provider, subject) DO UPDATE SET user = excluded.user, groups = excluded.groups, asserted_at = excluded.asserted_at
         WHERE excluded.asserted_at >= saml_subjects.asserted_at`,
      ),
      getSubject: db.prepare(`SELECT user, groups, asserted_at FROM saml_subjects WHERE provider = ? AND subject = ?`),
    };
  }

  insertRequest(row: SamlRequestRow): void {
    this.s.insertRequest.run(row);
  }

  getRequest(requestId: string): SamlRequestRow | undefined {
    const r = this.s.getRequest.get(requestId) as RequestDbRow | undefined;
    return r && toRequest(r);
  }

  /** Marks the request answered; false when it is unknown, expired or was answered before (one response per request). */
  answer(requestId: string, now: number): boolean {
    return this.s.answer.run(now, requestId, now).changes === 1;
  }

  setResult(requestId: string, codeHash: Buffer, identity: SamlIdentityRow, codeExpiresAt: number): void {
    this.s.setResult.run(codeHash, JSON.stringify(identity), codeExpiresAt, requestId);
  }

  /** The identity behind a one-time code of this login, consuming the code; undefined when unknown, used or expired. */
  redeem(loginId: string, codeHash: Buffer, now: number): (SamlRequestRow & { identity: SamlIdentityRow }) | undefined {
    const r = this.s.redeem.get({ loginId, codeHash, now }) as RequestDbRow | undefined;
    if (!r || r.identity === null) return undefined;
    return { ...toRequest(r), identity: JSON.parse(r.identity) as SamlIdentityRow };
  }

  pendingRequests(now: number): number {
    return (this.s.pending.get(now) as { n: number }).n;
  }

  /** True the first time an assertion ID is seen (kept until `expiresAt`), false for a replay. */
  rememberAssertion(provider: string, assertionId: string, expiresAt: number, now: number): boolean {
    this.s.purgeAssertions.run(now);
    return this.s.rememberAssertion.run(provider, assertionId, expiresAt).changes === 1;
  }

  purgeRequests(before: number): void {
    this.s.purgeRequests.run(before);
  }

  setSubject(provider: string, subject: string, who: { user: string; groups: string[] }, at: number): void {
    this.s.setSubject.run({ provider, subject, user: who.user, groups: JSON.stringify(who.groups), at });
  }

  getSubject(provider: string, subject: string): { user: string; groups: string[]; assertedAt: number } | undefined {
    const r = this.s.getSubject.get(provider, subject) as { user: string; groups: string; asserted_at: number } | undefined;
    return r && { user: r.user, groups: JSON.parse(r.groups) as string[], assertedAt: r.asserted_at };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
