/**
 * Logging in across a rotation of the gateway's own backend password. A login takes a snapshot of
 * the target's password; when the backend refuses it, the rotation may have changed the password
 * under that login (the backend switched before the gateway's copy, or the reverse). Every backend
 * client asks here for the one other password worth a single retry.
 */
import type { BackendTarget } from './types.js';

/** The password to try once more after the backend refused `tried`, or undefined when there is none. */
export function retryPassword(target: BackendTarget, tried: string | undefined): string | undefined {
  if (target.password !== undefined && target.password !== tried) return target.password;
  if (target.otherPassword !== undefined && target.otherPassword !== tried) return target.otherPassword;
  return undefined;
}

/**
 * Logs in with a snapshot of the current password; if the backend refuses the credential and a
 * rotation offers another password, logs in once more with that one.
 */
export async function withPasswordRetry<T>(
  target: BackendTarget,
  login: (snapshot: BackendTarget) => Promise<T>,
  isCredentialRefusal: (err: unknown) => boolean,
): Promise<T> {
  const first = { ...target };
  try {
    return await login(first);
  } catch (err) {
    const other = isCredentialRefusal(err) ? retryPassword(target, first.password) : undefined;
    if (other === undefined) throw err;
    return login({ ...target, password: other });
  }
}
