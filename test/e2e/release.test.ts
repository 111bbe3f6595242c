import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerInstances } from "../../lib/engine/docker-instances.ts";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import { readReleaseSpec, type ReleaseSpec } from "../../lib/release/compose.ts";
import type { ReleaseContext } from "../../lib/release/moves.ts";
import { release, ReleaseBusyError, rollback, type ReleaseDeps } from "../../lib/release/release.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { loopbackDynamoApi } from "../../lib/store/dynamo-api.ts";
import { DynamoReleaseStore } from "../../lib/store/dynamo-releases.ts";
import { DynamoRunStore } from "../../lib/store/dynamo.ts";
import { buildApp } from "../support/apps.ts";
import { requireDocker, uniqueSuffix } from "../support/docker.ts";
import { startHaproxy } from "../support/haproxy.ts";
import { startLoad } from "../support/load.ts";

// Releases on the real Docker engine behind a real HAProxy, with 200 requests per second
// flowing through HAProxy for the whole release: not one may fail.
const RATE = 200;
const suffix = uniqueSuffix();
let docker: Dockerode;
let servers: StartedServers;
let deps: ReleaseDeps;
const images: Record<string, string> = {};
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  docker = await requireDocker();
  servers = await startServers({});
  const api = loopbackDynamoApi(servers.dynamodb);
  const table = `rel-${suffix}`;
  await new DynamoRunStore({ api, table }).ensureTable();
  deps = { store: new DynamoReleaseStore(api, table), now: () => Date.now(), leaseMs: 10 * 60_000 };
  for (const [name, app] of Object.entries({
    v1: { version: "v1" },
    v2: { version: "v2" },
    v3: { version: "v3", healthy: false },
    bad: { version: "bad", failOneIn: 3 },
  }))
    images[name] = await buildApp(docker, `hoist-e2e-app-${suffix}:${name}`, app);
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  const left = await docker.listContainers({ all: true, filters: { label: [`hoist.env`] } });
  await Promise.all(left.filter((c) => c.Names.some((n) => n.includes(suffix))).map((c) => docker.getContainer(c.Id).remove({ force: true })));
  await servers?.close();
});

function compose(strategy: string, extra = ""): ReleaseSpec {
  const text = `services:
  web:
    image: placeholder
    ports: ["8080"]
    deploy:
      replicas: 2
      update_config: { parallelism: 1, order: start-first, failure_action: rollback }
    x-hoist:
      strategy: ${strategy}
      health: { path: /healthz, status: 200, interval: 200ms, retries: 10 }
      drain: 1s
      interval: 2s
${extra}`;
  const parsed = readReleaseSpec(text, "web");
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.spec;
}

async function environment(name: string): Promise<{ ctx: ReleaseContext; url: string }> {
  const haproxy = await startHaproxy();
  cleanups.push(() => haproxy.stop());
  const log: string[] = [];
  const ctx: ReleaseContext = {
    env: `${name}-${suffix}`,
    backend: haproxy.backend,
    host: new DockerInstances(docker),
    router: new HaproxyRouter({ socket: haproxy.socket }),
    log: (line) => log.push(line),
    sleep: (ms) => sleep(ms),
  };
  return { ctx, url: `${haproxy.url}/cgi-bin/app` };
}

async function underLoad<T>(url: string, work: () => Promise<T>) {
  const load = await startLoad(url, RATE);
  await sleep(1500); // steady traffic before the release, for the comparison
  load.mark("release");
  const result = await work();
  load.mark("after");
  await sleep(1000);
  const report = await load.stop();
  return { result, report };
}

const trigger = { type: "manual" as const, by: "e2e" };

