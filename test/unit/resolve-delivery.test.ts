import pino from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import { RetryableError, PermanentError } from "../../lib/errors.ts";
import { ConfigCache } from "../../lib/runs/config-cache.ts";
import { acceptPush, type IngestDeps } from "../../lib/runs/ingest.ts";
import { reconcile } from "../../lib/runs/reconcile.ts";
import { resolveDelivery, type ResolveDeps } from "../../lib/runs/resolve-delivery.ts";
import type { PushEvent } from "../../lib/scm/port.ts";
import { FakeSource, ManualClock, MemoryDeliveryStore, MemoryQueue, MemoryRunStore } from "../support/memory.ts";

/** The delivery's life with in-memory ports: the webhook's record, the worker's runs, the provider's faults. */

const PIPELINE = "pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages: [ { build: {} }, { push: {} } ]\n";
const push: PushEvent = {
  provider: "github",
  repo: { provider: "github", fullName: "acme/shop", cloneUrl: "https://github.com/acme/shop.git" },
  ref: "refs/heads/main",
  branch: "main",
  sha: "b".repeat(40),
  deleted: false,
};

let clock: ManualClock;
let source: FakeSource;
let queue: MemoryQueue;
let ingest: IngestDeps;
let resolve: ResolveDeps;

beforeEach(() => {
  clock = new ManualClock();
  source = new FakeSource({ ".hoist.yml": PIPELINE });
  queue = new MemoryQueue();
  const deliveries = new MemoryDeliveryStore();
  ingest = { deliveries, queue, clock, redriveAfterMs: 30_000 };
  resolve = { deliveries, store: new MemoryRunStore(), queue, clock, log: pino({ level: "silent" }), configs: new ConfigCache(source), registry: "127.0.0.1:5000", redriveAfterMs: 30_000, patienceMs: 60 * 60_000 };
});

async function accepted(delivery = "gh-1"): Promise<string> {
  const a = await acceptPush(ingest, delivery, push);
  if (!("delivery" in a)) throw new Error("ignored");
  return a.delivery.id;
}

const delivery = async (id: string) => (await resolve.deliveries.getDelivery(id))!.delivery;

describe("a delivery, from the webhook's record to its runs", () => {
  it("the webhook reads nothing from the provider; the worker reads once and makes the run once", async () => {
    const id = await accepted();
    expect(source.reads).toBe(0);
    expect(queue.sent).toEqual([{ message: { deliveryId: id }, delaySec: 0 }]);
    expect(await resolveDelivery(resolve, id)).toBe("resolved");
    expect(await resolveDelivery(resolve, id)).toBe("already-done");
    const d = await delivery(id);
    expect(d).toMatchObject({ status: "resolved", attempts: 1, runs: [{ pipeline: "main", status: "queued" }] });
    expect(queue.sent.slice(1)).toEqual([{ message: { runId: d.runs![0]!.id }, delaySec: 0 }]);
    expect(source.reads).toBe(1);
  });

  it("a provider outage is retried with a growing delay, visible on the delivery, then the run is made once", async () => {
    const id = await accepted();
    source.fail = () => new RetryableError("GitHub answered 502");
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(await resolveDelivery(resolve, id)).toBe("retrying");
      delays.push(queue.sent.at(-1)!.delaySec);
      clock.advance(delays.at(-1)! * 1000);
    }
    expect(delays).toEqual([2, 4, 8, 16]);
    expect(await delivery(id)).toMatchObject({ status: "pending", attempts: 4, lastError: expect.stringMatching(/could not read \.hoist\.yml of acme\/shop at bbbbbbbbbbbb: GitHub answered 502/) });
    source.fail = undefined;
    expect(await resolveDelivery(resolve, id)).toBe("resolved");
    expect(await delivery(id)).toMatchObject({ status: "resolved", attempts: 5, runs: [{ pipeline: "main" }] });
    expect((await resolve.store.listRuns({})).runs).toHaveLength(1);
  });

  it("a provider's Retry-After is waited out", async () => {
    const id = await accepted();
    source.fail = () => new RetryableError("rate limited", { retryAfterMs: 60_000 });
    await resolveDelivery(resolve, id);
    expect(queue.sent.at(-1)).toEqual({ message: { deliveryId: id }, delaySec: 60 });
  });

  it("after its patience, a delivery whose provider keeps failing fails, with a failed run that says why", async () => {
    const id = await accepted();
    source.fail = () => new RetryableError("connect ETIMEDOUT");
    await resolveDelivery(resolve, id);
    clock.advance(61 * 60_000);
    const before = queue.sent.length;
    expect(await resolveDelivery(resolve, id)).toBe("resolved");
    const d = await delivery(id);
    expect(d).toMatchObject({ status: "failed", attempts: 2, reason: expect.stringMatching(/ETIMEDOUT \(tried 2 times over 3660 s; redeliver the webhook once the provider answers\)/) });
    const [run] = (await resolve.store.listRuns({})).runs;
    expect(run).toMatchObject({ pipeline: ".hoist.yml", status: "failed", error: d.reason });
    expect(queue.sent.length).toBe(before); // a failed run needs no worker
  });

  it("a permanent error (a token the provider refuses) fails at once", async () => {
    const id = await accepted();
    source.fail = () => new PermanentError("GitHub answered 401: check GITHUB_TOKEN");
    expect(await resolveDelivery(resolve, id)).toBe("resolved");
    expect(await delivery(id)).toMatchObject({ status: "failed", attempts: 1, reason: expect.stringMatching(/401: check GITHUB_TOKEN$/) });
  });

  it("a lost message: the reconciler re-drives the overdue delivery, once per grace period", async () => {
    const id = await accepted();
    queue.sent.length = 0;
    expect(await reconcile({ ...resolve, clock })).toEqual([]);
    clock.advance(31_000);
    expect(await reconcile({ ...resolve, clock })).toEqual([id]);
    expect(await reconcile({ ...resolve, clock })).toEqual([]);
    expect(queue.sent).toEqual([{ message: { deliveryId: id }, delaySec: 0 }]);
    await resolveDelivery(resolve, id);
    clock.advance(31_000);
    // Resolved, the delivery is off the list; its run, which no worker took, is on its own.
    expect(await reconcile({ ...resolve, clock })).toEqual([(await delivery(id)).runs![0]!.id]);
  });

  it("a redelivery answers what the first made, and writes nothing", async () => {
    const id = await accepted("gh-2");
    await resolveDelivery(resolve, id);
    const again = await acceptPush(ingest, "gh-2", push);
    expect(again).toMatchObject({ duplicate: true, delivery: { id, status: "resolved", runs: [{ pipeline: "main" }] } });
  });
});
