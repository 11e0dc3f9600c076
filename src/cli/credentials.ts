/**
 * The CLI's saved sign-in (written by `jitgate login`). Placeholder reader: the identity work
 * replaces it with the real file handling (0600 permissions, silent refresh).
 */
import type { CliIo } from './io.js';

export interface CliCredentials {
  url: string;
  accessToken: string;
}

export async function loadCliCredentials(_io: CliIo): Promise<CliCredentials | undefined> {
  return undefined;
}
