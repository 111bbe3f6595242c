import { describe, expect, it } from "vitest";
import { instanceHostError } from "../../lib/engine/docker.ts";
import { classify } from "../../lib/errors.ts";
import { FULL } from "../../lib/release/moves.ts";
import { release } from "../../lib/release/release.ts";
import { releaseSpec } from "../support/release-fakes.ts";
import { cancelEverywhere, crashEverywhere, expectServing, NEW, releaseV2, trigger, withV1, type Env } from "../support/release-cases.ts";

/**
 * The strategies on in-memory ports (see test/support/release-fakes.ts): every outside call
 * can be made to fail, every cancel point taken, and time passes only on the fake clock. The
 * end-to-end tests (test/e2e/release*.test.ts) prove the same moves on Docker, Swarm and HAProxy.
 */

const fresh = (id: string, ...indexes: number[]) => indexes.map((i) => `hoist-prod-web-${id}-${i}`);
const indexOf = (name: string) => Number(/-(\d+)$/.exec(name)?.[1]);

describe("blue-green", () => {
  const spec = releaseSpec({ hoist: { strategy: "blue-green" } });

  it("starts the whole new set, switches at once, and keeps the old set stopped for a rollback", async () => {
    const { env, v1 } = await withV1(spec);
    const done = await releaseV2(env, spec);
    expect(done).toMatchObject({ status: "succeeded", previous: "r1", instances: fresh(NEW, 0, 1, 2) });
    expectServing(env, fresh(NEW, 0, 1, 2));
    expect((await env.host.list({ "hoist.release": "r1" })).map((i) => [i.name, i.running])).toEqual(v1.instances.map((n) => [n, false]));
  });

  it.each([0, 1, 2])("fails with the old set untouched when new instance %i never passes its health gate", async (k) => {
    const { env, v1 } = await withV1(spec);
    env.probe.healthy = (i) => i.labels["hoist.release"] !== NEW || indexOf(i.name) !== k;
    const done = await releaseV2(env, spec);
    expect(done).toMatchObject({ status: "failed", rolledBack: true });
    expect(done.error).toMatch(new RegExp(`${fresh(NEW, k)[0]} failed its health check: GET /healthz answered 500`));
    expectServing(env, v1.instances);
  });

  it("a router outage mid-switch is retryable, and the release resumed under its id finishes it", async () => {
    const { env } = await withV1(spec);
    // The second new instance's weight: the first already takes traffic, v1 still does.
    let fulls = 0;
    env.faults.fail = (part, method, _n, args) => {
      if (part === "router" && method === "setWeight" && args[2] === FULL && ++fulls === 2) env.router.down = true;
    };
    const err = await releaseV2(env, spec).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "RouterError", retryable: true, status: 503 });
    expect((await env.store.getRelease("prod", NEW))?.status).toBe("running");
    env.faults.fail = undefined;
    env.router.down = false;
    const done = await releaseV2(env, spec);
    expect(done.status).toBe("succeeded");
    expectServing(env, fresh(NEW, 0, 1, 2));
  });

  it("a crash at any step, resumed under the same id, ends with exactly the new set serving", async () => {
    expect(await crashEverywhere(spec)).toBeGreaterThan(20);
  });

  it("a cancel before the switch leaves the old set serving", async () => {
    expect(await cancelEverywhere(spec)).toBe(1);
  });
});

