/**
 * Per-session ACL users on a Redis backend, the Redis counterpart of pg-roles.ts, driven by the
 * same EphemeralCredentials provider and janitor. Run as the connection's stored credential, which
 * needs the ACL and CLIENT commands (`+acl +client`).
 *
 *   create: ACL SETUSER <name> reset on #<sha256 of the password> <configured rules> (%R~jitgate-mark:<mark>)
 *   remove: CLIENT KILL USER <name>, then ACL DELUSER <name>
 *
 * Redis users carry no comment, so jitgate's mark (gateway, connection, session, person) is kept as
 * an ACL selector that allows no command, with a key pattern naming a key nobody uses
 * (`jitgate-mark:` + the mark in base64url): the janitor reads it back from ACL GETUSER and never
 * touches a user without its own mark. Redis users
 * do not expire by themselves: the session end removes them, and the janitor after a crash.
 */
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { connectRedisBackend } from '../../protocols/redis/backend.js';
import { encodeCommand, ReplyReader, type RespValue } from '../../protocols/redis/resp.js';
import { MaybeCreatedError, type ListedRole, type RemoveOutcome, type RoleAdmin } from './pg-roles.js';
import type { CreateRoleSpec } from './role-sql.js';

const MARK_KEY = 'jitgate-mark:';

export class RedisAclAdmin implements RoleAdmin {
  constructor(private readonly target: BackendTarget) {}

  async create(spec: CreateRoleSpec): Promise<void> {
    if (spec.password === undefined) throw new Error('a Redis ACL user needs the password itself');
    const hash = createHash('sha256').update(spec.password, 'utf8').digest('hex');
    await this.with(async (run) => {
      const existing = await run(['ACL', 'GETUSER', spec.name]);
      if (
        existing.type !== 'null' &&
        !(existing.type === 'bulk' && existing.data === null) &&
        !(isList(existing) && existing.items === null)
      ) {
        throw new GatewayError(
          'credential_unavailable',
          `could not create a Redis user for this session`,
          `a user named ${spec.name} already exists on the backend`,
        );
      }
      // A selector of its own: it grants no command, and the configured rules cannot clear it.
      const mark = `(%R~${MARK_KEY}${Buffer.from(spec.comment, 'utf8').toString('base64url')})`;
      let reply: RespValue;
      try {
        reply = await run(['ACL', 'SETUSER', spec.name, 'reset', 'on', `#${hash}`, ...spec.memberOf, mark]);
      } catch (err) {
        throw new MaybeCreatedError(err);
      }
      if (reply.type === 'error') {
        throw new GatewayError(
          'credential_unavailable',
          'could not create a Redis user for this session',
          `the backend refused ACL SETUSER: ${reply.text}`,
        );
      }
    });
  }

  async list(prefix: string): Promise<ListedRole[]> {
    return this.with(async (run) => {
      const users = await run(['ACL', 'USERS']);
      const names = isList(users) ? (users.items ?? []).map(text).filter((n): n is string => n !== undefined && n.startsWith(prefix)) : [];
      const out: ListedRole[] = [];
      for (const name of names) out.push({ name, comment: markOf(await run(['ACL', 'GETUSER', name])) });
      return out;
    });
  }

  async remove(name: string, isOurs: (comment: string | null) => boolean): Promise<RemoveOutcome> {
    return this.with(async (run) => {
      const user = await run(['ACL', 'GETUSER', name]);
      if (!isList(user) || user.items === null) return 'absent';
      if (!isOurs(markOf(user))) return 'not_ours';
      // Lock it out first, so no new connection logs in between the kill and the delete.
      await expectOk(run(['ACL', 'SETUSER', name, 'off', 'resetpass']), 'ACL SETUSER off');
      const killed = await run(['CLIENT', 'KILL', 'USER', name]);
      if (killed.type === 'error' && !/no such user/i.test(killed.text)) throw new Error(`CLIENT KILL USER failed: ${killed.text}`);
      const deleted = await run(['ACL', 'DELUSER', name]);
      if (deleted.type === 'error') throw new Error(`ACL DELUSER failed: ${deleted.text}`);
      return 'dropped';
    });
  }

  private with<T>(fn: (run: (args: string[]) => Promise<RespValue>) => Promise<T>): Promise<T> {
    return withRedisAdmin(this.target, fn);
  }
}

/** One short admin connection as the gateway's stored credential, closed afterwards. */
export async function withRedisAdmin<T>(
  target: BackendTarget,
  fn: (run: (args: string[]) => Promise<RespValue>) => Promise<T>,
): Promise<T> {
  const session = await connectRedisBackend(target, { protocol: 2, hello: false });
  const conn = new AdminConnection(session.socket, target.connectTimeoutMs);
  try {
    return await fn((args) => conn.run(args));
  } finally {
    session.socket.destroy();
  }
}

/** Sends one command at a time and reads its reply, each within a timeout. */
class AdminConnection {
  private readonly reader = new ReplyReader({ keepBytes: 1024 * 1024, keepItems: 100_000 });
  private waiting: { resolve: (v: RespValue) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk, { begin: () => undefined, bytes: () => undefined, end: (v) => this.settle(v) });
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the Redis backend closed the admin connection')));
    socket.resume();
  }

  run(args: string[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new Error(`no reply to ${args[0]} ${args[1] ?? ''} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.waiting = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.socket.write(encodeCommand(args));
    });
  }

  private settle(v: RespValue): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.resolve(v);
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }
}

async function expectOk(reply: Promise<RespValue>, what: string): Promise<void> {
  const r = await reply;
  if (r.type === 'error') throw new Error(`${what} failed: ${r.text}`);
}

function isList(v: RespValue): v is Extract<RespValue, { type: 'array' | 'map' | 'set' | 'push' }> {
  return v.type === 'array' || v.type === 'map' || v.type === 'set' || v.type === 'push';
}

function text(v: RespValue | undefined): string | undefined {
  if (!v) return undefined;
  if (v.type === 'bulk') return v.data?.toString('utf8');
  if (v.type === 'simple') return v.text;
  return undefined;
}

/** jitgate's mark in an ACL GETUSER reply (in its key patterns), or null. */
function markOf(user: RespValue): string | null {
  const found: string[] = [];
  const walk = (v: RespValue) => {
    const t = text(v);
    if (t !== undefined) found.push(t);
    else if (isList(v)) for (const i of v.items ?? []) walk(i);
  };
  walk(user);
  for (const t of found) {
    const m = /jitgate-mark:([A-Za-z0-9_-]+)/.exec(t);
    if (m) return Buffer.from(m[1]!, 'base64url').toString('utf8');
  }
  return null;
}
