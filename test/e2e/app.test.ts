import type Dockerode from "dockerode";
import { beforeAll, describe, expect, it } from "vitest";
import { DockerInstances } from "../../lib/engine/docker-instances.ts";
import type { ReleaseContext } from "../../lib/release/ports.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { release, rollback } from "../../lib/release/release.ts";
import { readContainerFile } from "../support/docker.ts";
import { hostModes, RATE, threeServiceApp as app, trigger, underLoad, useReleaseBench, type ReleaseBench } from "../support/releases.ts";
import { startHaproxy } from "../support/haproxy.ts";
import { startLoad } from "../support/load.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { httpProbe } from "../../lib/release/http-probe.ts";
import { systemReleaseClock } from "../../lib/release/targets.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { get } from "node:http";

// A three-service compose app on a real engine behind a real HAProxy: web (routed) asks "db" by
// its name for a counter the db keeps in a named volume; a worker runs beside them. The images
// are the test app (test/support/app-server.c), in the role its environment gives it.
const file = useReleaseBench();
let docker: Dockerode;
let bench: ReleaseBench;
beforeAll(() => {
  ({ docker, bench } = file());
});

/** What the routed web answers on /db: its version and the db's counter, fetched by the db's name. */
async function askDb(url: string): Promise<{ version: string; count: number }> {
  const res = await fetch(url.replace("/cgi-bin/app", "/db"));
  const body = (await res.text()).trim();
  expect(res.status, body).toBe(200);
  const [version = "", count = ""] = body.split(" ");
  return { version, count: Number(count) };
}

async function startedAt(name: string): Promise<string> {
  return (await docker.getContainer(name).inspect()).State.StartedAt;
}

/** The running containers of a service of `env` (on Swarm, its tasks'), by id and start time. */
async function containersOf(env: string, service: string): Promise<string[]> {
  const found = await docker.listContainers({ filters: { label: [`hoist.env=${env}`, `hoist.service=${service}`], status: ["running"] } });
  return Promise.all(found.map(async (c) => `${c.Id} ${await startedAt(c.Id)}`));
}

/** Every Swarm secret of `env` is one a service of it uses (a changed config's old one is removed once nothing uses it). */
async function expectNoUnusedSecrets(env: string): Promise<void> {
  const mine = { filters: { label: [`hoist.env=${env}`] } };
  const services = await docker.listServices(mine);
  const used = services.flatMap((x) => (x.Spec?.TaskTemplate as { ContainerSpec?: { Secrets?: { SecretID: string }[] } }).ContainerSpec?.Secrets?.map((y) => y.SecretID) ?? []);
  expect(used.length).toBeGreaterThan(0);
  expect((await docker.listSecrets(mine)).map((x) => x.ID).sort()).toEqual([...new Set(used)].sort());
}