describe("rolling on one host", () => {
  const orders = ["start-first", "stop-first"] as const;

  describe.each(orders)("%s", (order) => {
    const spec = releaseSpec({ update: { order, failureAction: "rollback" } });

    it("replaces the set one instance at a time", async () => {
      const { env } = await withV1(spec);
      // Each batch: how many v1 and new instances serve once it is done (start-first never has fewer than 3).
      const seen: number[] = [];
      env.faults.fail = (part, method) => {
        if (part === "router" && method === "removeServer") seen.push(env.router.table(env.ctx.backend).filter((s) => s.endsWith("ready")).length);
      };
      const done = await releaseV2(env, spec);
      expect(done).toMatchObject({ status: "succeeded", instances: fresh(NEW, 0, 1, 2) });
      expectServing(env, fresh(NEW, 0, 1, 2));
      expect(Math.min(...seen)).toBe(order === "start-first" ? 3 : 2);
    });

    describe.each([0, 1, 2])("health failing at batch %i", (k) => {
      const failing = (env: Env) => {
        env.probe.healthy = (i) => i.labels["hoist.release"] !== NEW || indexOf(i.name) !== k;
      };

      it("failure_action rollback: the previous release serves again, whole", async () => {
        const { env, v1 } = await withV1(spec);
        failing(env);
        const done = await releaseV2(env, spec);
        expect(done).toMatchObject({ status: "failed", rolledBack: true });
        expectServing(env, v1.instances);
      });

      it("failure_action pause: what was replaced serves next to what was not", async () => {
        const paused = releaseSpec({ update: { order, failureAction: "pause" } });
        const { env, v1 } = await withV1(paused);
        failing(env);
        const done = await releaseV2(env, paused);
        expect(done).toMatchObject({ status: "failed", rolledBack: false });
        expect(done.error).toMatch(new RegExp(`paused with ${k} new instance\\(s\\) serving`));
        // Stop-first stopped batch k's old instance before its new one failed.
        const oldLeft = v1.instances.slice(order === "start-first" ? k : k + 1);
        expectServing(env, [...fresh(NEW, ...Array.from({ length: k }, (_, i) => i)), ...oldLeft]);
      });

      it("failure_action continue: the other batches go on; start-first keeps the old instance in the failed one's place", async () => {
        const going = releaseSpec({ update: { order, failureAction: "continue" } });
        const { env, v1 } = await withV1(going);
        failing(env);
        const done = await releaseV2(env, going);
        const replaced = fresh(NEW, ...[0, 1, 2].filter((i) => i !== k));
        const serving = order === "start-first" ? [...replaced, v1.instances[k]!] : replaced;
        expect(done.status).toBe("succeeded");
        expect([...done.instances].sort()).toEqual([...serving].sort());
        expectServing(env, serving);
      });
    });

    it("a router outage while a batch joins is retryable, and the resumed release finishes", async () => {
      const { env } = await withV1(spec);
      let adds = 0;
      env.faults.fail = (part, method) => {
        if (part === "router" && method === "addServer" && ++adds === 2) env.router.down = true;
      };
      const err = await releaseV2(env, spec).catch((e: unknown) => e);
      expect(classify(err)).toMatchObject({ retryable: true, status: 503 });
      env.faults.fail = undefined;
      env.router.down = false;
      expect((await releaseV2(env, spec)).status).toBe("succeeded");
      expectServing(env, fresh(NEW, 0, 1, 2));
    });

    it("an engine that times out or resets mid-release is retried, not a failed release", async () => {
      const { env } = await withV1(spec);
      let starts = 0;
      env.faults.fail = (part, method) => {
        if (part !== "host" || method !== "start") return;
        starts++;
        // docker-modem destroys a timed-out request: the socket error is a reset.
        if (starts === 2) throw instanceHostError("start", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
        if (starts === 3) throw instanceHostError("start", Object.assign(new Error("connect ETIMEDOUT 10.0.0.1:2376"), { code: "ETIMEDOUT" }));
      };
      for (const expected of ["ECONNRESET", "ETIMEDOUT"]) {
        const err = await releaseV2(env, spec).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: "EngineError", retryable: true, status: 503 });
        expect((err as Error).message).toMatch(expected === "ECONNRESET" ? /socket hang up/ : /ETIMEDOUT/);
        expect((await env.store.getRelease("prod", NEW))?.status).toBe("running");
      }
      const done = await releaseV2(env, spec);
      expect(done.status).toBe("succeeded");
      expectServing(env, fresh(NEW, 0, 1, 2));
    });

    it("a crash at any step, resumed under the same id, ends with exactly the new set serving", async () => {
      expect(await crashEverywhere(spec)).toBeGreaterThan(20);
    });

    it("a cancel before each batch puts the previous release back", async () => {
      expect(await cancelEverywhere(spec)).toBe(3);
    });
  });
});

