import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush, gitlabPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp, type SampleApp } from "../../lib/demo/sample-app.ts";
import { withErrors } from "../../lib/http/app.ts";
import { webhookApp } from "../../lib/http/webhook-app.ts";
import { webhookLambda } from "../../lib/http/webhook-lambda.ts";
import { webhookOptions } from "../../lib/http/webhook-receive.ts";
import { webhookRoutes } from "../../lib/http/webhooks.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import type { Services } from "../../lib/services.ts";
import { signGitHub } from "../../lib/scm/verify.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { eventKindCases, githubFormBody, type EventKindCase } from "../support/event-kinds.ts";
import { writeFile } from "node:fs/promises";
import { resolveDelivery } from "../../lib/runs/resolve-delivery.ts";
import type { Delivery } from "../../lib/store/deliveries.ts";

const SECRET = "gh-secret-for-tests";
const GITLAB_TOKEN = "gl-token-for-tests";
let servers: StartedServers;
let s: Services;
let app: Hono;
let lambda: ReturnType<typeof webhookLambda>;
let repo: SampleApp;
let seq = 0;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers, {
    GITHUB_WEBHOOK_SECRET: `old-secret-rotating-out,${SECRET}`,
    GITLAB_WEBHOOK_TOKEN: GITLAB_TOKEN,
    HOIST_ALLOW_LOCAL_REPOS: "1",
    HOIST_REGISTRY: "127.0.0.1:5000",
    HOIST_MAX_BODY_BYTES: "65536",
  });
  app = webhookApp(s);
  lambda = webhookLambda(webhookOptions(s), s.log);
  repo = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-hook-")), { image: "hook" });
});
afterAll(async () => {
  await servers.close();
});

interface Sent {
  status: number;
  body: Record<string, unknown>;
}
type Send = (path: string, init: { body: string; headers: Record<string, string> }) => Promise<Sent>;

/**
 * The two ways a delivery arrives: hono's routes (the local server, the edge Worker) and the
 * webhook function's own Lambda handler, given the request as API Gateway's HTTP API hands it
 * over (header names in lower case). Every case below runs on both.
 */
