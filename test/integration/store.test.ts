import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { EngineError } from "../../lib/engine/docker.ts";
import type { Engine } from "../../lib/engine/port.ts";
import { transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import { advanceRun } from "../../lib/runs/advance.ts";
import type { StageSpec } from "../../lib/pipeline/run.ts";
import { reconcile } from "../../lib/runs/reconcile.ts";
import { loopbackDynamoApi } from "../../lib/store/dynamo-loopback.ts";
import { DynamoReleaseStore } from "../../lib/store/dynamo-releases.ts";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { makeRun } from "../support/runs.ts";
import { waitFor } from "../support/wait.ts";

let servers: StartedServers;
let s: Services;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers);
});
afterAll(async () => {
  await servers.close();
});

describe("DynamoRunStore on dynalite", () => {
  it("50 concurrent writers on one run lose no update", async () => {
    // Each writer records the start of its own stage, retrying on version conflicts the way
    // the worker does: all 50 facts must survive.
    const specs: StageSpec[] = Array.from({ length: 50 }, () => ({ kind: "test", run: "true", timeoutSec: 1, env: {} }));
    const run = makeRun(specs, { id: "concurrent" });
    expect(await s.store.createRun(run, { until: 1 })).toBe("created");
    let conflicts = 0;
    await Promise.all(
      specs.map(async (_, stage) => {
        for (;;) {
          const stored = await s.store.getRun(run.id);
          if (!stored) throw new Error("run vanished");
          const next = transition(stored.run, { type: "stageStarted", stage, at: 5000 + stage, job: `j${stage}` }).run;
          if (await s.store.saveRun(next, stored.version, { until: 1 })) return;
          conflicts++;
        }
      }),
    );
    const final = await s.store.getRun(run.id);
    expect(final?.run.stages.every((st, i) => st.startedAt === 5000 + i && st.job === `j${i}`)).toBe(true);
    expect(final?.version).toBe(51);
    expect(conflicts).toBeGreaterThan(0); // the writers really did collide
  });

  it("createRun writes once per id, even for 20 racing writers", async () => {
    const run = makeRun(undefined, { id: "once" });
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => s.store.createRun(run, { until: 1 })));
    expect(outcomes.filter((o) => o === "created")).toHaveLength(1);
    expect((await s.store.getRun("once"))?.version).toBe(1);
  });

  it("saveRun refuses a stale version", async () => {
    const run = makeRun(undefined, { id: "stale" });
    await s.store.createRun(run, { until: 1 });
    expect(await s.store.saveRun(run, 1, undefined)).toMatchObject({ version: 2 });
    expect(await s.store.saveRun(run, 1, undefined)).toBeUndefined();
  });

  it("lists runs newest first, by repo, branch and status, with a cursor", async () => {
    for (let i = 0; i < 5; i++)
      await s.store.createRun(
        makeRun(undefined, { id: `list-${i}`, createdAt: 10_000 + i, branch: i % 2 ? "dev" : "main", repo: { provider: "gitlab", fullName: "g/list", cloneUrl: "x" } }),
        { until: 1 },
      );
    const all = await s.store.listRuns({ repo: "gitlab:g/list" });
    expect(all.runs.map((r) => r.id)).toEqual(["list-4", "list-3", "list-2", "list-1", "list-0"]);
    const dev = await s.store.listRuns({ repo: "gitlab:g/list", branch: "dev" });
    expect(dev.runs.map((r) => r.id)).toEqual(["list-3", "list-1"]);
    const page1 = await s.store.listRuns({ repo: "gitlab:g/list", limit: 2 });
    const page2 = await s.store.listRuns({ repo: "gitlab:g/list", limit: 2, ...(page1.cursor ? { cursor: page1.cursor } : {}) });
    expect([...page1.runs, ...page2.runs].map((r) => r.id)).toEqual(["list-4", "list-3", "list-2", "list-1"]);
    expect((await s.store.listRuns({ repo: "gitlab:g/list", status: "failed" })).runs).toEqual([]);
  });

  it("lists in-flight runs together with finished ones, each once, across pages", async () => {
    const repo = { provider: "github" as const, fullName: "o/mixed", cloneUrl: "x" };
    for (let i = 0; i < 6; i++) {
      const run = makeRun(undefined, { id: `mixed-${i}`, createdAt: 20_000 + i, repo });
      // Even-numbered runs finish; odd ones stay in flight.
      const final = i % 2 === 0 ? transition(run, { type: "stop", at: 20_100, status: "failed", reason: "x" }).run : run;
      await s.store.createRun(final, { until: 1 });
    }
    const ids = (runs: { id: string }[]) => runs.map((r) => r.id);
    const everything = ["mixed-5", "mixed-4", "mixed-3", "mixed-2", "mixed-1", "mixed-0"];
    expect(ids((await s.store.listRuns({ repo: "github:o/mixed" })).runs)).toEqual(everything);
    const pages: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.store.listRuns({ repo: "github:o/mixed", limit: 4, ...(cursor ? { cursor } : {}) });
      pages.push(...ids(page.runs));
      cursor = page.cursor;
    } while (cursor);
    expect(pages).toEqual(everything);
    expect(ids((await s.store.listRuns({ repo: "github:o/mixed", status: "failed" })).runs)).toEqual(["mixed-4", "mixed-2", "mixed-0"]);
    expect(ids((await s.store.listRuns({ repo: "github:o/mixed", status: "queued" })).runs)).toEqual(["mixed-5", "mixed-3", "mixed-1"]);

    // Finishing a run moves it from the in-flight list to history: still listed once.
    const stored = await s.store.getRun("mixed-5");
    const done = transition(stored!.run, { type: "stop", at: 20_200, status: "cancelled", reason: "y" }).run;
    expect(await s.store.saveRun(done, stored!.version, undefined)).toBeDefined();
    const after = (await s.store.listRuns({ repo: "github:o/mixed" })).runs;
    expect(ids(after)).toEqual(everything);
    expect(after[0]?.status).toBe("cancelled");
  });

  it("finds unfinished runs whose lease expired, and only those", async () => {
    const fresh = await servicesOn(servers);
    await fresh.store.createRun(makeRun(undefined, { id: "expired" }), { until: 100 });
    await fresh.store.createRun(makeRun(undefined, { id: "alive" }), { until: 10_000 });
    const done = transition(makeRun([], { id: "done" }), { type: "stop", at: 1, status: "failed", reason: "x" }).run;
    await fresh.store.createRun(done, { until: 100 });
    expect((await fresh.store.expiredRuns(5000, 10)).map((r) => r.run.id)).toEqual(["expired"]);
  });

  it("keeps a run cancelled with a stage in flight in the reconciler's list until that stage is undone", async () => {
    const fresh = await servicesOn(servers);
    const started = transition(makeRun(undefined, { id: "caught" }), { type: "stageStarted", stage: 0, at: 50, job: "j0" }).run;
    const cancelled = transition(started, { type: "stop", at: 60, status: "cancelled", reason: "cancelled by ada" }).run;
    await fresh.store.createRun(cancelled, { until: 100 });
    expect((await fresh.store.expiredRuns(5000, 10)).map((r) => r.run.id)).toEqual(["caught"]); // its wake-up was lost
    expect((await fresh.store.listRuns({ status: "cancelled" })).runs.map((r) => r.id)).toEqual(["caught"]);
    const undone = transition(cancelled, { type: "stageFinished", stage: 0, at: 70, ok: false, error: "stopped" }).run;
    expect(await fresh.store.saveRun(undone, 1, { until: 100 })).toBeDefined();
    expect(await fresh.store.expiredRuns(5000, 10)).toEqual([]);
    expect((await fresh.store.listRuns({ status: "cancelled" })).runs.map((r) => r.id)).toEqual(["caught"]);
  });

  it("stores log chunks at fixed offsets, idempotently", async () => {
    await s.store.putLog("logs", { stage: 1, offset: 0, text: "a" });
    await s.store.putLog("logs", { stage: 1, offset: 0, text: "ab" });
    await s.store.putLog("logs", { stage: 0, offset: 0, text: "x" });
    await s.store.putLog("logs", { stage: 1, offset: 16384, text: "c" });
    expect(await s.store.readLogs("logs", 1)).toEqual([
      { stage: 1, offset: 0, text: "ab" },
      { stage: 1, offset: 16384, text: "c" },
    ]);
    expect((await s.store.readLogs("logs")).map((c) => c.stage)).toEqual([0, 1, 1]);
  });
});

