import { readFileSync } from "node:fs";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { handleSqsBatch } from "../../lib/queue/lambda.ts";

const batch: unknown = JSON.parse(readFileSync(new URL("../../events/sqs/batch.json", import.meta.url), "utf8"));
const log = pino({ level: "silent" });

describe("the worker's SQS batch handler (events/sqs/batch.json, AWS's documented SQS event)", () => {
  it("reports only the failed message, drops a foreign one, and handles the rest", async () => {
    const seen: string[] = [];
    const result = await handleSqsBatch(batch, log, async (wake) => {
      const id = "runId" in wake ? wake.runId : JSON.stringify(wake);
      seen.push(id);
      if (id.startsWith("r0fails")) throw new Error("engine unreachable");
    });
    expect(seen.sort()).toEqual(["r0fails0fails0fails0fails0", "r25wejpppqbzdnd9q8vsh0es5"]);
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: "2e1424d4-f796-459a-8184-9c92662be6da" }] });
  });

  it("rejects an event that is not an SQS batch", async () => {
    await expect(handleSqsBatch({ detail: {} }, log, async () => undefined)).rejects.toThrow(/Records/);
  });
});
