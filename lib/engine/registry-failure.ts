import type { RegistryAuth } from "../registry/auth.ts";

/**
 * What a daemon's report of a failed push or pull means, by the registry's own error codes
 * (`unauthorized:`, `denied:`, `toomanyrequests:`, ...) and the daemon's words around them.
 * Anchored on those: a bare "denied" also appears in the engine's own errors ("permission denied"
 * writing a layer), which no login fixes.
 */
const REFUSED = /\b(unauthorized|denied):|authentication required|no basic auth credentials|incorrect username or password|pull access denied/i;
const MISSING = /manifest unknown|name unknown|not found|does not exist/i;
const NO_SUCH_HOST = /no such host/i;
const PLAIN_HTTP = /server gave HTTP response to HTTPS client/i;
const TRANSIENT =
  /toomanyrequests|too many requests|connection refused|connection reset|network is unreachable|no route to host|server misbehaving|i\/o timeout|timed? ?out|deadline exceeded|unavailable|\bEOF\b|\b5\d\d\b/i;

/**
 * What the daemon's report of a failed push or pull to `host` means for the user: a refused login
 * (fix the registration), an image the registry does not hold, a host that does not exist, or an
 * outage (retried), with what to do. The daemon's text never holds the login itself.
 */
export function registryFailure(doing: "push" | "pull", ref: string, host: string, auth: RegistryAuth | undefined, text: string): { message: string; retryable: boolean } {
  const what = `${doing === "push" ? "pushing" : "pulling"} ${ref} failed: ${text}`;
  const register = `\`hoist registry set ${host} --username U --password-stdin\``;
  if (REFUSED.test(text)) {
    // Docker says "pull access denied ... may require 'docker login'" for a repository that does
    // not exist as well as for one it may not read: without a login it cannot tell.
    const fix = auth
      ? `the registry refused the login registered for ${host}, or it may not ${doing} this repository: check it, and register it again with ${register}`
      : `${host} needs a login (or has no such repository): register one with ${register}`;
    return { message: `${what}: ${fix}`, retryable: false };
  }
  if (MISSING.test(text)) {
    const fix =
      doing === "push"
        ? `the registry ${host} has no such repository, and does not create it on push (Amazon ECR): create the repository first`
        : `the registry ${host} does not hold it: was it pushed, or deleted since?`;
    return { message: `${what}: ${fix}`, retryable: false };
  }
  if (NO_SUCH_HOST.test(text)) return { message: `${what}: no registry ${host} is known by that name: check the host in the image name`, retryable: false };
  if (PLAIN_HTTP.test(text))
    return { message: `${what}: ${host} speaks plain HTTP: give it TLS, or list it in the engine's insecure-registries (daemon.json)`, retryable: false };
  if (TRANSIENT.test(text)) return { message: `${what}: the registry ${host} did not answer, or asked to wait; retrying later`, retryable: true };
  return { message: what, retryable: false };
}