describe("undoing a cancelled run's stage on dynalite + local-aws-sqs", () => {
  it("is retried while the engine may come back, then recorded as not undone, and the run leaves the reconciler's list", async () => {
    let now = 1_000_000;
    const engine = {
      removeJob: async () => {
        throw new EngineError("cannot reach the engine", { retryable: true });
      },
    } as unknown as Engine;
    const fresh = await servicesOn(servers, {}, { clock: { now: () => now }, engine });
    const events: RunEvent[] = [
      { type: "stageStarted", stage: 0, at: 10 },
      { type: "stageFinished", stage: 0, at: 20, ok: true },
      { type: "stageStarted", stage: 1, at: 30, job: "t1" },
      { type: "stop", at: now, status: "cancelled", reason: "cancelled by ada" },
    ];
    const run = events.reduce((r, e) => transition(r, e).run, makeRun(undefined, { id: "undo" }));
    await fresh.store.createRun(run, { until: 0 });

    await expect(advanceRun(fresh.advance, "undo")).rejects.toThrow(/cannot reach the engine/); // the message comes back
    now += 2 * 60 * 60_000;
    expect(await advanceRun(fresh.advance, "undo")).toBe("finished");
    const stored = (await fresh.store.getRun("undo"))!.run;
    expect(stored).toMatchObject({ status: "cancelled", error: "cancelled by ada" });
    expect(stored.stages[1]?.error).toMatch(/^stopped, but could not undo the stage: cannot reach the engine \(tried for 120 min\)$/);
    expect(await fresh.store.expiredRuns(now + 10 * 60 * 60_000, 10)).toEqual([]);
  });
});

