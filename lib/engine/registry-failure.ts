import type { RegistryAuth } from "../registry/auth.ts";

/** A registry's refusal of the login (or of none), in the daemon's words for a push or pull. */
const DENIED = /unauthorized|authentication required|no basic auth credentials|denied|forbidden|incorrect username or password/i;

/** What the registry does not hold, in the daemon's words for a pull. */
const MISSING = /manifest unknown|not found|does not exist/i;

/** Registry failures worth another try later (network, overload). */
const TRANSIENT = /connection refused|connection reset|timeout|timed out|EOF|no route to host|unavailable|too many requests|i\/o timeout|5\d\d /i;

/**
 * What the daemon's report of a failed push or pull to `host` means for the user: a refused login
 * (fix the registration), an image the registry does not hold, or an outage (retried), with the
 * command that fixes the first. The daemon's text never holds the login itself.
 */
export function registryFailure(doing: string, host: string, auth: RegistryAuth | undefined, text: string): { message: string; retryable: boolean } {
  if (DENIED.test(text) && !MISSING.test(text)) {
    const fix = auth
      ? `the registry refused the login registered for ${host}: check it and register it again (\`hoist registry set ${host} --username U --password-stdin\`)`
      : `${host} needs a login: register one with \`hoist registry set ${host} --username U --password-stdin\``;
    return { message: `${doing} failed: ${text}: ${fix}`, retryable: false };
  }
  // "pull access denied ... does not exist or may require 'docker login'": Docker cannot tell
  // the two apart without a login; with one, the image is missing.
  if (MISSING.test(text))
    return {
      message: `${doing} failed: ${text}: the registry ${host} does not hold it (was it pushed, or deleted since?)${auth ? "" : `; if ${host} needs a login, register one with \`hoist registry set ${host} --username U --password-stdin\``}`,
      retryable: false,
    };
  if (TRANSIENT.test(text)) return { message: `${doing} failed: ${text}: the registry ${host} did not answer; retrying later`, retryable: true };
  return { message: `${doing} failed: ${text}`, retryable: false };
}
