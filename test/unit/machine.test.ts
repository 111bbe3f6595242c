import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { jobName, plan, transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { jsonBytes, RUN_BUDGET_BYTES } from "../../lib/pipeline/size.ts";
import { defaultSpecs, makeRun } from "../support/runs.ts";

function applyAll(run: Run, events: RunEvent[]): Run {
  return events.reduce((r, e) => transition(r, e).run, run);
}

const started = (stage: number, at = 2000 + stage * 10): RunEvent => ({ type: "stageStarted", stage, at, job: `job-${stage}` });
const ok = (stage: number, at = 2005 + stage * 10): RunEvent => ({
  type: "stageFinished",
  stage,
  at,
  ok: true,
  output: stage === 0 ? { image: "shop:abc" } : stage === 2 ? { digest: "sha256:feed" } : { exitCode: 0 },
});
const failed = (stage: number, at = 2005 + stage * 10): RunEvent => ({ type: "stageFinished", stage, at, ok: false, error: "exit 1" });

describe("transition", () => {
  it("a new run is queued and plans to start its first stage", () => {
    const run = makeRun();
    expect(run.status).toBe("queued");
    expect(run.stages.map((s) => s.status)).toEqual(["pending", "pending", "pending"]);
    expect(plan(run)).toEqual([{ type: "startStage", stage: 0, spec: run.stages[0]?.spec }]);
  });

  it("stageStarted makes the run running and plans to run that stage on its job", () => {
    const { run, effects, changed } = transition(makeRun(), started(0));
    expect(changed).toBe(true);
    expect(run.status).toBe("running");
    expect(run.startedAt).toBe(2000);
    expect(run.stages[0]).toMatchObject({ status: "running", startedAt: 2000, job: "job-0" });
    expect(effects).toEqual([{ type: "runStage", stage: 0, spec: run.stages[0]?.spec, job: "job-0" }]);
  });

  it("stageFinished ok moves to the next stage and keeps the build's image", () => {
    const { run, effects } = transition(transition(makeRun(), started(0)).run, ok(0));
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "pending", "pending"]);
    expect(run.image).toBe("shop:abc");
    expect(effects).toEqual([{ type: "startStage", stage: 1, spec: run.stages[1]?.spec }]);
  });

  it("the last stage succeeding ends the run succeeded with its digest, reported once", () => {
    const before = applyAll(makeRun(), [started(0), ok(0), started(1), ok(1), started(2)]);
    const { run, effects } = transition(before, ok(2));
    expect(run.status).toBe("succeeded");
    expect(run.digest).toBe("sha256:feed");
    expect(run.finishedAt).toBe(2025);
    expect(effects).toEqual([{ type: "runFinished", status: "succeeded" }]);
    expect(transition(run, ok(2))).toMatchObject({ changed: false, effects: [] });
  });

  it("a failing stage fails the run there and skips every later stage", () => {
    const { run, effects } = transition(applyAll(makeRun(), [started(0), ok(0), started(1)]), failed(1));
    expect(run.status).toBe("failed");
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "failed", "skipped"]);
    expect(run.error).toBe("test-1: exit 1");
    expect(effects).toEqual([{ type: "runFinished", status: "failed" }]);
    expect(plan(run)).toEqual([]);
  });

  it("cancel ends the stage in flight cancelled and skips the rest", () => {
    const { run } = transition(applyAll(makeRun(), [started(0)]), { type: "stop", at: 3000, status: "cancelled", reason: "cancelled by ada" });
    expect(run.status).toBe("cancelled");
    expect(run.stages.map((s) => s.status)).toEqual(["cancelled", "skipped", "skipped"]);
    expect(run.error).toBe("cancelled by ada");
    expect(run.finishedAt).toBe(3000);
  });

  it("a stop leaves one thing to do: undo the stage it caught in flight, once", () => {
    const cancelled = transition(applyAll(makeRun(), [started(0)]), { type: "stop", at: 3000, status: "cancelled", reason: "by ada" }).run;
    expect(plan(cancelled)).toEqual([{ type: "stopStage", stage: 0, spec: cancelled.stages[0]?.spec, job: "job-0" }]); // the job it recorded
    // Its end, recorded once undone, comes after the stop: the run stays cancelled, with nothing left to do.
    const undone = transition(cancelled, { type: "stageFinished", stage: 0, at: 3500, ok: false, error: "stopped" }).run;
    expect(undone).toMatchObject({ status: "cancelled", finishedAt: 3000 });
    expect(plan(undone)).toEqual([]);
    // A stop between stages caught nothing in flight.
    const between = transition(applyAll(makeRun(), [started(0), ok(0)]), { type: "stop", at: 3000, status: "cancelled", reason: "by ada" }).run;
    expect(between.status).toBe("cancelled");
    expect(plan(between)).toEqual([]);
  });

  it("a result that arrives after a cancel does not undo it", () => {
    const cancelled = transition(applyAll(makeRun(), [started(0)]), { type: "stop", at: 3000, status: "cancelled", reason: "by ada" }).run;
    const { run, effects } = transition(cancelled, ok(0, 3100));
    expect(run.status).toBe("cancelled");
    expect(run.stages[0]?.status).toBe("cancelled");
    expect(effects).toEqual([]);
    // ...while a result from before the cancel still counts, whenever it arrives.
    const early = transition(cancelled, ok(0, 2900)).run;
    expect(early.stages.map((st) => st.status)).toEqual(["succeeded", "cancelled", "skipped"]);
  });

  it("a stop after the run finished changes no status", () => {
    const done = applyAll(makeRun(), [started(0), ok(0), started(1), ok(1), started(2), ok(2)]);
    const { run } = transition(done, { type: "stop", at: 9000, status: "cancelled", reason: "late" });
    expect(run.status).toBe("succeeded");
    expect(run.error).toBeUndefined();
  });

  it("a run without stages fails with the stop's reason (an unusable .hoist.yml)", () => {
    const { run, effects } = transition(makeRun([]), { type: "stop", at: 1500, status: "failed", reason: ".hoist.yml:3: bad" });
    expect(run).toMatchObject({ status: "failed", error: ".hoist.yml:3: bad", finishedAt: 1500 });
    expect(effects).toEqual([{ type: "runFinished", status: "failed" }]);
  });

  it("the earliest start and the first result of a stage win", () => {
    const run = applyAll(makeRun(), [started(0, 2500), started(0, 2000), ok(0, 2600), failed(0, 2700)]);
    expect(run.stages[0]).toMatchObject({ startedAt: 2000, finishedAt: 2600, ok: true, status: "succeeded" });
  });

  it("an event about a stage the run lacks changes nothing", () => {
    const run = makeRun();
    expect(transition(run, started(7))).toEqual({ run, effects: [], changed: false });
  });

  it("a stage finished without a recorded start takes its finish time as start", () => {
    const { run } = transition(makeRun(), ok(0, 2100));
    expect(run.stages[0]).toMatchObject({ startedAt: 2100, status: "succeeded" });
  });
});

