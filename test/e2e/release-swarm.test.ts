import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SwarmInstances } from "../../lib/engine/swarm-instances.ts";
import { Environment } from "../../lib/release/environment.ts";
import { inSet, syncRouter } from "../../lib/release/router-sync.ts";
import { abandon, release, rollback } from "../../lib/release/release.ts";
import { watchEnvironments } from "../../lib/release/watch.ts";
import { requireDocker } from "../support/docker.ts";
import { waitFor } from "../support/wait.ts";
import { compose, requireSwarmManager, startReleaseBench, trigger, underLoad, type ReleaseBench } from "../support/releases.ts";

// What only Swarm has: a service per release, kept scaled to 0 for a rollback; rolling through
// the service's own update config; local images pinned by ID. The release scenarios themselves
// run on Swarm in release-on-swarm.test.ts.
let docker: Dockerode;
let bench: ReleaseBench;
let host: SwarmInstances;

beforeAll(async () => {
  docker = await requireDocker();
  await requireSwarmManager(docker);
  host = new SwarmInstances(docker);
  bench = await startReleaseBench(docker);
}, 120_000);

afterAll(async () => {
  if (bench) {
    const ours = (await docker.listServices()).filter((s) => s.Spec?.Name?.includes(bench.suffix));
    await Promise.all(ours.map((s) => host.remove(s.Spec!.Name!)));
  }
  await bench?.close();
}, 120_000);

/** Services of an environment, by image tag, with their replica counts. */
async function services(env: string): Promise<Record<string, number[]>> {
  const found = await docker.listServices({ filters: { label: [`hoist.env=${env}`] } });
  const byTag: Record<string, number[]> = {};
  for (const s of found) {
    const tag = s.Spec!.Labels!["hoist.image"]!.split(":").pop()!;
    (byTag[tag] ??= []).push(s.Spec!.Mode!.Replicated!.Replicas!);
  }
  return byTag;
}

