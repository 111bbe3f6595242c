import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine, JobState } from "../../lib/engine/port.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import type { StageSpec } from "../../lib/pipeline/run.ts";
import { advanceRun } from "../../lib/runs/advance.ts";
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
