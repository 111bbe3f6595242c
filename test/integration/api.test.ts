import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiApp } from "../../lib/http/server.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { makeRun } from "../support/runs.ts";

const TOKEN = "api-token-for-tests-123";
let servers: StartedServers;
let s: Services;
let app: Hono;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers, { HOIST_API_TOKEN: TOKEN });
  app = apiApp(s);
  await s.store.createRun(makeRun(undefined, { id: "api-1", branch: "main" }), { until: 1 });
  await s.store.putLog("api-1", { stage: 0, offset: 0, text: "step one\n" });
});
afterAll(async () => {
  await servers.close();
});

const get = (path: string, token: string | null = TOKEN) =>
  app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("API", () => {
  it("lists, shows and returns logs of runs", async () => {
    expect(await (await get("/api/runs?repo=github:acme/shop&branch=main")).json()).toMatchObject({ runs: [{ id: "api-1" }] });
    expect(await (await get("/api/runs/api-1")).json()).toMatchObject({ id: "api-1", status: "queued", stages: [{ name: "build-0" }, {}, {}] });
    expect(await (await get("/api/runs/api-1/logs")).json()).toMatchObject({ runId: "api-1", stages: [{ stage: 0, text: "step one\n" }, { text: "" }, { text: "" }] });
    expect(await (await get("/api/runs/api-1/logs?format=text&stage=0")).text()).toBe("=== build-0 (pending) ===\nstep one\n");
  });

  it.each([
    ["no token", () => get("/api/runs", null), 401],
    ["a wrong token", () => get("/api/runs", "wrong-token-wrong-token"), 401],
    ["an unknown run", () => get("/api/runs/nope"), 404],
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
    await s.store.createRun(makeRun(undefined, { id: "api-2" }), { until: 1 });
    const cancel = () => app.request("/api/runs/api-2/cancel", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    const first = await cancel();
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ status: "cancelled", error: "cancelled by the API" });
    expect((await cancel()).status).toBe(409);
    expect((await s.store.expiredRuns(Date.now(), 10)).map((r) => r.run.id)).not.toContain("api-2");
  });
});
