import { describe, expect, it } from "vitest";
import { registryFailure } from "../../lib/engine/registry-failure.ts";

/** The daemon's own words for failed pushes and pulls (Docker 24-28, registry:2, ECR, Docker Hub), and what each means. */
const login = { username: "ci", password: "s3cret-password", serveraddress: "reg.example.com" };

describe("registryFailure reads the daemon's report of a failed push or pull", () => {
  it.each([
    ["pull", "unauthorized: authentication required", login, false, /refused the login registered for reg\.example\.com.*hoist registry set reg\.example\.com/],
    ["pull", "Head \"https://reg.example.com/v2/app/manifests/sha256:aa\": unauthorized: incorrect username or password", login, false, /refused the login/],
    ["push", "no basic auth credentials", undefined, false, /reg\.example\.com needs a login .*register one with `hoist registry set reg\.example\.com/],
    ["pull", "pull access denied for reg.example.com/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", undefined, false, /needs a login \(or has no such repository\)/],
    ["push", "denied: requested access to the resource is denied", login, false, /or it may not push this repository/],
    ["pull", "manifest for reg.example.com/app@sha256:00 not found: manifest unknown: manifest unknown", login, false, /does not hold it: was it pushed, or deleted since\?/],
    ["push", "name unknown: The repository with name 'app' does not exist in the registry with id '123456789012'", login, false, /has no such repository.*create the repository first/],
    ["pull", "Get \"https://nope.example.com/v2/\": dial tcp: lookup nope.example.com on 127.0.0.53:53: no such host", undefined, false, /no registry reg\.example\.com is known by that name/],
    ["pull", "Get \"https://reg.example.com/v2/\": http: server gave HTTP response to HTTPS client", undefined, false, /insecure-registries/],
    ["pull", "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading", undefined, true, /asked to wait; retrying later/],
    ["pull", "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused", undefined, true, /did not answer/],
    ["pull", "Get \"https://reg.example.com/v2/\": dial tcp: lookup reg.example.com: server misbehaving", undefined, true, /did not answer/],
    ["pull", "Get \"https://reg.example.com/v2/\": context deadline exceeded", undefined, true, /did not answer/],
    ["pull", "Get \"https://reg.example.com/v2/\": dial tcp 10.0.0.5:443: connect: network is unreachable", undefined, true, /did not answer/],
    ["push", "received unexpected HTTP status: 503 Service Unavailable", login, true, /did not answer/],
    ["pull", "failed to register layer: open /var/lib/docker/overlay2/x: permission denied", login, false, /^pulling .* permission denied$/],
  ] as const)("%s: %s", (doing, text, auth, retryable, message) => {
    const failure = registryFailure(doing, "reg.example.com/app@sha256:00", "reg.example.com", auth, text);
    expect(failure.retryable).toBe(retryable);
    expect(failure.message).toMatch(message);
    expect(failure.message).not.toContain(login.password);
  });
});