const adapters: [string, Send][] = [
  ["hono's routes", async (path, init) => {
    const res = await app.request(path, { method: "POST", ...init });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }],
  ["the Lambda handler", async (path, init) => {
    const headers = Object.fromEntries(Object.entries(init.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const res = await lambda({ version: "2.0", rawPath: path, headers, body: init.body, isBase64Encoded: false, requestContext: { http: { method: "POST", path } } });
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
  }],
];
let send: Send;
/** Delivery ids fixed by a case, made distinct per adapter (both share one table). */
let fixedId: (id: string) => string;

async function github(body: string, headers: Record<string, string | undefined> = {}) {
  const all: Record<string, string | undefined> = {
    "content-type": "application/json",
    "x-github-event": "push",
    "x-github-delivery": `gh-${++seq}`,
    "x-hub-signature-256": await signGitHub(body, SECRET),
    ...headers,
  };
  return send("/hooks/github", { body, headers: defined(all) });
}

async function gitlab(body: string, headers: Record<string, string | undefined> = {}) {
  const all = { "content-type": "application/json", "x-gitlab-event": "Push Hook", "x-gitlab-token": GITLAB_TOKEN, "idempotency-key": `gl-${++seq}`, ...headers };
  return send("/hooks/gitlab", { body, headers: defined(all) });
}

function defined(h: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The number of pending deliveries and of runs in the table, and of messages in the queue. */
async function footprint() {
  return {
    deliveries: (await s.deliveries.dueDeliveries(Number.MAX_SAFE_INTEGER, 1000)).length,
    runs: (await s.store.listRuns({ limit: 200 })).runs.length,
    messages: await s.queue.depth(),
  };
}

/** What a worker does with the delivery's message: read `.hoist.yml`, make the runs. */
async function resolved(answer: { body: Record<string, unknown> }): Promise<Delivery> {
  const id = (answer.body.delivery as { id: string }).id;
  await resolveDelivery(s.resolve, id);
  return (await s.deliveries.getDelivery(id))!.delivery;
}

const push = () => githubPush({ path: repo.path, sha: repo.sha, ref: "refs/heads/main", fullName: "acme/hook" });

describe.each(adapters)("through %s", (name, through) => {
  beforeAll(() => {
    send = through;
    fixedId = (id) => `${name}: ${id}`;
  });

  describe("POST /hooks/github", () => {
    it("a matching push records one delivery and one message; the worker then makes one queued run per pipeline and enqueues it", async () => {
      const before = await footprint();
      const res = await github(push());
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ delivery: { id: expect.stringMatching(/^d[0-9a-z]{24}$/), status: "pending" }, duplicate: false });
      expect(await footprint()).toEqual({ deliveries: before.deliveries + 1, runs: before.runs, messages: before.messages + 1 });
      const delivery = await resolved(res);
      expect(delivery).toMatchObject({ status: "resolved", attempts: 1, runs: [{ id: expect.stringMatching(/^r[0-9a-z]{24}$/), pipeline: "main", status: "queued" }] });
      expect((await s.store.getRun(delivery.runs![0]!.id))?.run).toMatchObject({ repo: { fullName: "acme/hook" }, sha: repo.sha, branch: "main", stages: [{ name: "build" }, { name: "test" }, { name: "push" }] });
      expect(await footprint()).toEqual({ deliveries: before.deliveries, runs: before.runs + 1, messages: before.messages + 2 });
      // A second wake-up for the same delivery (a duplicate message, the reconciler) changes nothing.
      expect(await resolveDelivery(s.resolve, delivery.id)).toBe("already-done");
      expect(await footprint()).toEqual({ deliveries: before.deliveries, runs: before.runs + 1, messages: before.messages + 2 });
    });

    it("20 copies of one delivery at once make exactly one delivery, one message, then one run", async () => {
      const before = await footprint();
      const body = push();
      const answers = await Promise.all(Array.from({ length: 20 }, () => github(body, { "x-github-delivery": fixedId("same-delivery") })));
      expect(answers.every((a) => a.status === 202)).toBe(true);
      const ids = new Set(answers.map((a) => (a.body.delivery as { id: string }).id));
      expect(ids.size).toBe(1);
      expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
      expect(await footprint()).toEqual({ deliveries: before.deliveries + 1, runs: before.runs, messages: before.messages + 1 });
      // Two workers resolving it at once make one run between them.
      await Promise.all([resolved(answers[0]!), resolved(answers[1]!)]);
      expect(await footprint()).toEqual({ deliveries: before.deliveries, runs: before.runs + 1, messages: before.messages + 2 });
      // ...and a late redelivery answers the runs made, and still changes nothing.
      const late = await github(body, { "x-github-delivery": fixedId("same-delivery") });
      expect(late.body).toMatchObject({ duplicate: true, delivery: { status: "resolved", runs: [{ pipeline: "main" }] } });
      expect(await footprint()).toEqual({ deliveries: before.deliveries, runs: before.runs + 1, messages: before.messages + 2 });
    });

    it("accepts a secret that is being rotated out", async () => {
      const body = push();
      expect((await github(body, { "x-hub-signature-256": await signGitHub(body, "old-secret-rotating-out") })).status).toBe(202);
    });

    it("answers ping with 200 and writes nothing", async () => {
      const before = await footprint();
      const ping = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 });
      const res = await github(ping, { "x-github-event": "ping" });
      expect(res).toMatchObject({ status: 200, body: { ok: true } });
      expect(await footprint()).toEqual(before);
    });

    const rejected: [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, RegExp][] = [
      ["a wrong signature", async () => github(push(), { "x-hub-signature-256": await signGitHub(push(), "not-the-secret") }), 401, /X-Hub-Signature-256/],
      ["a missing signature", () => github(push(), { "x-hub-signature-256": undefined }), 401, /X-Hub-Signature-256/],
      ["a body altered after signing", async () => github(push().replace("main", "evil"), { "x-hub-signature-256": await signGitHub(push(), SECRET) }), 401, /does not match/],
      ["garbled JSON", () => github('{"ref": "refs/heads/main", '), 400, /not valid JSON/],
      ["a push without repository", () => github(JSON.stringify({ ref: "refs/heads/main", after: repo.sha })), 400, /repository/],
      ["a missing event header", () => github(push(), { "x-github-event": undefined }), 400, /X-GitHub-Event/],
      ["a missing delivery header", () => github(push(), { "x-github-delivery": undefined }), 400, /X-GitHub-Delivery/],
      ["a body over the limit", () => github(JSON.stringify({ pad: "x".repeat(70_000) })), 413, /larger than 65536 bytes/],
    ];
    it.each(rejected)("rejects %s, writing and enqueueing nothing", async (_name, send, status, message) => {
      const before = await footprint();
      const res = await send();
      expect(res.status).toBe(status);
      expect(String(res.body.error)).toMatch(message);
      expect(await footprint()).toEqual(before);
    });

    it.each([
      ["an unknown event", () => github(JSON.stringify({ action: "opened" }), { "x-github-event": "issues" }), /event issues is not handled/],
      ["a branch deletion", () => github(push().replace('"deleted":false', '"deleted":true').replace(repo.sha, "0".repeat(40))), /deleted/],
    ])("acknowledges and ignores %s", async (_name, send, reason) => {
      const before = await footprint();
      const res = await send();
      expect(res.status).toBe(202);
      expect(String(res.body.ignored)).toMatch(reason);
      expect(await footprint()).toEqual(before);
    });

    it("a push to a branch no pipeline runs on is resolved as ignored, with the reason, and makes no run", async () => {
      const res = await github(githubPush({ path: repo.path, sha: repo.sha, ref: "refs/heads/other" }));
      expect(res.status).toBe(202);
      const before = await footprint();
      expect(await resolved(res)).toMatchObject({ status: "ignored", reason: expect.stringMatching(/no pipeline in \.hoist\.yml runs on refs\/heads\/other/) });
      expect(await footprint()).toEqual({ deliveries: before.deliveries - 1, runs: before.runs, messages: before.messages });
    });

    it("a .hoist.yml with a type error records one failed run with the line and field, enqueues nothing", async () => {
      await writeFile(join(repo.path, ".hoist.yml"), "pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - build: {}\n      - test: { run: make, timeout: soon }\n");
      const broken = await commitAll(repo.path, "main", "break the pipeline file");
      const res = await github(githubPush({ path: broken.path, sha: broken.sha, ref: "refs/heads/main" }));
      expect(res.status).toBe(202);
      const before = await footprint();
      expect((await resolved(res)).runs).toEqual([
        { id: expect.any(String), pipeline: ".hoist.yml", status: "failed", error: expect.stringMatching(/^\.hoist\.yml:6: pipelines\.main\.stages\[1\]\.test\.timeout: .*number/) },
      ]);
      expect(await footprint()).toEqual({ deliveries: before.deliveries - 1, runs: before.runs + 1, messages: before.messages });
    });
  });

  describe("POST /hooks/gitlab", () => {
    const glPush = () => gitlabPush({ path: repo.path, sha: repo.sha, ref: "refs/heads/main", fullName: "group/hook" });

    it("20 copies with one Idempotency-Key make exactly one run", async () => {
      await writeFile(join(repo.path, ".hoist.yml"), "pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages: [ { build: }, { push: } ]\n");
      const fixed = await commitAll(repo.path, "main", "fix the pipeline file");
      const body = gitlabPush({ path: fixed.path, sha: fixed.sha, ref: "refs/heads/main", fullName: "group/hook" });
      const before = await footprint();
      const answers = await Promise.all(Array.from({ length: 20 }, () => gitlab(body, { "idempotency-key": fixedId("gl-same") })));
      expect(answers.every((a) => a.status === 202)).toBe(true);
      expect(new Set(answers.map((a) => (a.body.delivery as { id: string }).id)).size).toBe(1);
      expect(await footprint()).toEqual({ deliveries: before.deliveries + 1, runs: before.runs, messages: before.messages + 1 });
      expect((await resolved(answers[0]!)).runs).toMatchObject([{ pipeline: "main", status: "queued" }]);
      expect(await footprint()).toEqual({ deliveries: before.deliveries, runs: before.runs + 1, messages: before.messages + 2 });
    });

    it("falls back to X-Gitlab-Event-UUID for dedupe", async () => {
      const before = await footprint();
      const body = glPush();
      const first = await gitlab(body, { "idempotency-key": undefined, "x-gitlab-event-uuid": fixedId("uuid-1") });
      const second = await gitlab(body, { "idempotency-key": undefined, "x-gitlab-event-uuid": fixedId("uuid-1") });
      expect([first.body.duplicate, second.body.duplicate]).toEqual([false, true]);
      expect((await footprint()).deliveries).toBe(before.deliveries + 1);
    });

    it.each([
      ["a wrong token", () => gitlab(glPush(), { "x-gitlab-token": "nope" }), 401],
      ["a missing token", () => gitlab(glPush(), { "x-gitlab-token": undefined }), 401],
      ["garbled JSON", () => gitlab("{oops"), 400],
      ["no delivery id", () => gitlab(glPush(), { "idempotency-key": undefined }), 400],
    ])("rejects %s, writing and enqueueing nothing", async (_name, send, status) => {
      const before = await footprint();
      expect((await send()).status).toBe(status);
      expect(await footprint()).toEqual(before);
    });

    it("ignores an unknown event kind", async () => {
      const res = await gitlab(JSON.stringify({ object_kind: "note" }), { "x-gitlab-event": "Note Hook" });
      expect(res.status).toBe(202);
      expect(res.body.ignored).toBeDefined();
    });
  });

  describe("every real event kind, through the HTTP layer (all @octokit/webhooks-examples, GitLab's documented examples of every hook)", () => {
    const sign = async (c: EventKindCase, body: string): Promise<Record<string, string>> =>
      c.provider === "github"
        ? { "x-hub-signature-256": await signGitHub(body, SECRET), "x-github-delivery": `${c.headers["x-github-delivery"]}-${++seq}` }
        : { "x-gitlab-token": GITLAB_TOKEN, "idempotency-key": `kinds-${++seq}` };

    it(`answers each of ${eventKindCases.length} cases with a 2xx or a 400 for a reason in the payload, never a 5xx`, async () => {
      const wrong: string[] = [];
      for (const c of eventKindCases) {
        for (const form of c.provider === "github" ? [false, true] : [false]) {
          const body = form ? githubFormBody(c.body) : JSON.stringify(c.body);
          const headers = { ...c.headers, ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}), ...(await sign(c, body)) };
          const res = await send(`/hooks/${c.provider}`, { body, headers });
          const answer = res.body as { error?: string; ignored?: string; delivery?: unknown; pong?: unknown };
          const expected = c.expected.kind;
          const ok =
            expected === "bad"
              ? res.status === 400 && String(answer.error).includes((c.expected as { reason: string }).reason)
              : expected === "ping"
                ? res.status === 200
                : expected === "ignored"
                  ? res.status === 202 && typeof answer.ignored === "string"
                  : res.status === 202 && (answer.delivery !== undefined || typeof answer.ignored === "string");
          if (!ok) wrong.push(`${c.name}${form ? " (form)" : ""}: ${res.status} ${JSON.stringify(answer).slice(0, 200)}`);
        }
      }
      expect(wrong).toEqual([]);
    });
  });
});

