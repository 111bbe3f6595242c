import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SwarmInstances } from "../../lib/engine/swarm-instances.ts";
import { release } from "../../lib/release/release.ts";
import { requireDocker } from "../support/docker.ts";
import { compose, requireSwarmManager, startReleaseBench, trigger, type ReleaseBench } from "../support/releases.ts";

// What only Swarm has: services kept scaled to 0 for a rollback, and local images pinned by
// ID. The release scenarios themselves run on Swarm in release.test.ts.
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

/** Services of an environment, by release tag, with their replica counts. */
async function services(env: string): Promise<Record<string, number[]>> {
  const found = await docker.listServices({ filters: { label: [`hoist.env=${env}`] } });
  const byTag: Record<string, number[]> = {};
  for (const s of found) {
    const tag = s.Spec!.Labels!["hoist.image"]!.split(":").pop()!;
    (byTag[tag] ??= []).push(s.Spec!.Mode!.Replicated!.Replicas!);
  }
  return byTag;
}

describe("Swarm services as release instances", () => {
  it("keeps the previous release's services scaled to 0, and runs a local image by its ID", async () => {
    const { deps, images } = bench;
    const { ctx } = await bench.environment("ssvc", host);
    const spec = compose("blue-green");
    await release(deps, ctx, { image: images.v1, spec, trigger });
    const v2 = await release(deps, ctx, { image: images.v2, spec, trigger });
    expect(v2.status, v2.error).toBe("succeeded");
    expect(await services(ctx.env)).toEqual({ v1: [0, 0], v2: [1, 1] });
    // A local-only image runs by its ID: Swarm never tries a registry for it.
    const v2Service = await docker.getService(v2.instances[0]!).inspect();
    expect(v2Service.Spec.TaskTemplate.ContainerSpec.Image).toBe((await docker.getImage(images.v2).inspect()).Id);
    const v3 = await release(deps, ctx, { image: images.v3, spec, trigger });
    expect(v3.status).toBe("failed");
    expect(await services(ctx.env)).toEqual({ v1: [0, 0], v2: [1, 1] }); // v3 removed
  });
});