describe("canary", () => {
  // Ten replicas: the canary set is 1, 3, then 6 instances at 10, 30 and 60 percent.
  const spec = releaseSpec({ replicas: 10, hoist: { strategy: "canary", steps: [10, 30, 60, 100] } });
  /** New instances from slot `from` on answer 5xx to half their requests. */
  const badFrom = (from: number) => (server: string) => (server.includes(NEW) && indexOf(server) >= from ? 0.5 : 0);

  it("promotes a good canary step by step, each step at its share of the traffic", async () => {
    const { env } = await withV1(spec);
    const shares: number[] = [];
    env.clock.onSleep.push((ms) => {
      if (ms !== spec.hoist.intervalMs) return;
      const table = env.router.table(env.ctx.backend).map((row) => row.split(" "));
      const weight = (mine: boolean) => table.filter(([name]) => name!.includes(NEW) === mine).reduce((sum, [, w]) => sum + Number(w), 0);
      shares.push(Math.round((100 * weight(true)) / (weight(true) + weight(false))));
    });
    const done = await releaseV2(env, spec);
    expect(done.status).toBe("succeeded");
    expect(shares).toEqual([10, 30, 60]);
    expectServing(env, fresh(NEW, ...Array.from({ length: 10 }, (_, i) => i)));
  });

  it.each([
    [0, 10],
    [1, 30],
    [3, 60],
  ])("catches a canary whose slot %i on answers 5xx at step %i%%, and withdraws it", async (from, step) => {
    const { env, v1 } = await withV1(spec, { errorRate: badFrom(from) });
    const done = await releaseV2(env, spec);
    expect(done).toMatchObject({ status: "failed", rolledBack: true, canary: { step } });
    expect(done.error).toMatch(new RegExp(`^canary failed at ${step}%`));
    expectServing(env, v1.instances);
    expect(await env.host.list({ "hoist.release": NEW })).toEqual([]);
  });

  it.each([
    ["no worse than the stable set", 0.2, 0.2, "succeeded"],
    ["within the threshold of it", 0.24, 0.2, "succeeded"],
    ["worse by more than the threshold", 0.3, 0.2, "failed"],
  ])("judges 5xx against the stable set: a canary %s ends %s", async (_what, canaryRate, stableRate, status) => {
    const { env } = await withV1(spec, { errorRate: (server) => (server.includes(NEW) ? canaryRate : stableRate) });
    const done = await releaseV2(env, spec);
    expect(done.status).toBe(status);
    if (status === "failed") expect(done.canary?.step).toBe(10);
  });

  it("health failing at step k's new instances withdraws the canary before it takes traffic", async () => {
    for (const k of [0, 2, 5]) {
      const { env, v1 } = await withV1(spec);
      env.probe.healthy = (i) => i.labels["hoist.release"] !== NEW || indexOf(i.name) !== k;
      const done = await releaseV2(env, spec);
      expect(done).toMatchObject({ status: "failed", rolledBack: true });
      expectServing(env, v1.instances);
    }
  });

  it("a router outage mid-promotion is retryable, and the resumed release finishes", async () => {
    const { env } = await withV1(spec);
    let fulls = 0;
    env.faults.fail = (part, method, _n, args) => {
      if (part === "router" && method === "setWeight" && args[2] === FULL && ++fulls === 3) env.router.down = true;
    };
    const err = await releaseV2(env, spec).catch((e: unknown) => e);
    expect(classify(err).retryable).toBe(true);
    env.faults.fail = undefined;
    env.router.down = false;
    expect((await releaseV2(env, spec)).status).toBe("succeeded");
    expectServing(env, fresh(NEW, ...Array.from({ length: 10 }, (_, i) => i)));
  });

  it("a crash at any step, resumed under the same id, ends with exactly the new set serving", async () => {
    const small = releaseSpec({ replicas: 3, hoist: { strategy: "canary", steps: [34, 100] } });
    expect(await crashEverywhere(small)).toBeGreaterThan(30);
  });

  it("a cancel before each step withdraws the canary", async () => {
    expect(await cancelEverywhere(spec)).toBe(4);
  });

  it("parks at a step when the caller may not wait that long, and carries on from its checkpoint", async () => {
    const { env } = await withV1(spec);
    const req = { id: NEW, image: "app:v2", spec, trigger, parkAfterMs: 1_000 };
    let record = await release(env.deps, env.ctx, req);
    const steps: number[] = [];
    while (record.status === "running") {
      steps.push(record.checkpoint!.canary!.step);
      await env.clock.sleep(record.checkpoint!.until - env.clock.now());
      record = await release(env.deps, env.ctx, req);
    }
    expect(steps).toEqual([10, 30, 60]);
    expect(record.status).toBe("succeeded");
    expectServing(env, fresh(NEW, ...Array.from({ length: 10 }, (_, i) => i)));
  });
});