describe("Swarm services as release sets", () => {
  it("blue-green runs one service per release, keeps the previous one scaled to 0, and runs a local image by its ID", async () => {
    const { deps, images } = bench;
    const { ctx } = await bench.environment("ssvc", host);
    const spec = await compose("blue-green");
    await release(deps, ctx, { image: images.v1, spec, trigger });
    const v2 = await release(deps, ctx, { image: images.v2, spec, trigger });
    expect(v2.status, v2.error).toBe("succeeded");
    expect(await services(ctx.env)).toEqual({ v1: [0], v2: [2] });
    // Instances are the service's tasks, named as Swarm names their containers.
    expect(v2.instances).toHaveLength(2);
    for (const name of v2.instances) expect(name).toMatch(/^hoist-ssvc-.*\.[12]\.[a-z0-9]{25}$/);
    // A local-only image runs by its ID: Swarm never tries a registry for it.
    const v2Service = await docker.getService(host.groupOf(v2.instances[0]!)).inspect();
    expect(v2Service.Spec.TaskTemplate.ContainerSpec.Image).toBe((await docker.getImage(images.v2).inspect()).Id);
    const v3 = await release(deps, ctx, { image: images.v3, spec, trigger });
    expect(v3.status).toBe("failed");
    expect(await services(ctx.env)).toEqual({ v1: [0], v2: [2] }); // v3 removed

    // Following a set waits on the engine's news about it, not on a timer: scaling v2 down wakes it.
    const group = host.groupOf(v2.instances[0]!);
    const changes = await host.changes(group);
    const giveUp = new AbortController();
    try {
      const woken = changes.next(120_000).then(() => "by the engine");
      await host.stop(v2.instances[0]!);
      const nothing = sleep(60_000, "by nothing", { signal: giveUp.signal }).catch(() => "aborted");
      expect(await Promise.race([woken, nothing])).toBe("by the engine");
    } finally {
      giveUp.abort();
      changes.close();
    }
  });

  it("rolling updates the serving service in place with its update_config, Swarm's rollback puts a failing v3 back, a cancel rolls an update back, and a manual rollback switches at once; no failed request", async () => {
    const { deps, images } = bench;
    const { ctx, url } = await bench.environment("sinp", host);
    const spec = await compose("rolling");
    const v1 = await release(deps, ctx, { image: images.v1, spec, trigger });
    const group = host.groupOf(v1.instances[0]!);
    const before = await docker.getService(group).inspect();

    // Followed a slice at a time (parkAfterMs 0: each call parks after one look, as a worker's
    // budget would make it), the same update carries on from call to call.
    const parks: string[] = [];
    const v2 = await underLoad(url, async () => {
      const req = { id: "inplace-v2", image: images.v2, spec, trigger, parkAfterMs: 0 };
      let record = await release(deps, ctx, req);
      for (; record.status === "running"; record = await release(deps, ctx, req)) {
        parks.push(record.checkpoint!.waiting);
        await sleep(Math.max(0, record.checkpoint!.until - Date.now()));
      }
      return record;
    });
    expect(v2.result.status, v2.result.error).toBe("succeeded");
    expect(parks.length).toBeGreaterThan(0);
    expect(parks[0]).toMatch(new RegExp(`^Swarm's rolling update of ${group} \\(updating`));
    expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
    expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);
    const updated = (await docker.getService(group).inspect()) as Dockerode.Service & { UpdateStatus?: { State: string } };
    expect(updated.ID).toBe(before.ID); // the same service, updated in place
    expect(updated.UpdateStatus?.State).toBe("completed");
    expect(updated.Spec?.UpdateConfig).toMatchObject({ Parallelism: 1, Order: "start-first", FailureAction: "rollback", Monitor: 1e9 });
    // x-hoist's HTTP health gate, as the container health check Swarm gates each task on.
    const healthcheck = (updated.Spec?.TaskTemplate as { ContainerSpec?: { Healthcheck?: { Test?: string[] } } }).ContainerSpec?.Healthcheck;
    expect(healthcheck?.Test?.join(" ")).toMatch(/^CMD-SHELL wget .*http:\/\/127\.0\.0\.1:8080\/healthz/);
    expect(v2.result.instances.every((name) => name.startsWith(`${group}.`))).toBe(true);

    const v3 = await underLoad(url, () => release(deps, ctx, { image: images.v3, spec, trigger }));
    expect(v3.result).toMatchObject({ status: "failed", rolledBack: true });
    expect(v3.result.error).toMatch(/Swarm rolled .* back \(rollback_completed/);
    expect(v3.report.failed, v3.report.failures.join("; ")).toBe(0);
    expect([...v3.report.bodies("release").keys()]).toEqual(["v2"]);
    expect([...v3.report.bodies("after").keys()]).toEqual(["v2"]);
    expect(((await docker.getService(group).inspect()) as { UpdateStatus?: { State: string } }).UpdateStatus?.State).toBe("rollback_completed");
    const serving = (await host.progress(group))!.serving.map((i) => i.name).sort();
    expect((await ctx.router.servers(ctx.backend)).map((s) => s.name).sort()).toEqual(serving);

    // A release whose run is cancelled while Swarm rolls (it is parked): Swarm rolls the update
    // back, the release ends cancelled, and the environment is free at once.
    const cancelled = await underLoad(url, async () => {
      const parked = await release(deps, ctx, { id: "inplace-cancelled", image: images.v1, spec, trigger, parkAfterMs: 0 });
      expect(parked).toMatchObject({ status: "running", checkpoint: { waiting: expect.stringMatching(/^Swarm's rolling update/) } });
      const record = await abandon(deps, ctx, parked.id, "cancelled by e2e");
      // Between releases the reconciler's watch follows Swarm; here the test does, as often as the release would.
      await waitFor("Swarm to roll the cancelled update back, the router following", async () => {
        const progress = await host.progress(group);
        const inStep = progress ? await syncRouter(ctx, spec.hoist.health, inSet(group), progress.serving) : false;
        return inStep && progress?.state === "rollback_completed";
      }, 90_000, 250);
      return record;
    });
    expect(cancelled.result).toMatchObject({ status: "cancelled", rolledBack: true, error: expect.stringMatching(/^cancelled by e2e \(Swarm's rolling update .*\): .* rolled back by the host$/) });
    expect(cancelled.report.failed, cancelled.report.failures.join("; ")).toBe(0);
    expect([...cancelled.report.bodies("after").keys()]).toEqual(["v2"]);
    expect(await abandon(deps, ctx, "inplace-cancelled", "again")).toMatchObject({ status: "cancelled", error: cancelled.result?.error }); // once

    // Undoing takes seconds whatever the strategy: a rollback to v1 switches blue-green, to a new service.
    const back = await underLoad(url, () => rollback(deps, ctx, "e2e"));
    expect(back.result).toMatchObject({ status: "succeeded", strategy: "blue-green", image: images.v1, trigger: { type: "rollback", rollbackOf: v1.id } });
    expect(back.report.failed, back.report.failures.join("; ")).toBe(0);
    expect([...back.report.bodies("after").keys()]).toEqual(["v1"]);
    expect(back.result.instances.every((name) => !name.startsWith(`${group}.`))).toBe(true);
  });

  it("between releases, the reconciler's watch puts a task Swarm replaced after a crash into the router", async () => {
    const { deps, images } = bench;
    const { ctx, url } = await bench.environment("swatch", host);
    await deps.store.putEnvironment(
      Environment.parse({ name: ctx.env, mode: "swarm", engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: "unix:///unused.sock", backend: ctx.backend } }),
    );
    const v1 = await release(deps, ctx, { image: images.v1, spec: await compose("blue-green"), trigger });
    expect(v1.status, v1.error).toBe("succeeded");
    const group = host.groupOf(v1.instances[0]!);
    const watch = () => watchEnvironments({ store: deps.store, now: () => Date.now(), contextFor: () => ctx }, () => undefined);
    expect(await watch()).toEqual([]); // in step: nothing to do

    // A task's container dies; Swarm starts a new task in its place, at a new address.
    const [crashed] = v1.instances as [string];
    await docker.getContainer(crashed).kill();
    const replaced = await waitFor("Swarm to replace the crashed task", async () => {
      const serving = (await host.progress(group))!.serving;
      return serving.length === 2 && !serving.some((i) => i.name === crashed) ? serving : undefined;
    }, 60_000, 200);
    expect((await ctx.router.servers(ctx.backend)).map((s) => s.name)).toContain(crashed); // stale until watched

    expect(await watch()).toEqual([ctx.env]);
    expect((await ctx.router.servers(ctx.backend)).map((s) => s.name).sort()).toEqual(replaced.map((i) => i.name).sort());
    for (let i = 0; i < 20; i++) expect((await fetch(url)).status).toBe(200);
  });
});
