/**
 * The syntax of a secret reference (env:NAME, file:PATH, secret:NAME) and of a secret name: pure,
 * so that the config loader can validate references without depending on credentials/, which
 * resolves them (credentials/refs.ts).
 */

const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,127}$/;

/** Why a secret name is not acceptable, or undefined when it is. */
export function secretNameProblem(name: string): string | undefined {
  if (SECRET_NAME.test(name)) return undefined;
  return 'secret names are 1-128 characters: letters, digits and _ . - /, starting with a letter or digit';
}

export type ParsedSecretRef = { kind: 'env'; name: string } | { kind: 'file'; path: string } | { kind: 'secret'; name: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const SECRET_REF_HINT = 'a secret reference: env:NAME, file:PATH or secret:NAME';

/** Parse a reference, or return a message saying why it is not one (never echoing the text). */
export function tryParseSecretRef(ref: string): { ok: true; ref: ParsedSecretRef } | { ok: false; problem: string } {
  const colon = ref.indexOf(':');
  const scheme = colon > 0 ? ref.slice(0, colon) : '';
  const rest = colon > 0 ? ref.slice(colon + 1) : '';
  switch (scheme) {
    case 'env':
      if (!ENV_NAME.test(rest)) return { ok: false, problem: 'env: must be followed by an environment variable name' };
      return { ok: true, ref: { kind: 'env', name: rest } };
    case 'file':
      if (rest === '' || rest.includes('\0')) return { ok: false, problem: 'file: must be followed by a file path' };
      return { ok: true, ref: { kind: 'file', path: rest } };
    case 'secret': {
      const problem = secretNameProblem(rest);
      if (problem) return { ok: false, problem: `secret: must be followed by a secret name (${problem})` };
      return { ok: true, ref: { kind: 'secret', name: rest } };
    }
    default:
      return { ok: false, problem: `expected ${SECRET_REF_HINT}` };
  }
}
