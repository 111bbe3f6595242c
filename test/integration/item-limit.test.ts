import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine, JobState } from "../../lib/engine/port.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { failOversized } from "../../lib/pipeline/machine.ts";
import type { StageSpec } from "../../lib/pipeline/run.ts";
import { advanceRun } from "../../lib/runs/advance.ts";
import { deliveryRunId } from "../../lib/runs/ids.ts";
import { RecordTooLargeError } from "../../lib/store/too-large.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { makeRun } from "../support/runs.ts";

/** DynamoDB's item limit (400 KB), which dynalite enforces too. */
const ITEM_LIMIT = 400 * 1024;

let servers: StartedServers;

beforeAll(async () => {
  servers = await startAwsServers();
});
afterAll(async () => {
  await servers.close();
});

/** An engine on which every test job has already exited with `exitCode`. */
function exitingEngine(exitCode: number): Engine {
  const exited: JobState = { state: "exited", exitCode, startedAt: 1, finishedAt: 2 };
  return {
    ensureJob: async () => exited,
    waitJob: async () => exited,
    inspectJob: async () => exited,
    jobLogs: async () => "",
    removeJob: async () => undefined,
  } as unknown as Engine;
}

/** The size of the run record as DynamoDB stores it (its JSON, UTF-8). */
const recordBytes = (run: unknown) => Buffer.byteLength(JSON.stringify(run));

describe("a run whose record would outgrow DynamoDB's item limit, on dynalite", () => {
  // The stage's error repeats the command, and the run's error repeats the stage's: a 200 KB
  // command that fails made a 600 KB record, refused by every save, retried for ever.
  it.each([
    ["a 200 KB test command that exits 1", 200 * 1024, /^test-0: `x{1000,}.* \(\d+ bytes cut; see the stage log\).*` exited with 1$/s],
    ["a 300 KB test command that exits 1", 300 * 1024, /^run record over the item limit: /],
  ])("%s ends failed with a clear reason, its record under the limit", async (_name, size, reason) => {
    const fresh = await servicesOn(servers, {}, { engine: exitingEngine(1) });
    const spec: StageSpec = { kind: "test", run: `${"x".repeat(size)}; exit 1`, timeoutSec: 60, env: {} };
    const id = `big-${size}`;
    await fresh.store.createRun(makeRun([spec], { id, image: "shop:1" }), { until: 0 });

    expect(await advanceRun(fresh.advance, id)).toBe("finished");

    const stored = (await fresh.store.getRun(id))!.run;
    expect(stored.status).toBe("failed");
    expect(stored.error).toMatch(reason);
    expect(recordBytes(stored)).toBeLessThan(ITEM_LIMIT);
    expect(await fresh.store.expiredRuns(Number.MAX_SAFE_INTEGER, 10)).toEqual([]); // nothing left for the reconciler
  });
});

describe("the store refuses what can never be written, on dynalite", () => {
  it("a run record over the item limit is a RecordTooLargeError, nothing is written, and its failOversized copy saves", async () => {
    const fresh = await servicesOn(servers);
    const id = deliveryRunId("github", "oversized", "main");
    const run = makeRun(undefined, { id });
    await fresh.store.createRun(run, { until: 0 });
    // Written past the machine (which would have cut it): the store is the last guard.
    const big = { ...run, stages: run.stages.map((s, i) => (i === 1 ? { ...s, startedAt: 5, job: "j1", error: "e".repeat(500_000) } : s)) };

    const refused = await fresh.store.saveRun(big, 1, { until: 0 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RecordTooLargeError);
    expect((refused as Error).message).toMatch(new RegExp(`^run ${id} would take \\d+ bytes, over DynamoDB's item limit of 409600$`));
    expect((await fresh.store.getRun(id))?.version).toBe(1);

    const stopped = failOversized(big, 6, `run record over the item limit: ${(refused as Error).message}`);
    const saved = await fresh.store.saveRun(stopped, 1, { until: 0 });
    expect(saved?.run).toMatchObject({ status: "failed", error: expect.stringMatching(/^run record over the item limit: run r\w+ would take/) });
    expect(recordBytes((await fresh.store.getRun(id))!.run)).toBeLessThan(ITEM_LIMIT / 10);
  });

  it("a new run over the limit (a webhook's oversized ref, say) is refused before DynamoDB is asked", async () => {
    const fresh = await servicesOn(servers);
    const id = deliveryRunId("github", "huge-ref", "main");
    await expect(fresh.store.createRun(makeRun(undefined, { id, ref: `refs/heads/${"b".repeat(420_000)}` }), { until: 0 })).rejects.toThrow(RecordTooLargeError);
    expect(await fresh.store.getRun(id)).toBeUndefined();
  });
});
