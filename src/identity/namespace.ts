/**
 * Who is who: people, API keys and service accounts live in separate namespaces, so no key or
 * service account can ever be taken for a person (act on their grants and tokens, withdraw their
 * held statements, or be attributed their actions in the audit log).
 *
 *   person           the IdP's user name as is (`alice`)
 *   API key          `apikey:<key name>`       (`apikey:ci-deploy`)
 *   service account  `svc:<configured name>`   (`svc:reporting-bot`)
 *
 * A person's name that starts with one of these prefixes is refused at sign-in: an IdP must not be
 * able to mint a user called `apikey:ci-deploy` either.
 */

export const API_KEY_SUBJECT_PREFIX = 'apikey:';
export const SERVICE_SUBJECT_PREFIX = 'svc:';

/** The identity name an API key acts as. */
export function apiKeySubject(keyName: string): string {
  return `${API_KEY_SUBJECT_PREFIX}${keyName}`;
}

/** The identity name a configured service account acts as. */
export function serviceSubject(accountName: string): string {
  return `${SERVICE_SUBJECT_PREFIX}${accountName}`;
}

/** True when a person may not carry this name (it would sit in the keys' or services' namespace). */
export function isReservedForMachines(user: string): boolean {
  const lower = user.toLowerCase();
  return lower.startsWith(API_KEY_SUBJECT_PREFIX) || lower.startsWith(SERVICE_SUBJECT_PREFIX);
}
