/**
 * Whether the gateway's backend user holds more than its connection's sessions need, in words for
 * `jitgate credentials status`. Read with the stored credential itself, so what is reported is what
 * that login really has. Advice only: nothing is refused because of it.
 */
import type { BackendTarget } from '../../core/types.js';
import { AdminConnection } from '../../protocols/postgres/admin-client.js';
import { withMysqlAdmin } from '../../protocols/mysql/admin-client.js';
import type { RespValue } from '../../protocols/redis/resp.js';
import { withRedisAdmin } from '../ephemeral/redis-acl.js';

export interface PrivilegeNeeds {
  /** Sessions get a role or user of their own (the stored user must be able to create them). */
  ephemeral: boolean;
  /** The gateway rotates its own password (Redis: needs the ACL command). */
  rotates: boolean;
}

export async function privilegeWarnings(target: BackendTarget, needs: PrivilegeNeeds): Promise<string[]> {
  switch (target.protocol) {
    case 'postgres':
      return postgresWarnings(target, needs);
    case 'mysql':
      return mysqlWarnings(target, needs);
    case 'redis':
      return redisWarnings(target, needs);
  }
}

async function postgresWarnings(target: BackendTarget, needs: PrivilegeNeeds): Promise<string[]> {
  const conn = await AdminConnection.open(target, { applicationName: 'jitgate credentials status' });
  let row: Record<string, string | null> | undefined;
  try {
    const [result] = await conn.query(
      'SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user',
    );
    row = result?.rows[0];
  } finally {
    await conn.close();
  }
  if (!row) return [];
  const on = (k: string) => row[k] === 't';
  const out: string[] = [];
  if (on('rolsuper')) {
    out.push(
      `${target.user} is a superuser: it can read server files and every role's password verifier and switch off any check; ` +
        (needs.ephemeral ? 'per-session roles need only CREATEROLE' : 'sessions here need only the privileges on their schemas'),
    );
  }
  if (on('rolcreaterole') && !needs.ephemeral) {
    out.push(
      `${target.user} has CREATEROLE, which sessions sharing it do not need (only ephemeral credentials do): it can create roles and change other roles' passwords`,
    );
  }
  if (on('rolbypassrls')) out.push(`${target.user} has BYPASSRLS: row-level security policies do not apply to any session`);
  if (on('rolreplication')) out.push(`${target.user} has REPLICATION: it can stream every change in the cluster`);
  if (on('rolcreatedb')) out.push(`${target.user} has CREATEDB, which sessions do not need`);
  return out;
}

async function mysqlWarnings(target: BackendTarget, needs: PrivilegeNeeds): Promise<string[]> {
  const grants = await withMysqlAdmin(target, async (conn) => (await conn.query('SHOW GRANTS')).map((r) => r[0] ?? ''));
  const out: string[] = [];
  for (const g of grants) {
    const global = /^GRANT (.+) ON \*\.\* TO /i.exec(g);
    if (!global) continue;
    const privs = global[1]!.toUpperCase();
    if (privs.startsWith('ALL'))
      out.push(`${target.user} has ALL PRIVILEGES ON *.*: every database, user management and server administration`);
    else {
      if (/\bSUPER\b/.test(privs))
        out.push(`${target.user} has SUPER: it can change global settings, kill any connection and bypass read_only`);
      if (/\bCREATE USER\b/.test(privs) && !needs.ephemeral)
        out.push(`${target.user} has CREATE USER, which sessions sharing it do not need (only ephemeral credentials do)`);
      if (/\bFILE\b/.test(privs)) out.push(`${target.user} has FILE: it can read and write files on the database server`);
    }
    if (/WITH GRANT OPTION/i.test(g)) out.push(`${target.user} may grant its global privileges to others (WITH GRANT OPTION on *.*)`);
  }
  return out;
}

async function redisWarnings(target: BackendTarget, needs: PrivilegeNeeds): Promise<string[]> {
  const user = await withRedisAdmin(target, async (run) => fields(await run(['ACL', 'GETUSER', target.user])));
  const commands = user.get('commands') ?? '';
  const keys = user.get('keys') ?? '';
  const out: string[] = [];
  if (/(^|\s)\+@all\b/.test(commands) && !/\s-/.test(commands)) {
    const need = needs.ephemeral || needs.rotates ? 'the commands of its sessions and +acl' : 'the commands of its sessions';
    out.push(`${target.user} may run every command (+@all), including CONFIG, MODULE, DEBUG and SHUTDOWN; it needs ${need}`);
  }
  if (/(^|\s)(~\*|allkeys)(\s|$)/.test(keys))
    out.push(`${target.user} may touch every key (~*); limit it to the key patterns its sessions use`);
  return out;
}

/** ACL GETUSER's flat name/value list as a map of the text fields. */
function fields(reply: RespValue): Map<string, string> {
  const out = new Map<string, string>();
  if (reply.type !== 'array' && reply.type !== 'map') return out;
  const items = reply.items ?? [];
  for (let i = 0; i + 1 < items.length; i += 2) {
    const name = textOf(items[i]!);
    const value = items[i + 1]!;
    if (name !== undefined) out.set(name, textOf(value) ?? '');
  }
  return out;
}

function textOf(v: RespValue): string | undefined {
  if (v.type === 'bulk') return v.data?.toString('utf8');
  if (v.type === 'verbatim') return v.data.toString('utf8');
  if (v.type === 'simple') return v.text;
  return undefined;
}