describe("releases on Docker behind HAProxy, under 200 requests/s", () => {
  it("blue-green: v2 with no failed request, a failing v3 rolls back by itself, then a manual rollback to v1", async () => {
    const { ctx, url } = await environment("bg");
    const spec = compose("blue-green");
    expect((await release(deps, ctx, { image: images.v1!, spec, trigger })).status).toBe("succeeded");

    const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2!, spec, trigger }));
    expect(v2.result.status, v2.result.error).toBe("succeeded");
    expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
    expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);

    const v3 = await underLoad(url, () => release(deps, ctx, { image: images.v3!, spec, trigger }));
    expect(v3.result).toMatchObject({ status: "failed", rolledBack: true });
    expect(v3.result.error).toMatch(/failed its health check: GET \/healthz answered 404 \(expected 200\)/);
    expect(v3.report.failed, v3.report.failures.join("; ")).toBe(0);
    expect([...v3.report.bodies("release").keys()]).toEqual(["v2"]);

    const back = await underLoad(url, async () => {
      const history = await deps.store.listReleases(ctx.env);
      return rollback(deps, ctx, "e2e", history.find((r) => r.image === images.v1)!.id);
    });
    expect(back.result.status).toBe("succeeded");
    expect(back.report.failed).toBe(0);
    expect([...back.report.bodies("after").keys()]).toEqual(["v1"]);
    const history = await deps.store.listReleases(ctx.env);
    expect(history.map((r) => [r.image.split(":").pop(), r.status, r.trigger.type])).toEqual([
      ["v1", "succeeded", "rollback"],
      ["v3", "failed", "manual"],
      ["v2", "succeeded", "manual"],
      ["v1", "succeeded", "manual"],
    ]);
  });

  it("rolling, start-first, one instance at a time: no failed request", async () => {
    const { ctx, url } = await environment("roll");
    const spec = compose("rolling");
    await release(deps, ctx, { image: images.v1!, spec, trigger });
    const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2!, spec, trigger }));
    expect(v2.result.status, v2.result.error).toBe("succeeded");
    expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
    expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);
  });

  it("canary: a good canary goes 10-50-100 with no failed request; a bad one is caught at the first step", async () => {
    const { ctx, url } = await environment("can");
    const spec = compose("canary");
    await release(deps, ctx, { image: images.v1!, spec, trigger });
    const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2!, spec, trigger }));
    expect(v2.result.status, v2.result.error).toBe("succeeded");
    expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
    expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);

    const bad = await underLoad(url, () => release(deps, ctx, { image: images.bad!, spec, trigger }));
    expect(bad.result).toMatchObject({ status: "failed", rolledBack: true, canary: { step: 10 } });
    expect(bad.result.canary!.canary.errors).toBeGreaterThan(0);
    // The failed requests are the canary's 5xx answers, counted by the router and by the sender.
    expect(bad.report.failed).toBeGreaterThan(0);
    expect([...bad.report.bodies("after").keys()]).toEqual(["v2"]);
  });

  it("one release at a time: a second concurrent release is refused and changes nothing", async () => {
    const { ctx } = await environment("lock");
    const spec = compose("blue-green");
    const results = await Promise.allSettled([
      release(deps, ctx, { image: images.v1!, spec, trigger }),
      release(deps, ctx, { image: images.v2!, spec, trigger }),
    ]);
    const refused = results.filter((r) => r.status === "rejected");
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ReleaseBusyError);
    expect((await deps.store.listReleases(ctx.env)).map((r) => r.status)).toEqual(["succeeded"]);
  });

  it("an image that does not exist fails the release with a clear error; the previous release keeps serving", async () => {
    const { ctx, url } = await environment("missing");
    const spec = compose("blue-green");
    await release(deps, ctx, { image: images.v1!, spec, trigger });
    const run = await underLoad(url, () => release(deps, ctx, { image: `hoist-e2e-app-${suffix}:nope`, spec, trigger }).catch((err: Error) => err));
    expect(run.result).toBeInstanceOf(Error);
    expect((run.result as Error).message).toMatch(/does not exist/);
    expect(run.report.failed).toBe(0);
    expect([...run.report.bodies("after").keys()]).toEqual(["v1"]);
  });
});