describe("a deploy stage that outlasts the worker's budget, on dynalite + local-aws-sqs", () => {
  it("keeps its run's lease, so no second worker runs the same release beside it", async () => {
    const fresh = await servicesOn(servers, { HOIST_LEASE_MS: "300", HOIST_STEP_BUDGET_MS: "100" });
    const deploy: StageSpec = { kind: "deploy", environment: "slow", compose: "docker-compose.yml" };
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const entered: string[] = [];
    const releases = fresh.advance.releases!;
    // The release's first step hangs until the test lets it go: a release still under way. (The
    // stage's approval gate looks the environment up first, and goes on: it has no rule.)
    let looks = 0;
    const store = Object.assign(Object.create(releases.store) as typeof releases.store, {
      getEnvironment: async (name: string) => {
        if (++looks === 1) return undefined;
        entered.push(name);
        await gate;
        return undefined;
      },
    });
    const deps = { ...fresh.advance, releases: { ...releases, store } };
    await fresh.store.createRun(makeRun([deploy], { id: "slow-deploy", image: "shop:1" }), { until: 0 });

    const claimed = Date.now();
    const first = advanceRun(deps, "slow-deploy");
    await waitFor("the release to start", async () => entered.length === 1);
    // Renewal past the budget (100 ms) and its one lease (300 ms) is what keeps a second worker out.
    await waitFor("the run's lease renewed four leases past the budget", async () => ((await fresh.store.getRun("slow-deploy"))?.leaseUntil ?? 0) > claimed + 100 + 4 * 300, 20_000);
    expect(await advanceRun(deps, "slow-deploy")).toBe("busy");
    expect(entered).toHaveLength(1);
    letGo();
    expect(await first).toBe("finished");
    expect((await fresh.store.getRun("slow-deploy"))!.run.stages[0]?.error).toMatch(/unknown environment "slow"/);
  });
});

describe("DynamoReleaseStore lease on dynalite", () => {
  it("one holder at a time; a lease freed between the refused write and the read of its holder is taken", async () => {
    const api = loopbackDynamoApi(servers.dynamodb);
    const table = s.config.HOIST_TABLE;
    const leases = new DynamoReleaseStore(api, table);
    expect(await leases.lock("e", "a", 2000, 1000)).toEqual({ ok: true });
    expect(await leases.lock("e", "b", 2000, 1000)).toEqual({ ok: false, holder: "a", until: 2000 });
    expect(await leases.lock("e", "b", 4000, 3000)).toEqual({ ok: true }); // a's lease expired

    // The holder lets go just after b's conditional write failed, before b reads who holds it.
    let freed = false;
    const racing = new DynamoReleaseStore(
      {
        ...api,
        getItem: async (input) => {
          if (!freed) {
            freed = true;
            await leases.unlock("e", "b");
          }
          return api.getItem(input);
        },
      },
      table,
    );
    expect(await racing.lock("e", "c", 4000, 3000)).toEqual({ ok: true });
    expect(await leases.lock("e", "d", 4000, 3000)).toEqual({ ok: false, holder: "c", until: 4000 });
  });
});

describe("reconciler on dynalite + local-aws-sqs", () => {
  it("re-drives a run whose message was lost, once per grace period", async () => {
    let now = 1_000_000;
    const fresh = await servicesOn(servers, {}, { clock: { now: () => now } });
    await fresh.store.createRun(makeRun(undefined, { id: "lost" }), { until: now + 30_000 });
    expect(await reconcile(fresh.reconcile)).toEqual([]);
    now += 31_000;
    expect(await reconcile(fresh.reconcile)).toEqual(["lost"]);
    expect(await reconcile(fresh.reconcile)).toEqual([]); // lease pushed forward: not sent twice
    const [message] = await fresh.queue.receive(10, 1);
    expect(JSON.parse(message?.body ?? "{}")).toEqual({ runId: "lost" });
  });
});
