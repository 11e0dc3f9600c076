/**
 * Changing the gateway's own password on each kind of backend, logged in with the current one.
 *
 *   PostgreSQL  ALTER ROLE CURRENT_USER PASSWORD '<SCRAM verifier>'   (any role may change its own)
 *   MariaDB     SET PASSWORD = '<mysql_native_password hash>'         (any user may change its own)
 *   MySQL       ALTER USER CURRENT_USER() IDENTIFIED BY '<password>'  (the server rewrites it in its logs)
 *   Redis       ACL SETUSER <user> #<sha256>, later ACL SETUSER <user> !<old sha256>  (needs +acl)
 *
 * PostgreSQL and MySQL hold one password per role, so the switch is a moment; Redis holds several,
 * so the new one is added, the gateway switches, then the old one is removed.
 */
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget, Protocol } from '../../core/types.js';
import { connectBackend } from '../../protocols/postgres/backend.js';
import { AdminConnection } from '../../protocols/postgres/admin-client.js';
import { withMysqlAdmin } from '../../protocols/mysql/admin-client.js';
import type { RespValue } from '../../protocols/redis/resp.js';
import { withRedisAdmin } from '../ephemeral/redis-acl.js';
import { mysqlNativeHash, postgresScramVerifier, redisPasswordHash } from './password-forms.js';

export interface BackendPasswords {
  /** Makes `next` the password on the backend (Redis: valid beside the old one until `retire`). */
  change(target: BackendTarget, next: string): Promise<void>;
  /** After the gateway switched to the new password: removes the old one where both were valid. */
  retire(target: BackendTarget, old: string): Promise<void>;
  /** Whether `password` logs in now (to settle a rotation a crash or a lost connection interrupted). */
  logsIn(target: BackendTarget, password: string): Promise<boolean>;
}

/** A login with exactly this password: no retry with the other one of a rotation. */
const only = (target: BackendTarget, password: string): BackendTarget => ({ ...target, password, otherPassword: undefined });

export const postgresPasswords: BackendPasswords = {
  async change(target, next) {
    const conn = await AdminConnection.open(target, { applicationName: 'jitgate credential rotation' });
    try {
      // The verifier's alphabet (base64, `$`, `:`, digits, letters) needs no escaping in a literal.
      await conn.query(`ALTER ROLE CURRENT_USER PASSWORD '${postgresScramVerifier(next)}'`);
    } finally {
      await conn.close();
    }
  },
  retire: () => Promise.resolve(),
  async logsIn(target, password) {
    try {
      const session = await connectBackend(only(target, password), new Map([['application_name', 'jitgate credential rotation']]));
      session.socket.destroy();
      return true;
    } catch {
      return false;
    }
  },
};

export const mysqlPasswords: BackendPasswords = {
  async change(target, next) {
    await withMysqlAdmin(target, async (conn) => {
      if (/mariadb/i.test(conn.serverVersion)) await conn.query(`SET PASSWORD = '${mysqlNativeHash(next)}'`);
      // base64url needs no escaping in a literal.
      else await conn.query(`ALTER USER CURRENT_USER() IDENTIFIED BY '${next}'`);
    });
  },
  retire: () => Promise.resolve(),
  async logsIn(target, password) {
    try {
      await withMysqlAdmin(only(target, password), () => Promise.resolve());
      return true;
    } catch {
      return false;
    }
  },
};

export const redisPasswords: BackendPasswords = {
  async change(target, next) {
    await withRedisAdmin(target, async (run) => {
      expectOk(await run(['ACL', 'SETUSER', target.user, `#${redisPasswordHash(next)}`]), 'ACL SETUSER');
      await persistAcl(run);
    });
  },
  async retire(target, old) {
    await withRedisAdmin(target, async (run) => {
      const reply = await run(['ACL', 'SETUSER', target.user, `!${redisPasswordHash(old)}`]);
      // Already gone (a retried retire) is what was wanted.
      if (reply.type === 'error' && !/password.*not.*(exist|found)|no such password/i.test(reply.text)) expectOk(reply, 'ACL SETUSER');
      await persistAcl(run);
    });
  },
  async logsIn(target, password) {
    try {
      await withRedisAdmin(only(target, password), () => Promise.resolve());
      return true;
    } catch {
      return false;
    }
  },
};

/**
 * Users from an ACL file come back from it when Redis restarts: write the change there. Without an
 * ACL file (users from redis.conf or set at runtime) there is nothing the gateway can save; the
 * README says what that means.
 */
async function persistAcl(run: (args: string[]) => Promise<RespValue>): Promise<void> {
  const saved = await run(['ACL', 'SAVE']);
  if (saved.type === 'error' && !/not configured to use an ACL file/i.test(saved.text)) expectOk(saved, 'ACL SAVE');
}

function expectOk(reply: RespValue, what: string): void {
  if (reply.type === 'error') throw new GatewayError('backend_unavailable', `the backend refused ${what}`, reply.text);
}

export function backendPasswords(protocol: Protocol): BackendPasswords {
  switch (protocol) {
    case 'postgres':
      return postgresPasswords;
    case 'mysql':
      return mysqlPasswords;
    case 'redis':
      return redisPasswords;
  }
}
