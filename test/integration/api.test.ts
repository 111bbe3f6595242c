import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiApp } from "../../lib/http/server.ts";
import { deliveryRunId } from "../../lib/runs/ids.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { makeRun } from "../support/runs.ts";

const TOKEN = "api-token-for-tests-123";
// Ids as the webhook makes them: the API answers 404 to any other without asking the table.
const RUN_1 = deliveryRunId("github", "api-1", "main");
const RUN_2 = deliveryRunId("github", "api-2", "main");
let servers: StartedServers;
let s: Services;
let app: Hono;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers, { HOIST_API_TOKEN: TOKEN });
  app = apiApp(s);
  await s.store.createRun(makeRun(undefined, { id: RUN_1, branch: "main" }), { until: 1 });
  await s.store.putLog(RUN_1, { stage: 0, offset: 0, text: "step one\n" });
});
afterAll(async () => {
  await servers.close();
});

const get = (path: string, token: string | null = TOKEN) =>
  app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("API", () => {
  it("lists, shows and returns logs of runs", async () => {
    expect(await (await get("/api/runs?repo=github:acme/shop&branch=main")).json()).toMatchObject({ runs: [{ id: RUN_1 }] });
    expect(await (await get(`/api/runs/${RUN_1}`)).json()).toMatchObject({ id: RUN_1, status: "queued", stages: [{ name: "build-0" }, {}, {}] });
    expect(await (await get(`/api/runs/${RUN_1}/logs`)).json()).toMatchObject({ runId: RUN_1, stages: [{ stage: 0, text: "step one\n" }, { text: "" }, { text: "" }] });
    expect(await (await get(`/api/runs/${RUN_1}/logs?format=text&stage=0`)).text()).toBe("=== build-0 (pending) ===\nstep one\n");
  });

  it.each([
    ["no token", () => get("/api/runs", null), 401],
    ["a wrong token", () => get("/api/runs", "wrong-token-wrong-token"), 401],
    ["an unknown run", () => get("/api/runs/nope"), 404],
    ["a well-formed id of no run", () => get(`/api/runs/${deliveryRunId("github", "none", "main")}`), 404],
    ["a log stage past the last a run can have", () => get(`/api/runs/${RUN_1}/logs?stage=50`), 400],
    ["a bad status filter", () => get("/api/runs?status=done"), 400],
    ["a repo without provider", () => get("/api/runs?repo=acme/shop"), 400],
    ["an unknown query parameter", () => get("/api/runs?colour=red"), 400],
  ])("answers %s with %s and says why", async (_name, send, status) => {
    const res = await send();
    expect(res.status).toBe(status);
    const { error } = (await res.json()) as { error: string };
    expect(error.length).toBeGreaterThan(10);
    if (status === 401) {
      expect(error).toMatch(/API token: send `Authorization: Bearer <HOIST_API_TOKEN>`/);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
  });

  it("refuses an environment or rollback body that is not JSON, or too large, and acts on neither", async () => {
    const send = (method: string, path: string, body: string) =>
      app.request(path, { method, body, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } });
    const env = { engine: { endpoint: "tcp://127.0.0.1:1" }, router: { admin: "tcp://127.0.0.1:1", backend: "app" } };
    expect((await send("PUT", "/api/environments/api-env", JSON.stringify(env))).status).toBe(200);
    // A truncated rollback body must not read as "no target" and roll back to another release.
    const truncated = await send("POST", "/api/environments/api-env/rollback", '{"to":"01J');
    expect(truncated.status).toBe(400);
    expect(await truncated.json()).toEqual({ error: "body is not JSON" });
    expect((await send("PUT", "/api/environments/api-env2", "{engine")).status).toBe(400);
    const huge = await send("PUT", "/api/environments/api-env3", JSON.stringify({ ...env, pad: "x".repeat(100_000) }));
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: string }).error).toMatch(/body over 64 KiB/);
    expect(await s.releases.listReleases("api-env")).toEqual([]);
    expect((await s.releases.listEnvironments()).map((e) => e.name)).toEqual(["api-env"]);
  });

  it("is closed (503) when no token is configured, never open", async () => {
    const closed = apiApp(await servicesOn(servers));
    const res = await closed.request("/api/runs");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "the API is disabled: set HOIST_API_TOKEN on the server" });
  });

  it("cancels a queued run once", async () => {
    await s.store.createRun(makeRun(undefined, { id: RUN_2 }), { until: 1 });
    const cancel = () => app.request(`/api/runs/${RUN_2}/cancel`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    const first = await cancel();
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ status: "cancelled", error: "cancelled by the API" });
    expect((await cancel()).status).toBe(409);
    expect((await s.store.expiredRuns(Date.now(), 10)).map((r) => r.run.id)).not.toContain(RUN_2);
  });
});

describe("ids and names in the path", () => {
  // Over DynamoDB's key limits (1 KB for a sort key, 2 KB for a partition key): asking the
  // table with them is a validation error, which answered 500.
  const longRun = "a".repeat(2_100);
  const longEnv = "a".repeat(1_100);
  const send = (method: string, path: string, body?: string) =>
    app.request(path, { method, ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } });

  it.each([
    ["GET", `/api/runs/${longRun}`, 404, /^no run a{64}…: list runs/],
    ["GET", `/api/runs/${longRun}/logs`, 404, /^no run a{64}…: list runs/],
    ["GET", `/api/runs/${longRun}/logs?format=text`, 404, /^no run a{64}…/],
    ["POST", `/api/runs/${longRun}/cancel`, 404, /^no run a{64}…/],
    ["GET", `/api/runs/${RUN_1.toUpperCase()}`, 404, /^no run R/],
    ["GET", `/api/environments/${longEnv}`, 404, /^no environment a{64}…: names are lower-case/],
    ["GET", `/api/environments/${longEnv}/releases`, 404, /^no environment a{64}…/],
    ["POST", `/api/environments/${longEnv}/rollback`, 404, /^no environment a{64}…/],
    ["GET", `/api/environments/${"a".repeat(41)}/releases`, 404, /^no environment a{41}:/],
    ["PUT", `/api/environments/${longEnv}`, 400, /^name: is lower-case letters, digits and -, at most 40/],
  ])("%s %s answers %s, never 500", async (method, path, status, message) => {
    const body = method === "GET" ? undefined : JSON.stringify({ engine: { endpoint: "tcp://127.0.0.1:1" }, router: { admin: "tcp://127.0.0.1:1", backend: "app" } });
    const res = await send(method, path, body);
    expect(res.status).toBe(status);
    const { error } = (await res.json()) as { error: string };
    expect(error).toMatch(message);
    expect(error.length).toBeLessThan(300);
  });

  it("a rollback to a release id over its bound is a 400 naming the field", async () => {
    const env = { engine: { endpoint: "tcp://127.0.0.1:1" }, router: { admin: "tcp://127.0.0.1:1", backend: "app" } };
    expect((await send("PUT", "/api/environments/api-long-to", JSON.stringify(env))).status).toBe(200);
    const res = await send("POST", "/api/environments/api-long-to/rollback", JSON.stringify({ to: "x".repeat(2_100) }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^to: /);
  });

  it("a list filter over its bounds is a 400 naming the field", async () => {
    const res = await get(`/api/runs?branch=${"b".repeat(2_100)}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^branch: /);
  });
});