describe.each(hostModes(() => docker))("a three-service app on %s", (mode, makeHost) => {
  let ctx: ReleaseContext;
  let url: string;
  let log: string[];

  beforeAll(async () => {
    ({ ctx, url, log } = await bench.environment(mode === "Swarm" ? "sapp" : "app", await makeHost()));
  });

  it("is released whole: web reaches db by name on the app's network, db keeps its counter in the named volume", async () => {
    const { deps, images } = bench;
    const v1 = await release(deps, ctx, { image: images.v1, spec: await app({ web: images.v1, other: images.v1 }), trigger });
    expect(v1.status, v1.error).toBe("succeeded");
    expect(Object.keys(v1.companions ?? {}).sort()).toEqual(["db", "worker"]);
    expect((await askDb(url)).version).toBe("v1");
    const first = (await askDb(url)).count;
    expect((await askDb(url)).count).toBe(first + 1);
    const network = await docker.getNetwork(`hoist-${ctx.env}-default`).inspect();
    // web ×2, worker, db (an overlay also lists its own load-balancer endpoint, "lb-...")
    expect(Object.keys(network.Containers ?? {}).filter((k) => !k.startsWith("lb-")).length).toBe(4);
    // The worker's config, as a file written before it started (a Swarm secret on Swarm).
    const [worker] = await containersOf(ctx.env, "worker");
    expect(await readContainerFile(docker, worker!.split(" ")[0]!, "/etc/hoist/role.conf")).toBe("worker role 1");
    const volume = await docker.getVolume(`hoist-${ctx.env}-counter`).inspect();
    expect(volume.Labels).toMatchObject({ "hoist.env": ctx.env, "hoist.volume": "counter" });
    // deploy.placement: Swarm's to honour; a Docker host says it has one place.
    if (mode === "Swarm") {
      const [db] = await docker.listServices({ filters: { label: [`hoist.env=${ctx.env}`, "hoist.service=db"] } });
      expect(db?.Spec?.TaskTemplate).toMatchObject({ Placement: { Constraints: ["node.role==manager"] } });
    } else expect(log).toContain(`warning: deploy.placement of db applies on Swarm; ${ctx.env} is one Docker host, where everything runs`);
  });

  it("goes from staging to production the same way, on production's own networks and volume", async () => {
    const { deps, images } = bench;
    // What staging runs (its v1 release), as the pipeline's next deploy stage would release it.
    const [staging] = (await deps.store.listReleases(ctx.env)) as [ReleaseRecord];
    expect(staging.image).toBe(images.v1);
    const prod = await bench.environment(mode === "Swarm" ? "sappprod" : "appprod", await makeHost());
    const first = await release(deps, prod.ctx, { image: staging.image, spec: await app({ web: images.v1, other: images.v1 }), trigger });
    expect(first.status, first.error).toBe("succeeded");
    expect((await askDb(prod.url)).count).toBe(1);
    expect((await askDb(prod.url)).count).toBe(2);
    const stagingCount = (await askDb(url)).count;
    // Each environment's db keeps its own counter, in its own volume, on its own network.
    expect((await askDb(prod.url)).count).toBe(3);
    expect((await askDb(url)).count).toBe(stagingCount + 1);
    expect((await docker.getVolume(`hoist-${prod.ctx.env}-counter`).inspect()).Labels).toMatchObject({ "hoist.env": prod.ctx.env, "hoist.volume": "counter" });
    expect(Object.keys((await docker.getNetwork(`hoist-${prod.ctx.env}-default`).inspect()).Containers ?? {}).filter((k) => !k.startsWith("lb-")).length).toBe(4);
  });

  it("releases a new web under 200 requests/s with no failed request, leaving the unchanged db running", async () => {
    const { deps, images } = bench;
    const [before] = (await deps.store.listReleases(ctx.env)) as [ReleaseRecord];
    const db = before.companions!.db![0]!;
    const dbStarted = await containersOf(ctx.env, "db");
    expect(dbStarted.length).toBe(1);
    const spec = await app({ web: images.v2, other: images.v1 });
    const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2, spec, trigger }));
    expect(v2.result.status, v2.result.error).toBe("succeeded");
    expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
    expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);
    expect(v2.result.companions?.db).toEqual([db]);
    expect(await containersOf(ctx.env, "db")).toEqual(dbStarted);
    expect((await askDb(url)).version).toBe("v2");
  });

  it("recreates a changed db stop-first on the same volume: the counter carries on", async () => {
    const { deps, images } = bench;
    const before = (await askDb(url)).count;
    const v3 = await release(deps, ctx, { image: images.v2, spec: await app({ web: images.v2, other: images.v1 }, "2"), trigger });
    expect(v3.status, v3.error).toBe("succeeded");
    const db = v3.companions!.db![0]!;
    expect(db).toContain(v3.id);
    expect((await askDb(url)).count).toBe(before + 1);
    // The worker's config changed with it: the new text is in place, and on Swarm no secret is
    // left that no service uses (the old worker's stays while it is kept for a rollback).
    const [worker] = await docker.listContainers({ filters: { label: [`hoist.env=${ctx.env}`, "hoist.service=worker", `hoist.release=${v3.id}`], status: ["running"] } });
    expect(await readContainerFile(docker, worker!.Id, "/etc/hoist/role.conf")).toBe("worker role 2");
    if (mode === "Swarm") await expectNoUnusedSecrets(ctx.env);
  });

  it("rolls the whole app back when the new web fails its health check, data intact; a rollback keeps the data too", async () => {
    const { deps, images } = bench;
    const [serving] = (await deps.store.listReleases(ctx.env)) as [ReleaseRecord];
    const dbBefore = await containersOf(ctx.env, "db");
    const before = (await askDb(url)).count;
    // v3 fails its health gate; the db changes in the same release, and is put back.
    const bad = await underLoad(url, async () => release(deps, ctx, { image: images.v3, spec: await app({ web: images.v3, other: images.v1 }, "3"), trigger }));
    expect(bad.result).toMatchObject({ status: "failed", rolledBack: true });
    expect(bad.report.failed, bad.report.failures.join("; ")).toBe(0);
    expect(serving.companions?.db).toEqual((await deps.store.listReleases(ctx.env)).find((r) => r.status === "succeeded")?.companions?.db);
    const dbAfter = await containersOf(ctx.env, "db");
    expect(dbAfter.length).toBe(1);
    // On a Docker host the very container runs again; Swarm scales the old service back up (a new task).
    const id = (c: string | undefined) => c?.split(" ")[0];
    if (mode !== "Swarm") expect(id(dbAfter[0])).toBe(id(dbBefore[0]));
    expect((await askDb(url)).count).toBe(before + 1);
    if (mode === "Swarm") await expectNoUnusedSecrets(ctx.env);

    // Back to the release before the db changed: web v2, and the db's first definition again.
    const back = await rollback(deps, ctx, "e2e");
    expect(back.status, back.error).toBe("succeeded");
    expect(back.companions?.db?.[0]).toContain(back.id);
    expect((await askDb(url)).version).toBe("v2");
    expect((await askDb(url)).count).toBe(before + 3);
    if (mode === "Swarm") await expectNoUnusedSecrets(ctx.env);
  });
});

