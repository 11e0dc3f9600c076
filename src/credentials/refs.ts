/**
 * Secret references: the only way a secret appears in the config.
 *   env:NAME     the environment variable NAME of the gateway process
 *   file:PATH    the contents of a file (one trailing newline is removed, as secret files written by
 *                `echo` or mounted by Kubernetes/Docker usually end with one); a relative PATH is made
 *                absolute against the config file's directory when the config is loaded
 *   secret:NAME  the gateway's encrypted secret store (`jitgate secrets set NAME`)
 * Errors name the reference, never the value.
 */
import { readFile } from 'node:fs/promises';
import { tryParseSecretRef, type ParsedSecretRef } from '../core/secret-ref.js';
import { CredentialError, type SecretStore } from './secret-store.js';

export { CredentialError, tryParseSecretRef, type ParsedSecretRef };

export function parseSecretRef(ref: string): ParsedSecretRef {
  const r = tryParseSecretRef(ref);
  if (!r.ok) throw new CredentialError(`invalid secret reference: ${r.problem}`);
  return r.ref;
}

export interface ResolveOptions {
  /** Needed only for `secret:` references. */
  secretStore?: SecretStore;
  env?: NodeJS.ProcessEnv;
}

/** Resolve a reference to its value. Throws CredentialError naming the reference (never the value). */
export async function resolveSecretRef(ref: string, options: ResolveOptions = {}): Promise<string> {
  const parsed = parseSecretRef(ref);
  const env = options.env ?? process.env;
  switch (parsed.kind) {
    case 'env': {
      const value = env[parsed.name];
      if (value === undefined) throw new CredentialError(`${ref}: environment variable ${parsed.name} is not set`);
      if (value === '') throw new CredentialError(`${ref}: environment variable ${parsed.name} is empty`);
      return value;
    }
    case 'file': {
      let text: string;
      try {
        text = await readFile(parsed.path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
        throw new CredentialError(`${ref}: cannot read the file (${why})`);
      }
      const value = text.replace(/\r?\n$/, '');
      if (value === '') throw new CredentialError(`${ref}: the file is empty`);
      return value;
    }
    case 'secret': {
      if (!options.secretStore) throw new CredentialError(`${ref}: no secret store is available to resolve it`);
      const value = await options.secretStore.get(parsed.name);
      if (value === undefined) {
        throw new CredentialError(`${ref}: no secret named ${parsed.name} in the secret store (jitgate secrets set ${parsed.name})`);
      }
      return value;
    }
  }
}
