import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import { beforeAll, describe, expect, it } from "vitest";
import type { InstanceHost } from "../../lib/engine/instances.ts";
import type { UpdatePolicy } from "../../lib/release/spec.ts";
import { release, ReleaseBusyError, rollback } from "../../lib/release/release.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { ReleaseError } from "../../lib/release/moves.ts";
import type { ReleaseContext } from "../../lib/release/ports.ts";
import { WATCH_OWNER } from "../../lib/release/watch.ts";
import { compose, hostModes, trigger, underLoad, useReleaseBench, type ReleaseBench } from "./releases.ts";

/**
 * Every strategy on one kind of host (a single Docker host's containers, or Swarm's services),
 * behind a real HAProxy, with 200 requests per second flowing through HAProxy for the whole
 * release: not one may fail, and afterwards every answer comes from the new version. One file
 * per kind of host (release.test.ts, release-on-swarm.test.ts), so that the two run side by side.
 * Gives the file's engine and bench, for its other tests.
 */
export function releasesOn(which: "a Docker host" | "Swarm"): () => { docker: Dockerode; bench: ReleaseBench } {
  const file = useReleaseBench();
  let bench: ReleaseBench;
  beforeAll(() => {
    bench = file().bench;
  });

  const modes = hostModes(() => file().docker).filter(([mode]) => mode === which);

  describe.each(modes)("releases on %s behind HAProxy, under 200 requests/s", (mode, makeHost) => {
    const tag = mode === "Swarm" ? "s" : "d";
    let host: InstanceHost;
    beforeAll(async () => {
      host = await makeHost();
    });

    it("blue-green: v2 with no failed request, a failing v3 rolls back by itself, then a manual rollback to v1", async () => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}bg`, host);
      const spec = await compose("blue-green");
      expect((await release(deps, ctx, { image: images.v1, spec, trigger })).status).toBe("succeeded");

      const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2, spec, trigger }));
      expect(v2.result.status, v2.result.error).toBe("succeeded");
      expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
      expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);

      const v3 = await underLoad(url, () => release(deps, ctx, { image: images.v3, spec, trigger }));
      expect(v3.result).toMatchObject({ status: "failed", rolledBack: true });
      expect(v3.result.error).toMatch(/failed its health check: GET \/healthz answered 404 \(expected 200\)/);
      expect(v3.report.failed, v3.report.failures.join("; ")).toBe(0);
      expect([...v3.report.bodies("release").keys()]).toEqual(["v2"]);

      const back = await underLoad(url, async () => {
        const history = await deps.store.listReleases(ctx.env);
        return rollback(deps, ctx, "e2e", history.find((r) => r.image === images.v1)!.id);
      });
      expect(back.result.status).toBe("succeeded");
      expect(back.report.failed, back.report.failures.join("; ")).toBe(0);
      expect([...back.report.bodies("after").keys()]).toEqual(["v1"]);
      const history = await deps.store.listReleases(ctx.env);
      expect(history.map((r) => [r.image.split(":").pop(), r.status, r.trigger.type])).toEqual([
        ["v1", "succeeded", "rollback"],
        ["v3", "failed", "manual"],
        ["v2", "succeeded", "manual"],
        ["v1", "succeeded", "manual"],
      ]);
      // Only the serving release and the one before it (stopped, for a rollback) are kept.
      const kept = new Set((await host.list({ "hoist.env": ctx.env })).map((i) => i.labels["hoist.release"]));
      expect(kept).toEqual(new Set([history[0]!.id, history[2]!.id]));
    });

    it("rolling, start-first, one instance at a time: no failed request", async () => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}roll`, host);
      const spec = await compose("rolling");
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2, spec, trigger }));
      expect(v2.result.status, v2.result.error).toBe("succeeded");
      expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
      expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);
    });

    /** v1 released rolling with `update` changed, then the failing v3 under load: no request may fail, v1 serves on. */
    async function failingV3(name: string, update: Partial<UpdatePolicy>) {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}${name}`, host);
      const base = await compose("rolling");
      const spec = { ...base, update: { ...base.update, ...update } };
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const v3 = await underLoad(url, () => release(deps, ctx, { image: images.v3, spec, trigger }));
      expect(v3.report.failed, v3.report.failures.join("; ")).toBe(0);
      expect([...v3.report.bodies("after").keys()]).toEqual(["v1"]);
      return { ctx, result: v3.result };
    }

    it("rolling, stop-first: a failing v3 puts the stopped v1 instance back, with no failed request", async () => {
      const { ctx, result } = await failingV3("stop", { order: "stop-first" });
      expect(result).toMatchObject({ status: "failed", rolledBack: true });
      // The router holds exactly what runs: v1's instances (on Swarm, the tasks its rollback started).
      const serving = (await ctx.router.stats(ctx.backend)).map((s) => s.name).sort();
      const running = (await host.list({ "hoist.env": ctx.env })).filter((i) => i.running);
      const v1 = (await bench.deps.store.listReleases(ctx.env))[1]!.id;
      expect(running.map((i) => i.labels["hoist.release"])).toEqual(running.map(() => v1));
      expect(serving).toEqual(running.map((i) => i.name).sort());
    });

    it("rolling with failure_action pause: a failing v3 stops the update where it failed, the old instances keep serving", async () => {
      const { result } = await failingV3("pause", { failureAction: "pause" });
      expect(result).toMatchObject({ status: "failed", rolledBack: false });
      expect(result.error).toMatch(/paused/);
    });

    it("rolling with failure_action continue: unhealthy new instances are skipped, the old ones keep serving", async () => {
      const { result } = await failingV3("cont", { failureAction: "continue" });
      expect(result).toMatchObject({ status: "failed" });
      // Swarm's own continue would stop the old tasks of the failed slots: it runs as pause there.
      expect(result.error).toMatch(mode === "Swarm" ? /Swarm paused the update/ : /no new instance became healthy/);
    });

    it("canary: a good canary goes 10-50-100 with no failed request; a bad one is caught at the first step", async () => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}can`, host);
      const spec = await compose("canary");
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const v2 = await underLoad(url, () => release(deps, ctx, { image: images.v2, spec, trigger }));
      expect(v2.result.status, v2.result.error).toBe("succeeded");
      expect(v2.report.failed, v2.report.failures.join("; ")).toBe(0);
      expect([...v2.report.bodies("after").keys()]).toEqual(["v2"]);

      const bad = await underLoad(url, () => release(deps, ctx, { image: images.bad, spec, trigger }));
      expect(bad.result).toMatchObject({ status: "failed", rolledBack: true, canary: { step: 10 } });
      expect(bad.result.canary!.canary.errors).toBeGreaterThan(0);
      // The failed requests are the canary's 5xx answers, counted by the router and by the sender.
      expect(bad.report.failed).toBeGreaterThan(0);
      expect([...bad.report.bodies("after").keys()]).toEqual(["v2"]);
    });

    it("canary: the canary set grows with its share; a release parked between steps (no worker waits) carries on from its checkpoint, holding the environment", async () => {
      const { deps, images } = bench;
      const { ctx, url, log } = await bench.environment(`${tag}park`, host);
      const spec = { ...(await compose("canary")), replicas: 3 };
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const id = `park-${tag}`;
      const parkedAt: number[] = [];
      const run = await underLoad(url, async () => {
        let record = await release(deps, ctx, { id, image: images.v2, spec, trigger, parkAfterMs: 0 });
        while (record.status === "running") {
          const mark = record.checkpoint!;
          parkedAt.push(mark.canary!.step);
          expect((await deps.store.getRelease(ctx.env, id))?.checkpoint).toEqual(mark);
          // Parked, the release still holds its environment: nothing can slip in between steps.
          await expect(release(deps, ctx, { image: images.v1, spec, trigger })).rejects.toBeInstanceOf(ReleaseBusyError);
          await sleep(Math.max(0, mark.until - Date.now()));
          record = await release(deps, ctx, { id, image: images.v2, spec, trigger, parkAfterMs: 0 });
        }
        return record;
      });
      expect(parkedAt).toEqual([10, 50]);
      expect(log.filter((line) => line.startsWith("canary at"))).toEqual(["canary at 10%: 1 new instance(s) next to 3", "canary at 50%: 2 new instance(s) next to 3"]);
      expect(run.result.status, run.result.error).toBe("succeeded");
      expect(run.result.instances).toHaveLength(3);
      expect(run.result.checkpoint).toBeUndefined();
      expect(run.report.failed, run.report.failures.join("; ")).toBe(0);
      expect([...run.report.bodies("after").keys()]).toEqual(["v2"]);
      expect((await deps.store.listReleases(ctx.env)).map((r) => [r.id === id, r.status])).toEqual([
        [true, "succeeded"],
        [false, "succeeded"],
      ]);
    });

    // Where each strategy first asks whether its run was cancelled (the Nth time it asks): blue-green
    // before its switch, rolling after its first batch, canary after its first step. (Swarm rolls
    // in place on its own; a cancel there is undone by Swarm's rollback, tested in release-swarm.)
    const stops: [string, number][] = [
      ["blue-green", 1],
      ["rolling", 2],
      ["canary", 2],
    ];
    it.each(stops.filter(([strategy]) => !(mode === "Swarm" && strategy === "rolling")))(
      "%s: a cancel stops the release at its next safe point, and the previous release serves again with no failed request",
      async (strategy, at) => {
        const { deps, images } = bench;
        const { ctx, url } = await bench.environment(`${tag}stop-${strategy}`, host);
        const spec = await compose(strategy);
        const v1 = await release(deps, ctx, { image: images.v1, spec, trigger });
        let asked = 0;
        const cancelling = { ...ctx, stopped: async () => (++asked >= at ? "cancelled by ada" : undefined) };
        const run = await underLoad(url, () => release(deps, cancelling, { image: images.v2, spec, trigger }));
        expect(run.result).toMatchObject({ status: "cancelled", rolledBack: true, error: "cancelled by ada" });
        expect(run.report.failed, run.report.failures.join("; ")).toBe(0);
        expect([...run.report.bodies("after").keys()]).toEqual(["v1"]);
        expect((await ctx.router.servers(ctx.backend)).map((s) => s.name).sort()).toEqual(v1.instances.slice().sort());
        expect((await host.list({ "hoist.env": ctx.env, "hoist.release": run.result.id })).filter((i) => i.running)).toEqual([]);
        // The environment is free for the next release.
        expect((await release(deps, ctx, { image: images.v2, spec, trigger })).status).toBe("succeeded");
      },
    );

    it("one release at a time: a second concurrent release is refused and changes nothing", async () => {
      const { deps, images } = bench;
      const { ctx } = await bench.environment(`${tag}lock`, host);
      const spec = await compose("blue-green");
      const results = await Promise.allSettled([
        release(deps, ctx, { image: images.v1, spec, trigger }),
        release(deps, ctx, { image: images.v2, spec, trigger }),
      ]);
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ReleaseBusyError);
      expect((await deps.store.listReleases(ctx.env)).map((r) => r.status)).toEqual(["succeeded"]);

      // The reconciler's watch holds the environment for a moment: a release waits it out.
      const watch = `${WATCH_OWNER}e2e`;
      expect((await deps.store.lock(ctx.env, watch, Date.now() + 60_000, Date.now())).ok).toBe(true);
      setTimeout(() => void deps.store.unlock(ctx.env, watch), 300);
      expect((await release(deps, ctx, { image: images.v2, spec, trigger })).status).toBe("succeeded");
    });

    it("an image that does not exist, or a router that does not answer, fails the release with a clear error before anything changes; the previous release keeps serving", async () => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}missing`, host);
      const spec = await compose("blue-green");
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const before = await host.list({ "hoist.env": ctx.env });
      const noRouter = { ...ctx, router: new HaproxyRouter({ socket: "/nonexistent/hoist-admin.sock" }) };
      const run = await underLoad(url, async () => [
        await release(deps, ctx, { image: `hoist-e2e-app-${bench.suffix}:nope`, spec, trigger }).catch((err: Error) => err),
        await release(deps, noRouter, { image: images.v2, spec, trigger }).catch((err: Error) => err),
      ]);
      const [missing, unreachable] = run.result;
      expect(missing).toBeInstanceOf(ReleaseError);
      expect((missing as Error).message).toMatch(/image hoist-e2e-app-\S+:nope is not on the engine, and only images released by digest are pulled: add a push stage/);
      expect(unreachable).toBeInstanceOf(ReleaseError);
      expect((unreachable as Error).message).toMatch(new RegExp(`^cannot release to ${ctx.env}: cannot reach HAProxy's runtime API at unix:/nonexistent/hoist-admin.sock`));
      expect(run.report.failed).toBe(0);
      expect([...run.report.bodies("after").keys()]).toEqual(["v1"]);
      expect((await host.list({ "hoist.env": ctx.env })).map((i) => i.name).sort()).toEqual(before.map((i) => i.name).sort());
      expect((await deps.store.listReleases(ctx.env)).map((r) => r.status)).toEqual(["succeeded"]);
    });

    /** Fails the context's first call that `trips` (once): the worker dies right there. */
    const crashOnce = <K extends "router" | "host">(ctx: ReleaseContext, part: K, method: keyof ReleaseContext[K] & string, trips: (...args: never[]) => boolean): ReleaseContext => {
      let armed = true;
      const real = ctx[part] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const wrapped = Object.assign(Object.create(real) as object, {
        [method]: async (...args: unknown[]) => {
          if (armed && trips(...(args as never[]))) {
            armed = false;
            throw new Error("worker killed");
          }
          return real[method]!.apply(real, args);
        },
      });
      return { ...ctx, [part]: wrapped };
    };
    const crashes: [string, (ctx: ReleaseContext) => ReleaseContext][] = [
      // The new set has its weight, the old one has not been taken out yet.
      ["mid-switch", (ctx) => crashOnce(ctx, "router", "setWeight", (_backend: string, _name: string, weight: number) => weight === 0)],
      // The old set has left the router but is still running: the resumed release must let it go again.
      ["mid-retire", (ctx) => crashOnce(ctx, "host", "stop", () => true)],
    ];

    it.each(crashes)("a release interrupted %s (its worker died) is finished by running it again under the same id", async (point, crashing) => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}${point}`, host);
      const spec = await compose("blue-green");
      const v1 = await release(deps, ctx, { image: images.v1, spec, trigger });
      const id = `crash-${tag}-${point}`;
      const run = await underLoad(url, async () => {
        const first = await release(deps, crashing(ctx), { id, image: images.v2, spec, trigger }).catch((err: Error) => err);
        expect(first).toBeInstanceOf(Error);
        expect((await deps.store.getRelease(ctx.env, id))?.status).toBe("running");
        return release(deps, ctx, { id, image: images.v2, spec, trigger });
      });
      expect(run.result.status, run.result.error).toBe("succeeded");
      expect(run.report.failed, run.report.failures.join("; ")).toBe(0);
      expect([...run.report.bodies("after").keys()]).toEqual(["v2"]);
      // Nothing doubled: the router holds exactly the release's instances, and v1 runs no more.
      expect((await ctx.router.servers(ctx.backend)).map((s) => s.name).sort()).toEqual(run.result.instances.slice().sort());
      expect((await host.list({ "hoist.env": ctx.env, "hoist.release": v1.id })).filter((i) => i.running)).toEqual([]);
    });

    it("a release that died mid-retire and was never resumed is cleared by the next one: the router ends with only its instances", async () => {
      const { deps, images } = bench;
      const { ctx, url } = await bench.environment(`${tag}orphan`, host);
      const spec = await compose("blue-green");
      await release(deps, ctx, { image: images.v1, spec, trigger });
      const run = await underLoad(url, async () => {
        await release(deps, crashes[1]![1](ctx), { id: `orphan-${tag}`, image: images.v2, spec, trigger }).catch((err: Error) => err);
        return release(deps, ctx, { image: images.v2, spec, trigger });
      });
      expect(run.result.status, run.result.error).toBe("succeeded");
      expect(run.report.failed, run.report.failures.join("; ")).toBe(0);
      expect([...run.report.bodies("after").keys()]).toEqual(["v2"]);
      expect((await ctx.router.servers(ctx.backend)).map((s) => s.name).sort()).toEqual(run.result.instances.slice().sort());
      expect(await host.list({ "hoist.env": ctx.env, "hoist.release": `orphan-${tag}` })).toEqual([]);
      expect(await deps.store.getRelease(ctx.env, `orphan-${tag}`)).toMatchObject({ status: "failed", error: `interrupted, and superseded by release ${run.result.id}` });
    });
  });

  return file;
}