describe("two apps behind one HAProxy, by host name", () => {
  it("each answers on its own host; releasing one under load on both fails no request and leaves the other untouched", async () => {
    const { deps, images } = bench;
    const haproxy = await startHaproxy({ shared: ["shop_be", "blog_be"] });
    try {
      const router = new HaproxyRouter({ socket: haproxy.socket });
      const ctxOf = (name: string, backend: string): ReleaseContext => ({
        env: `${name}-${bench.suffix}`,
        backend,
        routesMap: haproxy.map!,
        host: new DockerInstances(docker),
        router,
        probe: httpProbe,
        clock: systemReleaseClock,
        log: () => undefined,
      });
      const shop = ctxOf("shop", "shop_be");
      const blog = ctxOf("blog", "blog_be");
      const first = await release(deps, shop, { image: images.v1, spec: await app({ web: images.v1, other: images.v1 }, "1", ["shop.test"]), trigger });
      const other = await release(deps, blog, { image: images.v2, spec: await app({ web: images.v2, other: images.v1 }, "1", ["blog.test/"]), trigger });
      expect([first.status, other.status]).toEqual(["succeeded", "succeeded"]);
      // node:http, not fetch: fetch sets the Host header itself.
      const answer = (host: string) =>
        new Promise<string>((resolve, reject) =>
          get(`${haproxy.url}/cgi-bin/app`, { headers: { host }, agent: false }, (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d));
            res.on("end", () => resolve(body));
          }).on("error", reject),
        );
      expect((await answer("shop.test")).trim()).toBe("v1");
      expect((await answer("Blog.Test:8000")).trim()).toBe("v2");
      expect((await answer("nobody.test")).trim()).toBe("no route");
      const blogStarted = await Promise.all(other.instances.map(startedAt));

      const shopLoad = await startLoad(`${haproxy.url}/cgi-bin/app`, RATE / 2, "shop.test");
      const blogLoad = await startLoad(`${haproxy.url}/cgi-bin/app`, RATE / 2, "blog.test");
      await sleep(1500);
      shopLoad.mark("release");
      const second = await release(deps, shop, { image: images.v2, spec: await app({ web: images.v2, other: images.v1 }, "1", ["shop.test"]), trigger });
      shopLoad.mark("after");
      await sleep(1000);
      const [shopReport, blogReport] = [await shopLoad.stop(), await blogLoad.stop()];
      expect(second.status, second.error).toBe("succeeded");
      expect(shopReport.failed, shopReport.failures.join("; ")).toBe(0);
      expect(blogReport.failed, blogReport.failures.join("; ")).toBe(0);
      expect([...shopReport.bodies("after").keys()]).toEqual(["v2"]);
      expect([...blogReport.bodies().keys()]).toEqual(["v2"]);
      expect(await Promise.all(other.instances.map(startedAt))).toEqual(blogStarted);
      expect((await deps.store.listReleases(blog.env)).length).toBe(1);
    } finally {
      await haproxy.stop();
    }
  }, 180_000);
});
