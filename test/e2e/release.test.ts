import type Dockerode from "dockerode";
import { describe, expect, it } from "vitest";
import { DockerInstances } from "../../lib/engine/docker-instances.ts";
import { release } from "../../lib/release/release.ts";
import { Environment } from "../../lib/release/environment.ts";
import { watchEnvironments } from "../../lib/release/watch.ts";
import { waitFor } from "../support/wait.ts";
import { compose, trigger, type ReleaseBench } from "../support/releases.ts";
import { releasesOn } from "../support/release-suite.ts";

const files = releasesOn("a Docker host");

describe("between releases on a Docker host, the reconciler's watch", () => {
  it("takes a container stopped by hand out of the router, puts it back once it runs again, and follows one to a new address", async () => {
    const { docker, bench }: { docker: Dockerode; bench: ReleaseBench } = files();
    const { deps, images } = bench;
    const host = new DockerInstances(docker);
    const { ctx, url } = await bench.environment("dwatch", host);
    await deps.store.putEnvironment(
      Environment.parse({ name: ctx.env, engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: "unix:///unused.sock", backend: ctx.backend } }),
    );
    const v1 = await release(deps, ctx, { image: images.v1, spec: await compose("blue-green"), trigger });
    expect(v1.status, v1.error).toBe("succeeded");
    const watch = () => watchEnvironments({ store: deps.store, now: () => Date.now(), contextFor: () => ctx }, () => undefined);
    const inRouter = async () => (await ctx.router.servers(ctx.backend)).map((s) => s.name).sort();
    expect(await watch()).toEqual([]); // in step: nothing to do

    const [stopped, other] = v1.instances as [string, string];
    await docker.getContainer(stopped).stop({ t: 1 });
    expect(await watch()).toEqual([ctx.env]);
    expect(await inRouter()).toEqual([other]);
    for (let i = 0; i < 20; i++) expect((await fetch(url)).status).toBe(200);

    await docker.getContainer(stopped).start();
    // Probed once per look: it joins at the first look that finds it answering.
    await waitFor("the restarted container to be back in the router", async () => {
      await watch();
      return (await inRouter()).length === 2;
    });
    expect(await inRouter()).toEqual(v1.instances.slice().sort());
    const addressOf = async (name: string) => (await ctx.router.servers(ctx.backend)).find((s) => s.name === name)?.address;
    expect(await addressOf(stopped)).toBe((await host.inspect(stopped))!.address);
    expect(await watch()).toEqual([]);

    // The router has a container at an address it no longer has (as after a restart on a new IP): its entry is replaced.
    await ctx.router.removeServer(ctx.backend, other);
    await ctx.router.addServer(ctx.backend, { name: other, address: "127.0.0.2", port: 9, weight: 100 });
    expect(await watch()).toEqual([ctx.env]);
    expect(await addressOf(other)).toBe((await host.inspect(other))!.address);
    for (let i = 0; i < 20; i++) expect((await fetch(url)).status).toBe(200);
  });
});


describe("a one-off on a Docker host (restart: no, a migration)", () => {
  it("runs once: starting it again under the same name, as a release resumed after a crash does, leaves it done", async () => {
    const { docker, bench }: { docker: Dockerode; bench: ReleaseBench } = files();
    const host = new DockerInstances(docker);
    const name = `hoist-e2e-oneoff-${bench.suffix}`;
    const spec = {
      name,
      image: bench.images.v1,
      env: {},
      command: ["sh", "-c", "date +%s%N >> /tmp/runs; cat /tmp/runs | wc -l > /tmp/count; true"],
      labels: { "hoist.env": `oneoff-${bench.suffix}` },
      port: 0,
      runtime: { mounts: [], extraHosts: [], restart: { name: "no" as const }, capAdd: [], capDrop: [] },
    };
    try {
      await host.start(spec);
      const first = await waitFor("the one-off's end", async () => {
        const now = await host.inspect(name);
        return now && !now.running ? now : undefined;
      }, 30_000);
      expect(first.exitCode).toBe(0);
      const startedAt = async () => (await docker.getContainer(name).inspect()).State.StartedAt;
      const before = await startedAt();
      const again = await host.start(spec);
      expect(again.exitCode).toBe(0);
      expect(await startedAt()).toBe(before);
    } finally {
      await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
    }
  });
});