describe("the Lambda handler's own edges", () => {
  const event = (over: Record<string, unknown>) => ({ version: "2.0", rawPath: "/hooks/github", headers: {}, isBase64Encoded: false, requestContext: { http: { method: "POST" } }, ...over });

  it.each([
    ["not an HTTP API event", { requestContext: undefined }, 400, /payload format 2.0/],
    ["another path", { rawPath: "/hooks/bitbucket" }, 404, /no route POST \/hooks\/bitbucket/],
    ["another method", { requestContext: { http: { method: "GET" } } }, 404, /no route GET \/hooks\/github/],
    ["no body and no signature", {}, 401, /X-Hub-Signature-256/],
  ])("answers %s with a JSON error, writing and enqueueing nothing", async (_name, over, status, message) => {
    const before = await footprint();
    const res = await lambda(event(over));
    expect(res).toMatchObject({ statusCode: status, headers: { "content-type": "application/json" }, isBase64Encoded: false });
    expect((JSON.parse(res.body) as { error: string }).error).toMatch(message);
    expect(await footprint()).toEqual(before);
  });

  it("reads a base64 body (API Gateway encodes a binary content type) and header names in any case", async () => {
    const body = push();
    const headers = { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": `gh-b64-${++seq}`, "X-Hub-Signature-256": await signGitHub(body, SECRET) };
    const res = await lambda(event({ headers, body: Buffer.from(body).toString("base64"), isBase64Encoded: true }));
    expect(res.statusCode).toBe(202);
    expect(JSON.parse(res.body)).toMatchObject({ duplicate: false, delivery: { status: "pending" } });
  });

  it("answers a body over the limit 413 before its signature is checked", async () => {
    const res = await lambda(event({ body: "x".repeat(70_000) }));
    expect(res.statusCode).toBe(413);
    expect(res.body).toContain("larger than 65536 bytes");
  });
});

describe("a table that cannot be reached", () => {
  it("is answered 503 with Retry-After by both adapters, and nothing is enqueued", async () => {
    const down = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8000"), { code: "ECONNREFUSED" });
    const deliveries = new Proxy(s.deliveries, { get: () => () => Promise.reject(down) });
    const opts = { ...webhookOptions(s), ingest: { ...s.ingest, deliveries } };
    const hono = withErrors(webhookRoutes(opts), s.log);
    const handler = webhookLambda(opts, s.log);
    const before = await footprint();
    const body = push();
    const headers = { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": `gh-down-${++seq}`, "x-hub-signature-256": await signGitHub(body, SECRET) };
    const viaHono = await hono.request("/hooks/github", { method: "POST", body, headers });
    const viaLambda = await handler({ version: "2.0", rawPath: "/hooks/github", headers, body, isBase64Encoded: false, requestContext: { http: { method: "POST" } } });
    expect([viaHono.status, viaHono.headers.get("retry-after")]).toEqual([503, "5"]);
    expect([viaLambda.statusCode, viaLambda.headers["Retry-After"]]).toEqual([503, "5"]);
    expect(JSON.parse(viaLambda.body)).toEqual(await viaHono.json());
    expect(await footprint()).toEqual(before);
  });
});
