/**
 * Logging in across a rotation of the gateway's own backend password. A login takes a snapshot of
 * the target's password; when the backend refuses it, the rotation may have changed the password
 * under that login (the backend switched before the gateway's copy, or the reverse), or another
 * gateway instance sharing the store rotated it. Every backend client logs in through here.
 */
import type { BackendTarget } from './types.js';

/** Logins per session start at most: the snapshot, the other password, one read after a reload. */
const MAX_LOGINS = 3;

/** The target's password or other password that this login has not tried yet, if any. */
function untried(target: BackendTarget, tried: ReadonlyArray<string | undefined>): string | undefined {
  if (target.password !== undefined && !tried.includes(target.password)) return target.password;
  if (target.otherPassword !== undefined && !tried.includes(target.otherPassword)) return target.otherPassword;
  return undefined;
}

/**
 * Logs in with a snapshot of the current password. When the backend refuses the credential, logs in
 * again with a password not tried yet: the one a rotation in this process put in place meanwhile,
 * or the other one of the pair; when there is none, the target reloads from the store (another
 * instance may have rotated) and a password found there is tried. At most three logins.
 */
export async function withPasswordRetry<T>(
  target: BackendTarget,
  login: (snapshot: BackendTarget) => Promise<T>,
  isCredentialRefusal: (err: unknown) => boolean,
): Promise<T> {
  const tried: Array<string | undefined> = [];
  let reloaded = false;
  let snapshot: BackendTarget = { ...target };
  for (;;) {
    tried.push(snapshot.password);
    try {
      return await login(snapshot);
    } catch (err) {
      if (!isCredentialRefusal(err) || tried.length >= MAX_LOGINS) throw err;
      let next = untried(target, tried);
      if (next === undefined && !reloaded && target.reload) {
        reloaded = true;
        if (await target.reload()) next = untried(target, tried);
      }
      if (next === undefined) throw err;
      snapshot = { ...target, password: next };
    }
  }
}
