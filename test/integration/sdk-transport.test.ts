import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import { sdkSqsApi } from "../../lib/queue/sqs-api.ts";
import { ensureQueue, SqsQueue } from "../../lib/queue/sqs.ts";
import { sdkDynamoApi } from "../../lib/store/dynamo-api.ts";
import { DynamoRunStore } from "../../lib/store/dynamo.ts";
import { ensureTable } from "../../lib/store/dynamo-table.ts";
import { uniqueSuffix } from "../support/docker.ts";
import { makeRun } from "../support/runs.ts";

// On AWS the store and queue go through the SDK; locally they take the lean loopback path.
// This runs the SDK path against the same real servers, so both transports stay proven.
let servers: StartedServers;
const client = (endpoint: string) => ({ endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } });

beforeAll(async () => {
  servers = await startServers({});
});
afterAll(async () => {
  await servers.close();
});

describe("the AWS SDK transport against dynalite and local-aws-sqs", () => {
  it("creates, deduplicates, saves with a version check, lists and reconciles runs", async () => {
    const api = sdkDynamoApi(new DynamoDBClient(client(servers.dynamodb)));
    const table = `sdk-${uniqueSuffix()}`;
    await ensureTable(api, table);
    await ensureTable(api, table); // a second call finds the table
    const store = new DynamoRunStore({ api, table });
    const run = makeRun(undefined, { id: "sdk-run" });
    expect(await store.createRun(run, { until: 5 })).toBe("created");
    expect(await store.createRun(run, { until: 5 })).toBe("exists");
    expect(await store.saveRun(run, 1, { until: 5 })).toMatchObject({ version: 2 });
    expect(await store.saveRun(run, 1, { until: 5 })).toBeUndefined();
    expect((await store.listRuns({ repo: "github:acme/shop" })).runs.map((r) => r.id)).toEqual(["sdk-run"]);
    expect((await store.expiredRuns(10, 10)).map((r) => r.run.id)).toEqual(["sdk-run"]);
    await store.putLog("sdk-run", { stage: 0, offset: 0, text: "hello" });
    expect(await store.readLogs("sdk-run")).toEqual([{ stage: 0, offset: 0, text: "hello" }]);
  });

  it("sends in batches, receives, retries later and acknowledges wake-ups", async () => {
    const api = sdkSqsApi(new SQSClient(client(servers.sqs)));
    const queue = new SqsQueue(api, await ensureQueue(api, `sdk-${uniqueSuffix()}`));
    await Promise.all(Array.from({ length: 12 }, (_, i) => queue.send({ runId: `r${i}` })));
    expect(await queue.depth()).toBe(12);
    const received = [...(await queue.receive(10, 1)), ...(await queue.receive(10, 1))];
    expect(new Set(received.map((m) => (JSON.parse(m.body) as { runId: string }).runId)).size).toBe(12);
    await queue.retryLater(received[0]!.receipt, 0);
    for (const m of received.slice(1)) await queue.ack(m.receipt);
    const again = await queue.receive(10, 1);
    expect(again.map((m) => m.body)).toEqual([received[0]!.body]);
  });
});
