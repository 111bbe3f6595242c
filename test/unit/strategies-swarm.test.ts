import { describe, expect, it } from "vitest";
import { classify } from "../../lib/errors.ts";
import { abandon, release } from "../../lib/release/release.ts";
import { inSet, syncRouter } from "../../lib/release/router-sync.ts";
import type { FakeSwarm } from "../support/release-fakes.ts";
import { releaseSpec } from "../support/release-fakes.ts";
import { crashEverywhere, expectServing, NEW, releaseV2, trigger, withV1, type Env } from "../support/release-cases.ts";

/**
 * Rolling on a host that rolls its own sets (Swarm's rolling update), on the fake Swarm of
 * test/support/release-fakes.ts: Hoist starts the update, tracks it and keeps the router in step;
 * the host replaces the tasks, gates them and pauses or rolls back. test/e2e/release-swarm.test.ts
 * runs the same on a real Swarm.
 */

const swarm = (env: Env) => env.host as FakeSwarm;
const releaseOf = (env: Env, name: string) => env.host.instances.get(name)?.labels["hoist.release"];
/** The tasks that run, by release. */
const runningOf = (env: Env, id: string) => env.host.running().filter((n) => releaseOf(env, n) === id);

describe("rolling in place on Swarm", () => {
  const spec = releaseSpec({ update: { failureAction: "pause" } });

  it("updates the serving set in place and keeps the router on the tasks that serve", async () => {
    const { env, v1 } = await withV1(spec, { swarm: true });
    const done = await releaseV2(env, spec);
    expect(done.status).toBe("succeeded");
    expect(runningOf(env, NEW)).toHaveLength(3);
    expectServing(env, done.instances);
    // The same set, its tasks replaced: v1's tasks are gone, not kept.
    expect(done.instances.every((n) => n.startsWith(`${swarm(env).groupOf(v1.instances[0]!)}.`))).toBe(true);
    expect(runningOf(env, "r1")).toEqual([]);
  });

  describe.each([0, 1, 2])("health failing at batch %i", (k) => {
    it("failure_action pause: Swarm's pause fails the release, the router following what serves", async () => {
      const { env } = await withV1(spec, { swarm: true });
      swarm(env).healthy = (id, slot) => id !== NEW || slot !== k + 1;
      const done = await releaseV2(env, spec);
      expect(done).toMatchObject({ status: "failed", rolledBack: false });
      expect(done.error).toMatch(/^Swarm paused the update of \S+ \(paused: update paused due to failure/);
      expect(runningOf(env, NEW)).toHaveLength(k);
      expectServing(env, env.host.running());
    });

    it("failure_action rollback: Swarm's rollback ends the release rolled back, v1 serving", async () => {
      const back = releaseSpec({ update: { failureAction: "rollback" } });
      const { env } = await withV1(back, { swarm: true });
      swarm(env).healthy = (id, slot) => id !== NEW || slot !== k + 1;
      const done = await releaseV2(env, back);
      expect(done).toMatchObject({ status: "failed", rolledBack: true });
      expect(done.error).toMatch(/^Swarm rolled \S+ back \(rollback_completed/);
      expect(runningOf(env, NEW)).toEqual([]);
      expect(runningOf(env, "r1")).toHaveLength(3);
      expectServing(env, env.host.running());
    });
  });

  it("failure_action continue runs as pause, which keeps the old tasks of failed slots serving", async () => {
    const going = releaseSpec({ update: { failureAction: "continue", order: "start-first" } });
    const { env } = await withV1(going, { swarm: true });
    swarm(env).healthy = (id, slot) => id !== NEW || slot !== 2;
    const done = await releaseV2(env, going);
    expect(done).toMatchObject({ status: "failed", rolledBack: false });
    const group = [...swarm(env).services.keys()][0]!;
    expect(swarm(env).services.get(group)?.update?.update).toMatchObject({ failureAction: "pause", order: "start-first" });
    expect(env.log).toContain("failure_action continue runs as pause on Swarm: its continue ends by stopping the old tasks of failed slots");
    expectServing(env, env.host.running());
  });

  it("a stop-first update waits between batches, so a failure lands before the next batch stops", async () => {
    const { env } = await withV1(spec, { swarm: true });
    await releaseV2(env, spec);
    const group = [...swarm(env).services.keys()][0]!;
    expect(swarm(env).services.get(group)?.update?.update.delayMs).toBe(2_000);
  });

  it("a router outage while tracking is retryable; resumed under its id, the update under way is not restarted", async () => {
    const { env } = await withV1(spec, { swarm: true });
    let adds = 0;
    env.faults.fail = (part, method) => {
      if (part === "router" && method === "addServer" && ++adds === 2) env.router.down = true;
    };
    const err = await releaseV2(env, spec).catch((e: unknown) => e);
    expect(classify(err)).toMatchObject({ retryable: true, status: 503 });
    expect((await env.store.getRelease("prod", NEW))?.status).toBe("running");
    const group = [...swarm(env).services.keys()][0]!;
    const under = { ...swarm(env).services.get(group)! };
    expect(under.state).toBe("updating");
    env.faults.fail = undefined;
    env.router.down = false;
    const done = await releaseV2(env, spec);
    expect(done.status).toBe("succeeded");
    // Swarm carried on from where it was: the tasks it had replaced are still the ones serving.
    expect(swarm(env).services.get(group)?.update).toBe(under.update);
    expectServing(env, done.instances);
  });

  it("a crash at any step, resumed under the same id, ends with exactly the new tasks serving", async () => {
    expect(await crashEverywhere(spec, { swarm: true })).toBeGreaterThan(10);
  });

  it("parks while Swarm rolls; a cancel then has Swarm roll back, and the router follows", async () => {
    const { env, v1 } = await withV1(spec, { swarm: true });
    const parked = await release(env.deps, env.ctx, { id: NEW, image: "app:v2", spec, trigger, parkAfterMs: 0 });
    expect(parked.status).toBe("running");
    expect(parked.checkpoint?.waiting).toMatch(/^Swarm's rolling update of \S+ \(updating/);
    const cancelled = await abandon(env.deps, env.ctx, NEW, "run cancelled");
    const group = swarm(env).groupOf(v1.instances[0]!);
    expect(cancelled).toMatchObject({ status: "cancelled", rolledBack: true, error: `run cancelled (${parked.checkpoint!.waiting}): ${group} rolled back by the host` });
    expect(swarm(env).reverted).toEqual([group]);
    // The reconciler's watch keeps the router in step while Swarm rolls back.
    const progress = await swarm(env).progress(group);
    await syncRouter(env.ctx, spec.hoist.health, inSet(group), progress!.serving);
    expect(runningOf(env, NEW)).toEqual([]);
    expectServing(env, env.host.running());
    expect(env.store.leases.size).toBe(0);
  });
});
