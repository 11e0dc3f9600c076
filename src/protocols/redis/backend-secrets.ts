/**
 * The gateway holds the backend's credential, and every session shares the backend user it logs
 * in with: no command may hand that credential (or another session's traffic) to a client.
 *
 *  - Refused: ACL subcommands that read or change the backend's users (LIST and GETUSER show
 *    password hashes, LOG shows other clients, SETUSER/DELUSER/LOAD/SAVE would let a session make
 *    or change a backend login of its own; WHOAMI, CAT, GENPASS and HELP stay), CONFIG SET of a
 *    credential setting, CONFIG REWRITE (writes the credentials to the server's file), REPLICAOF /
 *    SLAVEOF / FAILOVER (would connect the backend to a server of the client's choice, presenting
 *    its replication credential), SLOWLOG GET/RESET (other sessions' commands, arguments included).
 *  - Redacted: CONFIG GET replies, whatever the patterns asked for (`*`, `*pass*`, `requirepass`):
 *    the values of credential settings are replaced, the rest is returned as Redis sent it, so
 *    `CONFIG GET *` keeps working for tools. Inside MULTI the same applies to EXEC's items.
 *
 * MONITOR, CLIENT LIST (scoped to the session's own connection) and CLIENT KILL/PAUSE/... are the
 * relay's own (./relay.ts).
 */
import type { RespValue } from './resp.js';

/** What a redacted credential setting reads as. */
export const HIDDEN = '(hidden by jitgate)';

/** Settings whose value is a credential (Redis 7: requirepass, masterauth, masteruser, tls-*-pass). */
export function isCredentialSetting(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'requirepass' || n === 'masterauth' || n === 'masteruser' || n.endsWith('pass');
}

export interface SecretRefusal {
  why: string;
  reason: 'backend_credential' | 'other_sessions';
}

const ACL_ALLOWED = new Set(['whoami', 'cat', 'genpass', 'help']);

/** A refusal for a command that would reveal or replace the backend's credential, else undefined. */
export function credentialRefusal(name: string, sub: string, args: readonly Buffer[]): SecretRefusal | undefined {
  switch (name) {
    case 'acl':
      if (ACL_ALLOWED.has(sub)) return undefined;
      return {
        why: `ACL ${sub.toUpperCase()} would read or change the backend's users, whose credentials jitgate holds; manage ACLs on the server itself`,
        reason: 'backend_credential',
      };
    case 'config':
      if (sub === 'set') {
        for (let i = 2; i < args.length; i += 2) {
          const setting = args[i]!.toString('latin1');
          if (isCredentialSetting(setting)) {
            return {
              why: `CONFIG SET ${setting} would set a backend credential jitgate holds; change it on the server itself`,
              reason: 'backend_credential',
            };
          }
        }
        return undefined;
      }
      if (sub === 'rewrite') {
        return {
          why: "CONFIG REWRITE writes the backend's configuration, credentials included; run it on the server itself",
          reason: 'backend_credential',
        };
      }
      return undefined;
    case 'replicaof':
    case 'slaveof':
    case 'failover':
      return {
        why: `${name.toUpperCase()} would connect the backend to another server with its replication credential; run it on the server itself`,
        reason: 'backend_credential',
      };
    case 'slowlog':
      if (sub === 'get' || sub === 'reset') {
        return {
          why: `SLOWLOG ${sub.toUpperCase()} would show or clear other sessions' commands on the shared backend`,
          reason: 'other_sessions',
        };
      }
      return undefined;
    default:
      return undefined;
  }
}

/** Redacts a reply in place; true if anything changed. */
export type ReplyRedactor = (value: RespValue) => boolean;

/** CONFIG GET's reply (RESP2 flat name/value array, RESP3 map): credential values hidden. */
export const redactConfigReply: ReplyRedactor = (value) => {
  if ((value.type !== 'array' && value.type !== 'map') || !value.items) return false;
  let changed = false;
  const items = value.items;
  for (let i = 0; i + 1 < items.length; i += 2) {
    const name = items[i]!;
    const v = items[i + 1]!;
    const setting = name.type === 'bulk' ? name.data?.toString('latin1') : name.type === 'simple' ? name.text : undefined;
    if (setting === undefined || !isCredentialSetting(setting)) continue;
    if (v.type === 'bulk' && v.data !== null && v.data.length > 0) {
      v.data = Buffer.from(HIDDEN);
      changed = true;
    } else if (v.type === 'simple' && v.text !== '') {
      v.text = HIDDEN;
      changed = true;
    }
  }
  return changed;
};

const isConfigGet = (args: readonly Buffer[]) =>
  args.length >= 2 && args[0]!.toString('latin1').toLowerCase() === 'config' && args[1]!.toString('latin1').toLowerCase() === 'get';

/** The redaction a command's reply needs, if any: CONFIG GET, or EXEC of a transaction with one. */
export function replyRedactor(name: string, args: readonly Buffer[], queued: ReadonlyArray<readonly Buffer[]>): ReplyRedactor | undefined {
  if (name === 'config') return isConfigGet(args) ? redactConfigReply : undefined;
  if (name !== 'exec' || !queued.some(isConfigGet)) return undefined;
  return (value) => {
    if (value.type !== 'array' || !value.items) return false;
    let changed = false;
    value.items.forEach((item, i) => {
      if (queued[i] && isConfigGet(queued[i]!)) changed = redactConfigReply(item) || changed;
    });
    return changed;
  };
}
