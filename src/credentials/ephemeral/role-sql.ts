/**
 * The SQL the gateway runs to give a session its own PostgreSQL role and to take it away again,
 * plus the marker comment that tells the janitor a role is jitgate's. Pure text builders: every
 * name and value goes through ./quote.ts, nothing else is interpolated.
 */
import { deriveVerifier, newSalt, SCRAM_ITERATIONS } from '../../crypto/scram.js';
import { quoteIdent, quoteLiteral } from './quote.js';

/** How many hex digits of the session id go into the role name (48 bits: collisions are not a concern). */
export const SESSION_ID_DIGITS = 12;

/** `<prefix><first 12 hex digits of the session id>`, e.g. jitgate_3f2a9c0d1e4b. */
export function roleNameFor(prefix: string, sessionId: string): string {
  const digits = sessionId
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '')
    .slice(0, SESSION_ID_DIGITS);
  if (digits.length < SESSION_ID_DIGITS) throw new RangeError('session id has too few hex digits for a role name');
  return prefix + digits;
}

/** What the role's comment records: enough for a DBA to know whose it is, and for the janitor to know it is ours. */
export interface RoleMark {
  /** The gateway deployment (one per state store): another deployment's roles are never touched. */
  gateway: string;
  connection: string;
  session: string;
  user: string;
}

const MARK_PREFIX = 'jitgate ephemeral role v1';
// gateway is a UUID, session ids and connection names have no spaces or `;`; the user is a JSON
// string and comes last, so no user name can forge the fields before it.
const MARK_PATTERN =
  /^jitgate ephemeral role v1; gateway=([0-9a-f-]{36}); connection=([A-Za-z0-9_.-]{1,63}); session=([A-Za-z0-9_-]{1,64}); user=("(?:[^"\\]|\\.)*")$/;

export function formatMark(mark: RoleMark): string {
  return `${MARK_PREFIX}; gateway=${mark.gateway}; connection=${mark.connection}; session=${mark.session}; user=${JSON.stringify(mark.user)}`;
}

/** The mark in a role comment, or undefined when the comment is not one jitgate wrote. */
export function parseMark(comment: string | null | undefined): RoleMark | undefined {
  const m = comment ? MARK_PATTERN.exec(comment) : null;
  if (!m) return undefined;
  try {
    const user: unknown = JSON.parse(m[4]!);
    if (typeof user !== 'string') return undefined;
    return { gateway: m[1]!, connection: m[2]!, session: m[3]!, user };
  } catch {
    return undefined;
  }
}

/**
 * The role's password as a SCRAM-SHA-256 verifier in PostgreSQL's stored format. Sending the
 * verifier instead of the password keeps the password out of the server's statement log
 * (log_statement = ddl/all logs CREATE ROLE verbatim); the server stores it as is.
 */
export function scramPasswordVerifier(password: string, salt = newSalt(), iterations = SCRAM_ITERATIONS): string {
  const v = deriveVerifier(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

export interface CreateRoleSpec {
  name: string;
  /** Already a verifier (see scramPasswordVerifier), never the password itself. */
  passwordVerifier: string;
  /**
   * The password itself, for backends that store a hash of their own (Redis ACL: SHA-256, sent as
   * `#<hex>` so the password never travels). Never logged, never put into SQL.
   */
  password?: string;
  /** Epoch ms; the role cannot log in after it. */
  validUntil: number;
  memberOf: readonly string[];
  comment: string;
}

/**
 * One query, two statements, one implicit transaction: the role never exists without its mark, and
 * a failure (e.g. a configured role that does not exist) leaves nothing behind.
 * The role can log in once at a time and holds no attribute beyond LOGIN; its privileges come only
 * from the roles it is a member of (INHERIT).
 */
export function createRoleSql(spec: CreateRoleSpec): string {
  const role = quoteIdent(spec.name);
  const inRole = spec.memberOf.length > 0 ? ` IN ROLE ${spec.memberOf.map(quoteIdent).join(', ')}` : '';
  return (
    `CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT ` +
    `CONNECTION LIMIT 1 PASSWORD ${quoteLiteral(spec.passwordVerifier)} ` +
    `VALID UNTIL ${quoteLiteral(new Date(spec.validUntil).toISOString())}${inRole};\n` +
    `COMMENT ON ROLE ${role} IS ${quoteLiteral(spec.comment)}`
  );
}

/** The role's name and comment, if it exists. */
export function describeRoleSql(name: string): string {
  return `SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(name)}`;
}

/** Roles whose name starts with `prefix` (not LIKE: `_` in a prefix would be a wildcard). */
export function listRolesSql(prefix: string): string {
  return (
    `SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_catalog.pg_roles ` +
    `WHERE left(rolname, ${[...prefix].length}) = ${quoteLiteral(prefix)} ORDER BY rolname`
  );
}

/**
 * First step of removal: no new logins, and membership for the gateway's own user, which PostgreSQL
 * requires (short of superuser) to terminate the role's backends and to REASSIGN/DROP OWNED.
 */
export function lockOutRoleSql(name: string): string {
  const role = quoteIdent(name);
  return `ALTER ROLE ${role} NOLOGIN;\nGRANT ${role} TO CURRENT_USER`;
}

export function terminateBackendsSql(name: string): string {
  return (
    `SELECT count(pg_catalog.pg_terminate_backend(pid)) AS terminated FROM pg_catalog.pg_stat_activity ` +
    `WHERE usename = ${quoteLiteral(name)} AND pid <> pg_catalog.pg_backend_pid()`
  );
}

export function countBackendsSql(name: string): string {
  return `SELECT count(*) AS backends FROM pg_catalog.pg_stat_activity WHERE usename = ${quoteLiteral(name)}`;
}

/**
 * Objects the session created are kept (handed to the gateway's user) rather than lost; DROP OWNED
 * then removes the privileges granted to the role, so DROP ROLE has no dependencies left in this
 * database. One transaction: the role is either gone or untouched.
 */
export function dropRoleSql(name: string): string {
  const role = quoteIdent(name);
  return `REASSIGN OWNED BY ${role} TO CURRENT_USER;\nDROP OWNED BY ${role};\nDROP ROLE ${role}`;
}