describe("jobName", () => {
  it("names a build by image and sha so runs of one sha share it", () => {
    const a = makeRun(defaultSpecs(), { id: "a" });
    const b = makeRun(defaultSpecs(), { id: "b" });
    expect(jobName(a, 0)).toBe("hoist-build-shop-0123456789ab");
    expect(jobName(a, 0)).toBe(jobName(b, 0));
    expect(jobName(a, 1)).not.toBe(jobName(b, 1));
  });
});

describe("property: order and duplication do not matter", () => {
  // Every scenario a worker can produce: some prefix of stages succeed, then maybe one fails
  // or a cancel arrives; then any interleaving and duplication of those events.
  const scenario = fc
    .record({ succeed: fc.integer({ min: 0, max: 3 }), end: fc.constantFrom("none", "fail", "cancel") })
    .map(({ succeed, end }) => {
      const events: RunEvent[] = [];
      for (let i = 0; i < succeed; i++) events.push(started(i), ok(i));
      if (succeed < 3 && end === "fail") events.push(started(succeed), failed(succeed));
      if (succeed < 3 && end === "cancel") events.push(started(succeed), { type: "stop", at: 5000, status: "cancelled", reason: "stop" });
      return events;
    });

  it("any interleaving and duplication of the same events ends in the same run", () => {
    fc.assert(
      fc.property(
        scenario.chain((events) =>
          fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: 0 }), fc.array(fc.nat(), { maxLength: 12 })).chain(
            ([all, dupes, seeds]) =>
              fc.tuple(fc.constant(all), fc.shuffledSubarray([...all, ...dupes], { minLength: all.length + dupes.length }), fc.constant(seeds)),
          ),
        ),
        ([inOrder, shuffled]) => {
          const expected = applyAll(makeRun(), inOrder);
          expect(applyAll(makeRun(), shuffled)).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("replaying any suffix of the events again changes nothing", () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (events, cut) => {
        const once = applyAll(makeRun(), events);
        const replayed = applyAll(once, events.slice(cut % (events.length + 1)));
        expect(replayed).toEqual(once);
      }),
    );
  });
});

describe("property: no event grows a run past its budget", () => {
  // Errors, reasons and outputs of any size (a failing command repeated in its error, a
  // runaway tool's message), in any order: the record stays within what DynamoDB can store.
  const big = fc.integer({ min: 0, max: 120_000 }).map((n) => "é\"\n".repeat(Math.ceil(n / 3)));
  const event = fc.oneof(
    fc.record({ stage: fc.integer({ min: 0, max: 2 }), at: fc.nat(10_000) }).map(({ stage, at }): RunEvent => ({ type: "stageStarted", stage, at })),
    fc.record({ stage: fc.integer({ min: 0, max: 2 }), at: fc.nat(10_000), ok: fc.boolean(), error: big, image: big }).map(
      ({ stage, at, ok, error, image }): RunEvent => ({ type: "stageFinished", stage, at, ok, error, output: { image, digest: image } }),
    ),
    fc.record({ at: fc.nat(10_000), reason: big }).map(({ at, reason }): RunEvent => ({ type: "stop", at, status: "failed", reason })),
  );

  it("any events keep the run's JSON within RUN_BUDGET_BYTES", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 8 }), (events) => {
        expect(jsonBytes(applyAll(makeRun(), events))).toBeLessThanOrEqual(RUN_BUDGET_BYTES);
      }),
      { numRuns: 40 },
    );
  });
});
