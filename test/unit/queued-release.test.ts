import pino from "pino";
import { describe, expect, it } from "vitest";
import type { Environment } from "../../lib/release/environment.ts";
import { reconcile } from "../../lib/runs/reconcile.ts";
import { requestRollback, runQueuedRelease } from "../../lib/runs/queued-release.ts";
import { FakeSource, ManualClock, MemoryDeliveryStore, MemoryQueue, MemoryRunStore } from "../support/memory.ts";
import { MemoryReleaseStore, releaseSpec } from "../support/release-fakes.ts";
import { releaseV2, withV1 } from "../support/release-cases.ts";

/** A rollback asked through the API: queued at once, run by a worker, re-driven if its wake-up is lost. */

const spec = releaseSpec({ replicas: 2 });

/** v1 then v2 released on in-memory ports, and what a worker and the API need around them. */
async function setUp() {
  const { env } = await withV1(spec);
  expect((await releaseV2(env, spec)).status).toBe("succeeded");
  const store = new MemoryReleaseStore();
  for (const r of env.store.records.values()) await store.putRelease(r);
  await store.putEnvironment({ name: "prod" } as Environment);
  const queue = new MemoryQueue();
  const clock = new ManualClock(env.clock.now());
  const worker = { store, source: new FakeSource(), now: () => env.clock.now(), leaseMs: env.deps.leaseMs, contextFor: () => env.ctx, log: pino({ level: "silent" }) };
  return { env, store, queue, clock, worker };
}

describe("a rollback through the API", () => {
  it("is queued at once (nothing changes yet), and a worker releases v1 again, once", async () => {
    const { env, store, queue, clock, worker } = await setUp();
    const servingV2 = env.router.table("web_be");
    const queued = await requestRollback({ store, queue, clock }, "prod", "the API");
    expect(queued).toMatchObject({ status: "queued", image: "app:v1", strategy: "blue-green", trigger: { type: "rollback", by: "the API", rollbackOf: "r1" } });
    expect(queue.sent).toEqual([{ message: { env: "prod", releaseId: queued.id }, delaySec: 0 }]);
    expect(env.router.table("web_be")).toEqual(servingV2);
    const done = await runQueuedRelease(worker, "prod", queued.id);
    expect(done).toMatchObject({ id: queued.id, status: "succeeded", image: "app:v1" });
    expect(env.router.table("web_be")).not.toEqual(servingV2);
    // A duplicate wake-up finds it done.
    const calls = env.faults.calls;
    expect(await runQueuedRelease(worker, "prod", queued.id)).toMatchObject({ status: "succeeded" });
    expect(env.faults.calls).toBe(calls);
  });

  it("an unknown target is refused at once (404), with nothing written or sent", async () => {
    const { store, queue, clock } = await setUp();
    const before = store.records.size;
    await expect(requestRollback({ store, queue, clock }, "prod", "the API", "no-such")).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/has no release no-such/) });
    expect(store.records.size).toBe(before);
    expect(queue.sent).toEqual([]);
  });

  it("a router outage comes back through the queue (retryable); the next wake-up finishes the release", async () => {
    const { env, store, queue, clock, worker } = await setUp();
    const queued = await requestRollback({ store, queue, clock }, "prod", "the API");
    let joined = 0;
    env.faults.fail = (part, method) => {
      if (part === "router" && method === "setWeight" && ++joined === 2) env.router.down = true;
    };
    await expect(runQueuedRelease(worker, "prod", queued.id)).rejects.toMatchObject({ retryable: true });
    env.faults.fail = undefined;
    env.router.down = false;
    expect(await runQueuedRelease(worker, "prod", queued.id)).toMatchObject({ status: "succeeded" });
  });

  it("a release that cannot be made (its image is gone from the engine and the registry) ends failed with the reason", async () => {
    const { env, store, queue, clock, worker } = await setUp();
    const queued = await requestRollback({ store, queue, clock }, "prod", "the API");
    env.host.images.delete("app:v1");
    expect(await runQueuedRelease(worker, "prod", queued.id)).toMatchObject({ status: "failed", error: expect.stringMatching(/pulling app:v1 failed: manifest unknown/) });
    expect((await store.getRelease("prod", queued.id))?.status).toBe("failed");
  });

  it("a lost wake-up: the reconciler sends it again once the grace period has passed, once per grace period", async () => {
    const { store, queue, clock } = await setUp();
    const queued = await requestRollback({ store, queue, clock }, "prod", "the API");
    queue.sent.length = 0;
    const deps = { store: new MemoryRunStore(), deliveries: new MemoryDeliveryStore(), releases: store, queue, clock, redriveAfterMs: 30_000 };
    expect(await reconcile(deps)).toEqual([]);
    clock.advance(31_000);
    expect(await reconcile(deps)).toEqual([queued.id]);
    expect(await reconcile(deps)).toEqual([]);
    expect(queue.sent).toEqual([{ message: { env: "prod", releaseId: queued.id }, delaySec: 0 }]);
  });
});
