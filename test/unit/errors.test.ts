import { connect } from "node:net";
import { DynamoDBServiceException, ProvisionedThroughputExceededException } from "@aws-sdk/client-dynamodb";
import { GitbeakerRequestError, GitbeakerTimeoutError } from "@gitbeaker/rest";
import { RequestError } from "@octokit/request-error";
import { describe, expect, it } from "vitest";
import { BusyError, classify, HoistError, InternalError, RetryableError } from "../../lib/errors.ts";
import { EngineError, instanceHostError } from "../../lib/engine/docker.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { BadPayloadError } from "../../lib/scm/errors.ts";

/** A real socket error: what Node gives for a connection to `path` or `port`. */
function socketError(to: { path: string } | { port: number; host: string }): Promise<Error> {
  return new Promise((resolve) => {
    const s = connect(to as { path: string });
    s.on("error", resolve);
    s.on("connect", () => {
      s.destroy();
      resolve(new Error("unexpectedly connected"));
    });
  });
}

/** An error as docker-modem builds it from the daemon's answer (statusCode, reason, json). */
function dockerError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) unexpected - ${message}`), { statusCode, reason: "unexpected", json: { message } });
}

const octokit = (status: number) =>
  new RequestError(`HTTP ${status}`, status, { request: { method: "GET", url: "https://api.github.com/repos/a/b/contents/.hoist.yml", headers: {} }, response: { status, url: "", headers: { "retry-after": "7" }, data: {} } });

const gitbeaker = (status: number) =>
  new GitbeakerRequestError("Service Unavailable", {
    cause: { description: "Service Unavailable", request: new Request("https://gitlab.example/api/v4/projects/1"), response: new Response("", { status }) },
  });

describe("one classification decides the retry and the HTTP status", () => {
  it.each([
    ["a refused TCP connection", () => socketError({ port: 1, host: "127.0.0.1" }), true, 503],
    ["a unix socket that is not there (dockerd down)", () => socketError({ path: "/nonexistent/docker.sock" }), true, 503],
    ["Docker 404 (no such image)", async () => dockerError(404, "No such image: shop:abc"), false, 404],
    ["Docker 409 (name in use)", async () => dockerError(409, "Conflict. The container name is already in use"), false, 409],
    ["Docker 500", async () => dockerError(500, "driver failed programming external connectivity"), true, 503],
    ["Docker 400 (bad reference)", async () => dockerError(400, "invalid reference format"), false, 400],
    ["an instance host's wrapped 500", async () => instanceHostError("start", dockerError(500, "oops")), true, 503],
    ["an instance host's wrapped refusal", async () => instanceHostError("start", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })), true, 503],
    ["an engine error marked permanent", async () => new EngineError("bad", { retryable: false }), false, 422],
    ["HAProxy that is not there", () => new HaproxyRouter({ socket: "/nonexistent/haproxy.sock" }).servers("web").then(() => new Error("answered"), (e: Error) => e), true, 503],
    ["AWS throttling", async () => new ProvisionedThroughputExceededException({ message: "slow down", $metadata: {} }), true, 503],
    ["AWS server fault", async () => new DynamoDBServiceException({ name: "InternalServerError", $fault: "server", $metadata: {}, message: "boom" }), true, 503],
    ["AWS item too large (client fault)", async () => new DynamoDBServiceException({ name: "ValidationException", $fault: "client", $metadata: {}, message: "Item size has exceeded the maximum allowed size" }), false, 422],
    ["GitHub 502", async () => octokit(502), true, 503],
    ["GitHub 429", async () => octokit(429), true, 503],
    ["GitHub 404", async () => octokit(404), false, 404],
    ["GitLab 503", async () => gitbeaker(503), true, 503],
    ["GitLab 401", async () => gitbeaker(401), false, 422],
    ["gitbeaker's own timeout", async () => new GitbeakerTimeoutError("Query timeout was reached"), true, 503],
    ["a fetch deadline", async () => { const s = AbortSignal.timeout(0); await new Promise((r) => setTimeout(r, 5)); return s.reason as Error; }, true, 503],
    ["a bad payload", async () => new BadPayloadError("push", ["ref: required"]), false, 400],
    ["an environment held by another release", async () => new BusyError("held by r1"), true, 409],
    ["a bug (TypeError)", async () => new TypeError("x is undefined"), false, 500],
  ])("%s", async (_what, make, retryable, status) => {
    const err = await make();
    const e = classify(err);
    expect({ retryable: e.retryable, status: e.status }).toEqual({ retryable, status });
    // Hoist's own errors are their own classification; a foreign one is kept as the cause.
    if (err instanceof HoistError) expect(e).toBe(err);
    else expect(e.cause).toBe(err);
  });

  it("keeps a peer's Retry-After", () => {
    const e = classify(octokit(503));
    expect(e).toBeInstanceOf(RetryableError);
    expect((e as RetryableError).retryAfterMs).toBe(7000);
  });

  it("a foreign error keeps its message, and an unknown one is internal", () => {
    expect(classify(new Error("weird")).message).toBe("weird");
    expect(classify("a string")).toBeInstanceOf(InternalError);
  });
});
