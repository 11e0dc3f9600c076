/**
 * Per-session users on a MySQL or MariaDB backend, the MySQL counterpart of pg-roles.ts, driven by
 * the same EphemeralCredentials provider and janitor. Run as the connection's stored credential,
 * which needs CREATE USER, the configured roles WITH ADMIN OPTION, and CONNECTION ADMIN (or SUPER)
 * to end the user's connections.
 *
 *   create: CREATE USER '<name>'@'%' IDENTIFIED BY PASSWORD '<native hash>'  (MariaDB: the password
 *           itself never travels; MySQL 8 takes it over the admin connection)
 *             WITH MAX_USER_CONNECTIONS 1 PASSWORD EXPIRE INTERVAL 1 DAY
 *           GRANT <roles> TO it; SET DEFAULT ROLE (MariaDB: the first role; MySQL: all)
 *   remove: ACCOUNT LOCK, KILL CONNECTION of its threads, DROP USER
 *
 * MySQL users carry no comment (MariaDB has none at all), so jitgate's mark lives in the gateway's
 * own store: a user is ours only when the store recorded its creation for this connection (the
 * provider records before it creates), and the janitor never touches any other user. The password
 * expiry (whole days: the finest MySQL has) bounds a user the janitor could not remove; the session
 * end and the janitor remove it long before.
 */
import { createHash } from 'node:crypto';
import type { BackendTarget } from '../../core/types.js';
import { MysqlQueryError, withMysqlAdmin } from '../../protocols/mysql/admin-client.js';
import { BackendQueryError } from '../../protocols/postgres/admin-client.js';
import { MaybeCreatedError, type ListedRole, type RemoveOutcome, type RoleAdmin } from './pg-roles.js';
import type { CreateRoleSpec } from './role-sql.js';

export class MysqlUserAdmin implements RoleAdmin {
  constructor(
    private readonly target: BackendTarget,
    /** The mark the store holds for a user name of this connection (null: not one of ours). */
    private readonly markOf: (name: string) => string | null,
  ) {}

  async create(spec: CreateRoleSpec): Promise<void> {
    if (spec.password === undefined) throw new Error('a MySQL user needs the password itself');
    const user = account(spec.name);
    await withMysqlAdmin(this.target, async (conn) => {
      const mariadb = /mariadb/i.test(conn.serverVersion);
      const identified = mariadb
        ? `IDENTIFIED BY PASSWORD ${literal(nativeHash(spec.password!))}`
        : `IDENTIFIED BY ${literal(spec.password!)}`;
      try {
        await conn.query(`CREATE USER ${user} ${identified} WITH MAX_USER_CONNECTIONS 1 PASSWORD EXPIRE INTERVAL 1 DAY`);
      } catch (err) {
        throw err instanceof MysqlQueryError ? asBackendError(err) : new MaybeCreatedError(err);
      }
      try {
        if (spec.memberOf.length > 0) {
          await conn.query(`GRANT ${spec.memberOf.map(ident).join(', ')} TO ${user}`);
          // Needs write access to the mysql schema on MariaDB; where refused, the listener's SET ROLE
          // at session start activates the roles instead.
          await conn
            .query(mariadb ? `SET DEFAULT ROLE ${ident(spec.memberOf[0]!)} FOR ${user}` : `SET DEFAULT ROLE ALL TO ${user}`)
            .catch((err: unknown) => {
              if (!(err instanceof MysqlQueryError && (err.errno === 1044 || err.errno === 1227))) throw err;
            });
        }
      } catch (err) {
        // The user exists without its roles: take it away again before refusing the session.
        await conn.query(`DROP USER IF EXISTS ${user}`).catch(() => undefined);
        throw err instanceof MysqlQueryError ? asBackendError(err) : new MaybeCreatedError(err);
      }
    });
  }

  /**
   * Users are not listed from the backend (reading mysql.user takes privileges the gateway's user
   * need not have, and carries no mark): the janitor works from the store's records alone.
   */
  list(): Promise<ListedRole[]> {
    return Promise.resolve([]);
  }

  async remove(name: string, isOurs: (comment: string | null) => boolean): Promise<RemoveOutcome> {
    if (!isOurs(this.markOf(name))) return 'not_ours';
    const user = account(name);
    return withMysqlAdmin(this.target, async (conn) => {
      try {
        await conn.query(`ALTER USER ${user} ACCOUNT LOCK`);
      } catch (err) {
        // 1396: the user does not exist (never created, or already dropped).
        if (err instanceof MysqlQueryError && err.errno === 1396) return 'absent';
        throw err;
      }
      // DROP USER leaves the user's open connections running with their privileges: end them first.
      const threads = await conn.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ${literal(name)}`);
      for (const [id] of threads) {
        await conn.query(`KILL CONNECTION ${Number(id)}`).catch((err: unknown) => {
          // 1094: the thread ended meanwhile.
          if (!(err instanceof MysqlQueryError && err.errno === 1094)) throw err;
        });
      }
      await conn.query(`DROP USER ${user}`);
      return 'dropped';
    });
  }
}

/** mysql_native_password's stored form: '*' + upper-case hex of SHA1(SHA1(password)). */
export function nativeHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return '*' + createHash('sha1').update(once).digest('hex').toUpperCase();
}

function account(name: string): string {
  return `${literal(name)}@'%'`;
}

function literal(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function ident(s: string): string {
  return '`' + s.replace(/`/g, '``') + '`';
}

/** The provider explains PostgreSQL SQLSTATEs to clients; MySQL's errors are mapped onto them. */
function asBackendError(err: MysqlQueryError): BackendQueryError {
  const sqlstate =
    err.errno === 1396
      ? '42710'
      : err.errno === 1227 || err.errno === 1044 || err.errno === 1045 || err.errno === 1142
        ? '42501'
        : err.errno === 1959 || err.errno === 3530
          ? '42704'
          : err.sqlState;
  return new BackendQueryError(
    new Map([
      ['C', sqlstate],
      ['M', err.message],
    ]),
  );
}
