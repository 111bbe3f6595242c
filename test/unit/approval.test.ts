import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mergeAsks, type ApprovalAsk, type ApprovalRule } from "../../lib/pipeline/approval.ts";
import { jobName, plan, rerunRefusal, transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import type { Run, StageSpec } from "../../lib/pipeline/run.ts";
import { HoistFile } from "../../lib/pipeline/schema.ts";
import { resolveStages } from "../../lib/pipeline/resolve.ts";
import { decide } from "../../lib/runs/approve.ts";
import { rerunRun } from "../../lib/runs/rerun.ts";
import { ManualClock, MemoryQueue, MemoryRunStore } from "../support/memory.ts";
import { defaultSpecs, makeRun } from "../support/runs.ts";

const deploy: StageSpec = { kind: "deploy", environment: "production", compose: "docker-compose.yml" };
const ask = (a: Partial<ApprovalAsk> = {}): ApprovalAsk => ({ approvers: [], count: 1, timeoutSec: 3600, selfApproval: true, ...a });
const rule = (r: Partial<ApprovalRule> = {}): ApprovalRule => ({ approvers: ["alice", "bob", "carol"], count: 2, expiresAt: 10_000, selfApproval: false, from: ["environment production"], ...r });

/** A run of build, test, push, deploy with the first three done, pushed by `pusher`. */
function atDeploy(pusher = "dave"): Run {
  const run = makeRun([...defaultSpecs(), deploy], { trigger: { type: "push", delivery: "d1", actor: pusher } });
  const events: RunEvent[] = [0, 1, 2].flatMap((i) => [
    { type: "stageStarted", stage: i, at: 2000 + i * 10, job: `j${i}` } as const,
    { type: "stageFinished", stage: i, at: 2005 + i * 10, ok: true, ...(i === 0 ? { output: { image: "shop:abc" } } : {}) } as const,
  ]);
  return events.reduce((r, e) => transition(r, e).run, run);
}

const opened = (r: ApprovalRule | "none" = rule()): RunEvent => ({ type: "gateOpened", stage: 3, at: 3000, ...(r !== "none" ? { rule: r } : {}) });
const decision = (by: string, approve = true, at = 4000, identities: string[] = []): RunEvent => ({ type: "decided", stage: 3, at, by, identities, via: "api", approve });
const apply = (run: Run, events: RunEvent[]) => events.reduce((r, e) => transition(r, e).run, run);

describe("approval gates in the machine", () => {
  it("a deploy stage first opens its gate; without a rule it then starts", () => {
    const run = atDeploy();
    expect(plan(run)).toEqual([{ type: "openGate", stage: 3, spec: deploy }]);
    const open = transition(run, opened("none"));
    expect(open.run.stages[3]?.gate).toEqual({ openedAt: 3000, decisions: [] });
    expect(open.effects).toEqual([{ type: "startStage", stage: 3, spec: deploy }]);
  });

  it("with a rule the run waits, asks once, and plans a wake-up at the deadline, not a start", () => {
    const { run, effects } = transition(atDeploy(), opened());
    expect(run.status).toBe("waiting");
    expect(run.stages[3]?.status).toBe("waiting");
    expect(effects).toEqual([{ type: "approvalRequested", stage: 3 }, { type: "awaitApproval", stage: 3, expiresAt: 10_000 }]);
    // A second gateOpened (a re-driven worker) changes nothing and asks nobody again.
    expect(transition(run, opened(rule({ count: 1 })))).toMatchObject({ changed: false, effects: [] });
  });

  it("N of M: two distinct approvers start the stage; the same person twice counts once", () => {
    const waiting = transition(atDeploy(), opened()).run;
    const once = transition(waiting, decision("alice")).run;
    expect(once.status).toBe("waiting");
    expect(transition(once, decision("ALICE ", true, 4100))).toMatchObject({ changed: false });
    const twice = transition(once, decision("bob", true, 4200));
    expect(twice.run.stages[3]?.status).toBe("pending");
    expect(twice.run.status).toBe("running");
    expect(twice.effects).toEqual([{ type: "startStage", stage: 3, spec: deploy }]);
    expect(twice.run.stages[3]?.gate?.decisions.map((d) => [d.by, d.approve, d.refused])).toEqual([
      ["alice", true, undefined],
      ["bob", true, undefined],
    ]);
  });

  it("refuses, and records, someone not on the allow-list and the pusher when self-approval is off", () => {
    const waiting = transition(atDeploy("carol"), opened()).run;
    const after = apply(waiting, [decision("mallory"), decision("carol", true, 4100), decision("x", true, 4200, ["Carol"])]);
    expect(after.status).toBe("waiting");
    const refusals = after.stages[3]?.gate?.decisions.map((d) => d.refused);
    expect(refusals?.[0]).toMatch(/mallory is not an approver here/);
    expect(refusals?.[1]).toMatch(/started this run, and this gate refuses self-approval/);
    expect(refusals?.[2]).toMatch(/started this run/);
  });

  it("a pusher is known by the email the push gave too: a Slack click carrying it is self-approval", () => {
    const run = makeRun([...defaultSpecs(), deploy], { trigger: { type: "push", delivery: "d1", actor: "octo", email: "Octo@Example.com" } });
    const waiting = transition(apply(run, [0, 1, 2].flatMap((i) => [{ type: "stageStarted", stage: i, at: 2000 + i, job: "j" } as const, { type: "stageFinished", stage: i, at: 2001 + i, ok: true } as const])), opened(rule({ approvers: ["slack:U1"], count: 1 }))).run;
    const refused = transition(waiting, decision("slack:U1", true, 4000, ["slack:U1", "octo@example.com"])).run;
    expect(refused.stages[3]?.gate?.decisions[0]?.refused).toMatch(/started this run/);
  });

  it("a rejection fails the stage and the run with who and why; later approvals are refused", () => {
    const waiting = transition(atDeploy(), opened()).run;
    const rejected = transition(waiting, { ...decision("bob", false), reason: "not on a Friday" } as RunEvent);
    expect(rejected.run.status).toBe("failed");
    expect(rejected.run.error).toBe("deploy-3: rejected by bob: not on a Friday");
    expect(rejected.effects).toEqual([{ type: "runFinished", status: "failed" }]);
    const late = transition(rejected.run, decision("alice", true, 5000));
    expect(late.changed).toBe(false);
  });

  it("expiry fails the stage only at or after the deadline, with how many approvals came", () => {
    const waiting = apply(atDeploy(), [opened(), decision("alice")]);
    expect(transition(waiting, { type: "gateExpired", stage: 3, at: 9_999 }).changed).toBe(false);
    const expired = transition(waiting, { type: "gateExpired", stage: 3, at: 10_000 }).run;
    expect(expired.status).toBe("failed");
    expect(expired.error).toBe("deploy-3: approval timed out with 1 of 2 approvals (alice)");
    // A decision after the deadline does not count, even before the worker woke.
    expect(transition(waiting, decision("bob", true, 10_001)).run.stages[3]?.gate?.decisions.at(-1)?.refused).toMatch(/past its deadline/);
  });

  it("a cancel while waiting ends the run with nothing to undo", () => {
    const waiting = transition(atDeploy(), opened()).run;
    const { run, effects } = transition(waiting, { type: "stop", at: 5000, status: "cancelled", reason: "cancelled by the API" });
    expect(run.status).toBe("cancelled");
    expect(effects).toEqual([{ type: "runFinished", status: "cancelled" }]);
  });

  it("an unusable merged rule fails the stage when the gate opens", () => {
    const { run } = transition(atDeploy(), { type: "gateOpened", stage: 3, at: 3000, error: "approval of production: nobody could approve" });
    expect(run.status).toBe("failed");
    expect(run.error).toContain("nobody could approve");
  });

  it("the order of approvals does not change the outcome (property)", () => {
    const people = ["alice", "bob", "carol", "mallory", "dave"];
    fc.assert(
      fc.property(fc.shuffledSubarray(people), (order) => {
        const waiting = transition(atDeploy("dave"), opened()).run;
        const after = apply(waiting, order.map((p, i) => decision(p, true, 4000 + i)));
        const counted = order.filter((p) => ["alice", "bob", "carol"].includes(p));
        expect(after.stages[3]?.status).toBe(counted.length >= 2 ? "pending" : "waiting");
        // Once two approved, the gate is closed: a third approver's click is refused.
        expect(after.stages[3]?.gate?.decisions.filter((d) => !d.refused).length).toBe(Math.min(counted.length, 2));
      }),
    );
  });
});

describe("mergeAsks: a commit can add a gate, never weaken the environment's", () => {
  it("takes the larger count, the shorter timeout, the approvers on every list, no self-approval if either says so", () => {
    const merged = mergeAsks(
      [
        { from: ".hoist.yml", ask: ask({ approvers: ["alice", "bob", "eve"], count: 1, timeoutSec: 600 }) },
        { from: "environment production", ask: ask({ approvers: ["Alice", "bob", "carol"], count: 2, timeoutSec: 3600, selfApproval: false }) },
      ],
      1000,
    );
    expect(merged).toEqual({ approvers: ["alice", "bob"], count: 2, expiresAt: 601_000, selfApproval: false, from: [".hoist.yml", "environment production"] });
  });

  it("refuses lists with nobody in common, and a count more than the approvers", () => {
    expect(mergeAsks([{ from: "a", ask: ask({ approvers: ["x"] }) }, { from: "b", ask: ask({ approvers: ["y"] }) }], 0)).toMatchObject({ error: expect.stringContaining("nobody could approve") });
    expect(mergeAsks([{ from: "a", ask: ask({ approvers: ["x"], count: 2 }) }], 0)).toMatchObject({ error: expect.stringContaining("2 approvals are needed and only 1") });
    expect(mergeAsks([], 0)).toBeUndefined();
  });
});

describe(".hoist.yml approval:", () => {
  const parse = (approval: unknown) => HoistFile.safeParse({ pipelines: { main: { on: { push: true }, stages: [{ build: {} }, { deploy: { environment: "production", approval } }] } } });

  it("reads approvers, count, a Go-style timeout and self_approval into the stage", () => {
    const file = parse({ approvers: ["alice", "slack:U123"], count: 2, timeout: "1h30m", self_approval: false });
    expect(file.success).toBe(true);
    const resolved = file.success ? resolveStages(file.data.pipelines.main!, { repoName: "acme/shop" }) : undefined;
    expect(resolved?.ok && resolved.stages[1]?.spec).toMatchObject({ approval: { approvers: ["alice", "slack:U123"], count: 2, timeoutSec: 5400, selfApproval: false } });
  });

  it("`approval: true` asks one approval from anyone, for a day", () => {
    const file = parse(true);
    const resolved = file.success ? resolveStages(file.data.pipelines.main!, { repoName: "acme/shop" }) : undefined;
    expect(resolved?.ok && resolved.stages[1]?.spec).toMatchObject({ approval: { approvers: [], count: 1, timeoutSec: 86_400, selfApproval: true } });
  });

  it("refuses unknown keys, bad durations and out-of-range values", () => {
    for (const bad of [{ approver: ["a"] }, { timeout: "soon" }, { timeout: "10s" }, { count: 0 }, { timeout: "9999h" }, false]) expect(parse(bad).success, JSON.stringify(bad)).toBe(false);
  });
});

describe("decide (the API's, Slack's and links' one way in)", () => {
  async function waitingRun() {
    const store = new MemoryRunStore();
    const queue = new MemoryQueue();
    const clock = new ManualClock(4000);
    const run = transition(atDeploy("carol"), opened()).run;
    await store.createRun(run, { until: 0 });
    return { store, queue, clock, deps: { store, queue, clock } };
  }

  it("two concurrent clicks of one person make one decision; the second approver wakes the run once", async () => {
    const { store, queue, clock, deps } = await waitingRun();
    const [a, b] = await Promise.all([
      decide(deps, { runId: "r1", approve: true, by: "alice", via: "slack" }),
      decide(deps, { runId: "r1", approve: true, by: "alice", via: "slack" }),
    ]);
    expect([a.outcome, b.outcome].sort()).toEqual(["accepted", "duplicate"]);
    expect(queue.sent).toEqual([]);
    const second = await decide(deps, { runId: "r1", approve: true, by: "bob", via: "cli" });
    expect(second).toMatchObject({ outcome: "accepted", waiting: false, summary: "approved by alice, bob" });
    expect(queue.sent.map((m) => m.message)).toEqual([{ runId: "r1" }]);
    const decided = await store.getRun("r1");
    expect(decided?.run.stages[3]?.gate?.decisions.map((d) => `${d.by}/${d.via}`)).toEqual(["alice/slack", "bob/cli"]);
    // Decided: the reconciler may take the run at once should the wake-up be lost.
    expect(decided?.leaseUntil).toBeLessThanOrEqual(clock.now());
  });

  it("refusals are answered with the reason and recorded; a run not waiting says so; an unknown run is missing", async () => {
    const { store, deps } = await waitingRun();
    expect(await decide(deps, { runId: "r1", approve: true, by: "carol", via: "api" })).toMatchObject({ outcome: "refused", reason: expect.stringContaining("self-approval") });
    expect((await store.getRun("r1"))?.run.stages[3]?.gate?.decisions).toHaveLength(1);
    await decide(deps, { runId: "r1", approve: false, by: "bob", via: "api", reason: "no" });
    expect(await decide(deps, { runId: "r1", approve: true, by: "alice", via: "api" })).toMatchObject({ outcome: "not-waiting" });
    expect(await decide(deps, { runId: "rnope", approve: true, by: "alice", via: "api" })).toEqual({ outcome: "missing" });
  });

  it("once the gate keeps no more refusals, a refused decision is still answered as refused", async () => {
    const { store, deps } = await waitingRun();
    for (let i = 0; i < 20; i++) await decide(deps, { runId: "r1", approve: true, by: `stranger-${i}`, via: "api" });
    expect((await store.getRun("r1"))?.run.stages[3]?.gate?.decisions).toHaveLength(16);
    expect(await decide(deps, { runId: "r1", approve: true, by: "stranger-99", via: "api" })).toMatchObject({ outcome: "refused", reason: expect.stringContaining("keeps no more refusals") });
    expect(await decide(deps, { runId: "r1", approve: true, by: "alice", via: "api" })).toMatchObject({ outcome: "accepted" });
  });
});

describe("rerun", () => {
  const failedAtTest = () =>
    apply(makeRun([...defaultSpecs(), deploy]), [
      { type: "stageStarted", stage: 0, at: 2000, job: "b" },
      { type: "stageFinished", stage: 0, at: 2005, ok: true, output: { image: "shop:abc" } },
      { type: "stageStarted", stage: 1, at: 2010, job: jobName(makeRun(), 1) },
      { type: "stageFinished", stage: 1, at: 2020, ok: false, error: "exit 1" },
    ]);

  it("goes again from the failed stage, keeps the attempt, and names new jobs", () => {
    const failed = failedAtTest();
    const { run, effects } = transition(failed, { type: "rerun", at: 3000, by: "alice", from: 1, attempt: 1 });
    expect(run.status).toBe("running");
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "pending", "pending", "pending"]);
    expect(run.image).toBe("shop:abc");
    expect(run.attempts).toEqual([
      {
        at: 3000,
        by: "alice",
        from: 1,
        status: "failed",
        error: "test-1: exit 1",
        stages: [
          { name: "test-1", status: "failed", error: "exit 1", startedAt: 2010, finishedAt: 2020 },
          { name: "push-2", status: "skipped" },
          { name: "deploy-3", status: "skipped" },
        ],
      },
    ]);
    expect(effects).toEqual([{ type: "startStage", stage: 1, spec: run.stages[1]?.spec }]);
    expect(jobName(run, 1)).toBe("hoist-test-r1-1-a2");
    // The same rerun again (a retried request) adds nothing; a late event of the first attempt is ignored.
    expect(transition(run, { type: "rerun", at: 3000, by: "alice", from: 1, attempt: 1 }).changed).toBe(false);
    expect(transition(run, { type: "stageFinished", stage: 1, at: 2500, ok: false, error: "late" }).changed).toBe(false);
  });

  it("refuses running and succeeded runs, a stage after the failure, and more than the attempts kept", () => {
    expect(rerunRefusal(makeRun(), 0)).toMatch(/only a finished run/);
    expect(rerunRefusal(failedAtTest(), 2)).toMatch(/test-1 did not succeed/);
    let run = failedAtTest();
    for (let attempt = 1; attempt <= 4; attempt++) {
      run = transition(run, { type: "rerun", at: 3000 + attempt * 100, by: "a", from: 1, attempt }).run;
      run = transition(run, { type: "stageFinished", stage: 1, at: 3050 + attempt * 100, ok: false, error: "again" }).run;
    }
    expect(run.attempts).toHaveLength(4);
    expect(rerunRefusal(run, 1)).toMatch(/5 attempts/);
  });

  it("through the store: wakes the run, and answers a conflict for a run still going", async () => {
    const store = new MemoryRunStore();
    const queue = new MemoryQueue();
    const deps = { store, queue, clock: new ManualClock(5000) };
    await store.createRun(failedAtTest(), { until: 0 });
    const run = await rerunRun(deps, "r1", "alice", "test-1");
    expect(run?.status).toBe("running");
    expect(queue.sent.map((m) => m.message)).toEqual([{ runId: "r1" }]);
    await expect(rerunRun(deps, "r1", "alice")).rejects.toThrow(/only a finished run/);
    expect(await rerunRun(deps, "rnope", "alice")).toBeUndefined();
  });
});
