import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseHoistFile } from "../../lib/pipeline/config.ts";
import { failOversized, fitRecord, plan, transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import { EnvironmentName, RunId } from "../../lib/pipeline/names.ts";
import { resolveStages } from "../../lib/pipeline/resolve.ts";
import { Run, type StageSpec } from "../../lib/pipeline/run.ts";
import { clipText, jsonBytes, MAX_OUTPUT_BYTES, MAX_TEXT_BYTES, RUN_BUDGET_BYTES } from "../../lib/pipeline/size.ts";
import { deliveryRunId } from "../../lib/runs/ids.ts";
import { itemBytes, ITEM_LIMIT_BYTES, putItemWithin, type DynamoApi } from "../../lib/store/dynamo-api.ts";
import { RunFilter } from "../../lib/store/port.ts";
import { RecordTooLargeError } from "../../lib/store/too-large.ts";
import { PermanentError } from "../../lib/errors.ts";
import { makeRun } from "../support/runs.ts";

/** The bytes a string takes inside the record's JSON (without its quotes). */
const stored = (s: string) => jsonBytes(s) - 2;

describe("clipText", () => {
  it("returns text that fits as it is", () => {
    expect(clipText("exit 1")).toBe("exit 1");
  });

  it("keeps the head and the tail of long text, says how much was cut, and stays within the bound", () => {
    const text = `${"a".repeat(100_000)}TAIL`;
    const clipped = clipText(text);
    expect(stored(clipped)).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    expect(clipped).toMatch(/^a{1000,} … \(\d+ bytes cut; see the stage log\) … a+TAIL$/);
    const cut = Number(/\((\d+) bytes cut/.exec(clipped)?.[1]);
    expect(cut + stored(clipped.replace(/ … \(.*\) … /, ""))).toBe(100_004);
    expect(clipText(clipped)).toBe(clipped); // clipping twice changes nothing
  });

  /** Characters of every stored width: 1 to 4 bytes of UTF-8, 2-byte escapes, 6-byte escapes (a control character, a lone surrogate). */
  const textOfEveryWidth = fc.array(fc.constantFrom("a", "é", "€", "😀", '"', "\\", "\n", "\u0001", "\ud800"), { maxLength: 1500 }).map((a) => a.join(""));

  it("bounds the stored size of any text, escapes and multi-byte characters included", () => {
    fc.assert(
      fc.property(textOfEveryWidth, fc.integer({ min: 80, max: 2000 }), (text, max) => {
        const clipped = clipText(text, max);
        return stored(clipped) <= max && (stored(text) > max || clipped === text);
      }),
    );
  });
});

describe("the machine bounds what events write", () => {
  const [build, test] = makeRun().stages.map((s) => s.spec) as [StageSpec, StageSpec];
  const base = makeRun([build, test]);

  it("a stage's error (and the run's copy of it) keeps at most 8 KiB", () => {
    const events: RunEvent[] = [
      { type: "stageStarted", stage: 0, at: 1 },
      { type: "stageFinished", stage: 0, at: 2, ok: false, error: `\`${"x".repeat(300_000)}\` exited with 1` },
    ];
    const run = events.reduce((r, e) => transition(r, e).run, base);
    expect(run.status).toBe("failed");
    expect(stored(run.stages[0]?.error ?? "")).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    expect(run.error).toMatch(/^build-0: `x+ … \(\d+ bytes cut; see the stage log\) … x+` exited with 1$/);
  });

  it("a stage's outputs keep at most 512 bytes each", () => {
    const run = transition(base, { type: "stageFinished", stage: 0, at: 2, ok: true, output: { image: "i".repeat(5000), exitCode: 0 } }).run;
    expect(stored(run.stages[0]?.output?.image ?? "")).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    expect(stored(run.image ?? "")).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    expect(run.stages[0]?.output?.exitCode).toBe(0);
  });

  it("a stop reason keeps at most 8 KiB, also on a run created stopped", () => {
    const stopped = transition(base, { type: "stop", at: 5, status: "cancelled", reason: "r".repeat(50_000) }).run;
    expect(stored(stopped.stopped?.reason ?? "")).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    expect(stored(stopped.error ?? "")).toBeLessThanOrEqual(MAX_TEXT_BYTES);
  });
});

describe("fitRecord and failOversized", () => {
  /** A run whose test command alone is over the budget, its test stage in flight. */
  const huge = (command = 350_000) => {
    const specs: StageSpec[] = [
      { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: { A: "a".repeat(10_000) } },
      { kind: "test", run: "x".repeat(command), timeoutSec: 60, env: { TOKEN: "t".repeat(10_000) } },
      { kind: "push", target: "127.0.0.1:5000/shop" },
    ];
    const run = makeRun(specs, { id: deliveryRunId("github", "huge", "main") });
    return { ...run, stages: run.stages.map((s, i) => (i === 0 ? { ...s, startedAt: 10, finishedAt: 20, ok: true, output: { image: "shop:1" } } : i === 1 ? { ...s, startedAt: 30, job: "hoist-test-job" } : s)) };
  };

  it("leaves a run within the budget as it is", () => {
    const run = makeRun();
    expect(fitRecord(run, 5)).toBe(run);
  });

  it("fails a run over the budget with a clear reason, small enough to save, still undoing the stage in flight", () => {
    const run = huge();
    const fitted = fitRecord(run, 40);
    expect(jsonBytes(fitted)).toBeLessThan(RUN_BUDGET_BYTES / 10);
    expect(fitted.status).toBe("failed");
    expect(fitted.error).toMatch(/^run record over the item limit: \d+ bytes of JSON, at most 300000 are kept/);
    expect(fitted.stages.map((s) => [s.name, s.status])).toEqual([
      ["build-0", "succeeded"],
      ["test-1", "failed"],
      ["push-2", "skipped"],
    ]);
    expect(Run.parse(fitted)).toEqual(fitted);
    expect(plan(fitted)).toEqual([{ type: "stopStage", stage: 1, spec: fitted.stages[1]?.spec, job: "hoist-test-job" }]);
  });

  it("an event that would grow a run past the budget fails it instead (the machine's own guard)", () => {
    const { run, effects } = transition(huge(), { type: "stageFinished", stage: 1, at: 50, ok: false, error: "exit 1" });
    expect(jsonBytes(run)).toBeLessThan(RUN_BUDGET_BYTES);
    expect(run.status).toBe("failed");
    expect(effects).toEqual([{ type: "runFinished", status: "failed" }]);
  });

  it("keeps ids, names, times and job names; drops a test's env and a build's args; cuts long text", () => {
    const run = huge();
    const failed = failOversized(run, 40, "run record over the item limit: 500000 bytes");
    expect(failed).toMatchObject({ id: run.id, sha: run.sha, pipeline: "main", branch: "main", stopped: { at: 40, status: "failed", reason: "run record over the item limit: 500000 bytes" } });
    expect(failed.stages[0]).toMatchObject({ startedAt: 10, finishedAt: 20, ok: true, output: { image: "shop:1" }, spec: { kind: "build", args: {} } });
    expect(failed.stages[1]).toMatchObject({ startedAt: 30, job: "hoist-test-job", spec: { kind: "test", env: {}, timeoutSec: 60 } });
    const spec = failed.stages[1]?.spec;
    expect(spec?.kind === "test" && spec.run).toMatch(/^x+ … \(\d+ bytes cut; cut to fit the run record\) … x+$/);
  });

  it("applied twice changes nothing more, and an earlier stop stands", () => {
    const once = failOversized(huge(), 40, "too large");
    expect(failOversized(once, 60, "too large again")).toEqual(once);
    const cancelled = transition(huge(), { type: "stop", at: 35, status: "cancelled", reason: "cancelled by ada" }).run;
    expect(failOversized(cancelled, 40, "too large")).toMatchObject({ status: "cancelled", error: "cancelled by ada" });
  });
});

describe(".hoist.yml bounds", () => {
  const file = (stage: string, extra = "") => `pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - build: {}\n      - ${stage}\n${extra}`;
  const error = async (text: string) => {
    const r = await parseHoistFile(text);
    return r.ok ? "" : r.error;
  };

  it.each([
    ["a test command over 16384 characters", file(`test: { run: "${"x".repeat(16_385)}" }`), /pipelines\.main\.stages\[1\]\.test\.run: at most 16384 characters/],
    ["65 test variables", file(`test: { run: "t", env: { ${Array.from({ length: 65 }, (_, i) => `V${i}: v`).join(", ")} } }`), /stages\[1\]\.test\.env: at most 64 entries/],
    ["a test variable value over 4096 characters", file(`test: { run: "t", env: { V: "${"v".repeat(4097)}" } }`), /stages\[1\]\.test\.env\.V: at most 4096 characters/],
    ["65 build args", file(`build: { args: { ${Array.from({ length: 65 }, (_, i) => `A${i}: 1`).join(", ")} } }`), /stages\[1\]\.build\.args: at most 64 entries/],
    ["an image name over 255 characters", file(`build: { image: ${"a".repeat(256)} }`), /stages\[1\]\.build\.image: at most 255 characters/],
    ["51 stages", `pipelines:\n  main:\n    on: { push: true }\n    stages:\n${"      - build: {}\n".repeat(51)}`, /pipelines\.main\.stages: at most 50 entries/],
    ["21 pipelines", `pipelines:\n${Array.from({ length: 21 }, (_, i) => `  p${i}: { on: { push: true }, stages: [ { build: {} } ] }\n`).join("")}`, /pipelines: at most 20 entries/],
    ["a pipeline name over 64 characters", `pipelines:\n  ${"p".repeat(65)}: { on: { push: true }, stages: [ { build: {} } ] }\n`, /pipelines: pipeline names use letters, digits, \. _ - \(at most 64\): "p{64}…"/],
    ["a test variable name over 256 characters", file(`test: { run: "t", env: { ${"V".repeat(257)}: v } }`), /stages\[1\]\.test\.env: names are 1 to 256 characters, without = or NUL/],
    ["an environment name over 40 characters", file(`deploy: { environment: ${"e".repeat(41)} }`), /stages\[1\]\.deploy\.environment: is an environment name/],
  ])("refuses %s, naming the field", async (_name, text, message) => {
    expect(await error(text)).toMatch(message);
  });

  it("accepts a file within every bound", async () => {
    expect((await parseHoistFile(file(`test: { run: "${"x".repeat(16_384)}", env: { A: b } }`))).ok).toBe(true);
  });
});

describe("resolveStages", () => {
  const pipeline = async (tests: number, command: string) => {
    const r = await parseHoistFile(`pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - build: {}\n${`      - test: { run: "${command}" }\n`.repeat(tests)}`);
    if (!r.ok) throw new Error(r.error);
    return r.file.pipelines.main!;
  };

  it("refuses stages that, with room for their results, would not fit a run record", async () => {
    // 15 commands of 16 KB: within the file's 256 KiB, past the record's budget once results are counted.
    const resolved = resolveStages(await pipeline(15, "x".repeat(16_000)), { repoName: "acme/shop" });
    expect(resolved).toMatchObject({ ok: false, error: expect.stringMatching(/^the pipeline's 16 stages need \d+ bytes of the run record with room for their results, at most \d+: shorten test commands/) });
  });

  it("takes many long commands that fit", async () => {
    expect(resolveStages(await pipeline(8, "x".repeat(16_000)), { repoName: "acme/shop" }).ok).toBe(true);
  });
});

describe("ids and names from outside", () => {
  it("a run id is what lib/runs/ids.ts makes, and nothing longer", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (delivery, pipeline) => RunId.safeParse(deliveryRunId("github", delivery, pipeline)).success));
    expect(RunId.safeParse("a".repeat(2_100)).success).toBe(false);
    expect(RunId.safeParse(deliveryRunId("github", "d", "main").toUpperCase()).success).toBe(false);
  });

  it("an environment name is at most 40 characters", () => {
    expect(EnvironmentName.safeParse("e".repeat(40)).success).toBe(true);
    expect(EnvironmentName.safeParse("e".repeat(41)).success).toBe(false);
  });

  it("one run filter: query strings parse as the store's filter, unknown or oversized fields are refused", () => {
    expect(RunFilter.parse({ repo: "github:acme/shop", limit: "20", status: "failed" })).toEqual({ repo: "github:acme/shop", limit: 20, status: "failed" });
    expect(RunFilter.safeParse({ colour: "red" }).success).toBe(false);
    expect(RunFilter.safeParse({ limit: "201" }).success).toBe(false);
    expect(RunFilter.safeParse({ branch: "b".repeat(301) }).success).toBe(false);
  });
});

describe("the store's item limit", () => {
  it("counts attribute names and values in UTF-8, numbers by their digits", () => {
    expect(itemBytes({ pk: { S: "RUN#r1" }, data: { S: "é€😀" } })).toBe(2 + 6 + 4 + (2 + 3 + 4));
    expect(itemBytes({ version: { N: "12345" } })).toBe(7 + 4);
  });

  const recorder = (fail?: Error) => {
    const calls: unknown[] = [];
    const api = {
      putItem: async (input: unknown) => {
        calls.push(input);
        if (fail) throw fail;
        return {};
      },
    } as unknown as DynamoApi;
    return { api, calls };
  };

  it("refuses an item over the limit before calling DynamoDB, as a permanent error", async () => {
    const { api, calls } = recorder();
    const write = putItemWithin(api, { TableName: "t", Item: { pk: { S: "RUN#r1" }, data: { S: "é".repeat(ITEM_LIMIT_BYTES / 2) } } }, "run r1");
    await expect(write).rejects.toThrow(RecordTooLargeError);
    await expect(write).rejects.toThrow(/^run r1 would take 409612 bytes, over DynamoDB's item limit of 409600$/);
    await expect(write).rejects.toBeInstanceOf(PermanentError);
    expect(calls).toEqual([]);
  });

  it("maps DynamoDB's own refusal of the item's size to the same error", async () => {
    const refusal = Object.assign(new Error("Item size has exceeded the maximum allowed size"), { name: "ValidationException" });
    const { api } = recorder(refusal);
    await expect(putItemWithin(api, { TableName: "t", Item: { pk: { S: "x" } } }, "run r1")).rejects.toThrow(RecordTooLargeError);
    const other = Object.assign(new Error("One or more parameter values were invalid"), { name: "ValidationException" });
    await expect(putItemWithin(recorder(other).api, { TableName: "t", Item: { pk: { S: "x" } } }, "run r1")).rejects.toBe(other);
  });
});
